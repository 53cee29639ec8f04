"""A real OpenSSH server on loopback, for the sandbox and the tests (``tests/servers/sshd.py``).

An :class:`SshServer` lives in a directory of its own: a temporary host key, a client key pair
whose public half is the only authorized key, an ``sshd_config``, a ``known_hosts`` pinning the
host key on its port, and the server's log. It listens on 127.0.0.1 only and lets in only the
user running it (as root: root, with a key only). ``start()`` runs ``/usr/sbin/sshd -D`` as a
child in a session of its own; ``stop()`` ends it *and* its per-connection children by PID
(killing only the listener leaves established sessions, and their tunnels, alive);
``kill()`` does the same with SIGKILL, as a crash would.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ladder.errors import SandboxError
from ladder.procs import free_port, pid_alive, run

SSHD = "/usr/sbin/sshd"
PACKAGE = "openssh-server"


def available() -> str | None:
    """None when this machine can run sshd and ssh-keygen, else the Debian package to install."""
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        return PACKAGE
    return None


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class SshServer:
    """sshd on ``127.0.0.1:port`` in ``directory``; see the module docstring. No I/O in init."""

    directory: Path
    port: int | None = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).absolute()
        self.host = "127.0.0.1"
        self.user = getpass.getuser()
        self._proc: subprocess.Popen[bytes] | None = None

    # --- files ---------------------------------------------------------------------------------

    @property
    def private_key(self) -> Path:
        """The client's private key (OpenSSH format, no passphrase)."""
        return self.directory / "client_key"

    @property
    def known_hosts(self) -> Path:
        """``[127.0.0.1]:PORT <host key>``: the pin a client needs (written by ``start``)."""
        return self.directory / "known_hosts"

    @property
    def host_key(self) -> Path:
        return self.directory / "host_key"

    @property
    def log_file(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def _state_file(self) -> Path:
        return self.directory / "sshd.json"

    def init(self) -> None:
        """Create the host key, the client key pair and ``authorized_keys`` (once)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path, comment in ((self.host_key, "ladder-host"), (self.private_key, "ladder-client")):
            if not path.exists():
                res = run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                           "-f", str(path)])  # fmt: skip
                if not res.ok:
                    raise SandboxError(f"ssh-keygen failed in {self.directory}: {res.tail()}")
        authorized = self.directory / "authorized_keys"
        authorized.write_text(self.private_key.with_suffix(".pub").read_text())
        authorized.chmod(0o600)

    def pin_line(self) -> str:
        """The known_hosts line for this server's host key on its port."""
        kind, key = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[{self.host}]:{self.port} {kind} {key}\n"

    def _config(self) -> Path:
        path = self.directory / "sshd_config"
        path.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.host}",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
                    f"AllowUsers {self.user}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "UsePAM no",
                    "StrictModes no",
                    "AllowTcpForwarding yes",
                    "PermitTunnel no",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "UseDNS no",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        return path

    # --- running -------------------------------------------------------------------------------

    def start(self, timeout: float = 15) -> None:
        """Start sshd (on the same port as before when it ran already) and wait for its banner."""
        if self.running():
            return
        self.init()
        self.load_state()
        self.port = self.port or free_port()
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        config = self._config()
        check = run([SSHD, "-t", "-f", str(config)])
        if not check.ok:
            raise SandboxError(f"sshd refused its config {config}: {check.tail()}")
        self.known_hosts.write_text(self.pin_line())
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._state_file.write_text(json.dumps({"port": self.port, "pid": self._proc.pid}))
        deadline = time.monotonic() + timeout
        while not self._banner():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_file.read_text()[-1500:]
                self.stop()
                raise SandboxError(f"sshd did not start on {self.host}:{self.port}: {tail}")
            time.sleep(0.05)

    def _banner(self) -> bool:
        import socket

        try:
            with socket.create_connection((self.host, int(self.port or 0)), timeout=1) as s:
                return s.recv(8).startswith(b"SSH-")
        except OSError:
            return False

    def load_state(self) -> None:
        if self.port is None and self._state_file.exists():
            self.port = json.loads(self._state_file.read_text())["port"]

    def pid(self) -> int | None:
        if self._proc is not None:
            return self._proc.pid
        if self._state_file.exists():
            return int(json.loads(self._state_file.read_text())["pid"])
        return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None or not pid_alive(pid):
            return False
        try:
            return Path(f"/proc/{pid}/exe").resolve().name == "sshd"
        except OSError:
            return True  # not ours to read (another user): trust the pid file

    def stop(self) -> None:
        """SIGTERM to sshd and every session it forked, SIGKILL after 5 s. Safe to call twice."""
        self._signal(signal.SIGTERM, grace=5)

    def kill(self) -> None:
        """SIGKILL to sshd and every session: established connections drop, as in a crash."""
        self._signal(signal.SIGKILL, grace=0)

    def _signal(self, sig: signal.Signals, grace: float) -> None:
        pid = self.pid()
        if pid is None or not self.running():
            self._reap()
            return
        pids = [pid, *children(pid)]
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        deadline = time.monotonic() + grace
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            if self._proc is not None:
                self._proc.poll()  # a dead child of ours is a zombie until it is reaped
            time.sleep(0.05)
        for p in pids:
            if pid_alive(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                return
            self._proc = None

"""nginx in front of the sandbox shop, routing tagged requests the way rung 6 expects.

An :class:`NginxServer` runs a real nginx unprivileged-style on ``127.0.0.1:port`` from a
directory of its own (``-p DIR -c conf/nginx.conf -e logs/error.log``; its master pid in
``nginx.pid``), proxying to the app at ``app`` (``host:port``) and, for requests whose header
or cookie carries a token listed in ``conf/ladder-routes.map``, to the replica that entry names.
It is the configuration the README's rung 6 section asks of a real nginx. ``start()`` waits until
the port answers; ``stop()`` ends the master (SIGQUIT, then SIGTERM, SIGKILL) by PID.

For the sandbox, :func:`front` starts one in front of the shop, or says which Debian package
is missing (``nginx-light``); :func:`running` reads its state back for the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ladder.config_hosts import LoadBalancerConfig
from ladder.errors import SandboxError
from ladder.procs import free_port, pid_alive
from ladder.sandbox.service_state import UNAVAILABLE_FILE, recorded

__all__ = ["NginxServer", "available", "front", "load_balancer", "running", "stop"]

PACKAGE = "nginx-light"
FRONT_DIR = "nginx"
STATE_FILE = "nginx.json"
INCLUDE_START = b"# routes of tagged requests to debug replicas (Ladder adds and removes them)\n"

_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {dir}/logs/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;

    map "$http_{header_var}:$cookie_{cookie}" $ladder_replica {{
        default "";
        include {dir}/conf/ladder-routes.map;
    }}
    map $ladder_replica $ladder_pool {{
        "" app;
        default $ladder_replica;
    }}
    upstream app {{ server {app}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://$ladder_pool;
            proxy_set_header Host $host;
            proxy_next_upstream off;
            proxy_max_temp_file_size 0;
            add_header X-Ladder-Replica $ladder_replica always;
        }}
    }}
}}
"""


def binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def available() -> str | None:
    """None when this machine has nginx, else the Debian package to install."""
    return None if binary() else PACKAGE


@dataclass
class NginxServer:
    directory: Path
    app: str
    port: int | None = None
    header: str = "X-Debug-Replica"
    cookie: str = "debug_replica"

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).absolute()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.directory / "conf" / "nginx.conf"

    @property
    def include(self) -> Path:
        return self.directory / "conf" / "ladder-routes.map"

    @property
    def pidfile(self) -> Path:
        return self.directory / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.directory / "logs" / "error.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def flags(self) -> list[str]:
        return ["-p", str(self.directory), "-c", str(self.conf), "-e", str(self.error_log)]

    def test_command(self) -> list[str]:
        """The argv that checks this server's configuration (``nginx -t``)."""
        return [binary() or "nginx", "-t", "-q", *self.flags()]

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def start(self, timeout: float = 20) -> None:
        if self.pid() is not None:
            return
        program = binary()
        if program is None:
            raise SandboxError(f"no nginx on this machine (Debian package {PACKAGE})")
        self.port = self.port or free_port()
        for sub in ("conf", "logs", "tmp"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        header_var = self.header.lower().replace("-", "_")
        self.conf.write_text(_CONF.format(dir=self.directory, header_var=header_var,
                                          cookie=self.cookie, app=self.app, port=self.port))  # fmt: skip
        if not self.include.exists():
            self.include.write_bytes(INCLUDE_START)
        with (self.directory / "logs" / "stderr.log").open("ab") as log:
            self._proc = subprocess.Popen(  # argv list, no shell
                [program, *self.flags()], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is not None and _accepts(self.port):
                return
            if self._proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = self.error_log.read_text(errors="replace")[-600:] if self.error_log.exists() else ""
        self.stop()
        raise SandboxError(f"nginx did not start on port {self.port}: {tail}")

    def stop(self, grace: float = 10) -> None:
        """Stop the master by PID (graceful SIGQUIT, then SIGTERM, SIGKILL); its workers follow."""
        master = self.pid()
        if master is not None:
            for sig, wait in ((signal.SIGQUIT, grace), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(master, sig)
                deadline = time.monotonic() + wait
                while pid_alive(master) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not pid_alive(master):
                    break
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=2)
        self.pidfile.unlink(missing_ok=True)

    def state(self) -> dict[str, object]:
        return {"port": self.port, "url": self.url, "app": self.app, "pid_file": str(self.pidfile),
                "map_include": str(self.include), "test_command": self.test_command(),
                "header": self.header, "cookie": self.cookie}  # fmt: skip


def _accepts(port: int | None) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port or 0), timeout=1):
            return True
    except OSError:
        return False


# --- the sandbox's front ----------------------------------------------------------------------


def front(sandbox_dir: Path, app: str, database_url: str) -> str | None:
    """Start nginx in front of the sandbox shop at ``app`` (host:port); None when it runs, else
    why not, naming the Debian package. ``database_url`` is what a debug replica of the shop
    reads (the shop's own database)."""
    directory = Path(sandbox_dir) / FRONT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    missing = available()
    if missing:
        why = f"the sandbox has no load balancer: this machine lacks Debian package {missing}"
        (directory / UNAVAILABLE_FILE).write_text(why + "\n")
        return why
    (directory / UNAVAILABLE_FILE).unlink(missing_ok=True)
    if running(sandbox_dir) is not None:
        return None
    server = NginxServer(directory, app)
    server.start()
    state = {**server.state(), "database_url": database_url}
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return None


def running(sandbox_dir: Path) -> dict[str, object] | None:
    """The sandbox's nginx as ``nginx.json`` says, if it runs; ``{"unavailable": why}`` when
    the machine has no nginx; None when it does not run."""
    directory = Path(sandbox_dir) / FRONT_DIR
    state = recorded(directory, STATE_FILE)
    if state is None or "unavailable" in state:
        return state
    if NginxServer(directory, str(state.get("app"))).pid() is None:
        return None
    return state


def stop(sandbox_dir: Path) -> None:
    """Stop the sandbox's nginx, if it runs, and remove its directory."""
    directory = Path(sandbox_dir) / FRONT_DIR
    if directory.exists():
        NginxServer(directory, "").stop()
        shutil.rmtree(directory, ignore_errors=True)


def load_balancer(front: dict[str, object]) -> LoadBalancerConfig:
    """The sandbox's nginx (``running()``'s state) as an environment's load balancer; the
    replica is a second Puma of the shop, on a free port, reading the shop's database."""
    from ladder.config_hosts import ReplicaProcessConfig
    from ladder.sandbox.shop import APP

    if front.get("unavailable"):
        return LoadBalancerConfig(kind="nginx").model_copy(
            update={"unavailable": str(front["unavailable"])}
        )
    command = ["puma", "-b", "tcp://127.0.0.1:{port}", "-t", "1:4", "-e", "production"]
    replica = ReplicaProcessConfig(
        local=True,
        command=[*command, str(APP / "config.ru")],
        cwd=str(APP),
        port=free_port(),
        env={"SHOP_DATABASE_URL": str(front["database_url"]), "RACK_ENV": "production"},
        work_dir=str(Path(str(front["map_include"])).parent.parent),
    )
    return LoadBalancerConfig(
        kind="nginx", local=True, url=str(front["url"]), map_include=str(front["map_include"]),
        pid_file=str(front["pid_file"]), test_command=[str(a) for a in front["test_command"]],  # type: ignore[attr-defined]
        header=str(front["header"]), cookie=str(front["cookie"]), replica=replica,
    )  # fmt: skip

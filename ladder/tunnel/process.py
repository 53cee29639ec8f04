"""The tunnel keeper as a process: started detached, leased by PID and start time, stopped by PID.

The forward lives in a process of its own (:mod:`ladder.tunnel.keeper`) so that whoever holds the
lease — the flow run, ``ladder tunnel open``, or the janitor in another process after the holder
died — can end it. The order keeps "recorded before it is made": the keeper is started idle
(waiting on its stdin), the lease records its PID and start time, and only then does the keeper
get its instructions and open the SSH connection. A keeper whose parent dies before that reads
end-of-file and exits without connecting.

The undo kind ``ssh_tunnel`` kills the keeper by PID after checking it is still *that* process
(same start time in ``/proc/PID/stat``, ``ladder.tunnel.keeper`` in its command line): a PID the
system gave to another process since is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from ladder.config import SSHConfig
from ladder.errors import HostKeyError, SSHError
from ladder.leases import Lease, LeaseLedger, register_undo
from ladder.procs import pid_alive
from ladder.settings import settings

KEEPER_MODULE = "ladder.tunnel.keeper"
STATUS_FILE = "status.json"
LOG_FILE = "keeper.log"
KEEP_DAYS = 7  # how long a keeper's status and log stay in $LADDER_HOME/tunnels
_children: dict[int, subprocess.Popen[bytes]] = {}  # keepers this process started, to reap them


class KeeperSpec(BaseModel):
    """What the keeper is told on its stdin (never on its command line: it holds the key)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # the input holds the key
    ssh: SSHConfig
    private_key: SecretStr | None = None
    remote_host: str
    remote_port: int
    local_port: int
    lease_id: str
    ledger_url: SecretStr
    max_reconnects: int = 5

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        data["private_key"] = self.private_key.get_secret_value() if self.private_key else None
        data["ledger_url"] = self.ledger_url.get_secret_value()
        return json.dumps(data)


class TunnelUndo(BaseModel):
    """Undo payload of ``ssh_tunnel``: the keeper's identity and where it keeps its status."""

    model_config = ConfigDict(extra="forbid")
    pid: int
    start_time: int
    local_port: int
    run_dir: str


@dataclass(frozen=True)
class Keeper:
    """A started keeper: its PID, the start time that tells it from a later process with the same
    PID, and its directory (status file, log)."""

    pid: int
    start_time: int
    run_dir: Path

    def status(self) -> dict[str, Any]:
        return read_status(self.run_dir)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_keeper(pid: int, started: int) -> bool:
    """True when ``pid`` is alive and is the keeper that started at ``started``."""
    if not pid_alive(pid) or start_time(pid) != started:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return KEEPER_MODULE.encode() in cmdline


def read_status(run_dir: Path) -> dict[str, Any]:
    """The keeper's last status (``{}`` before it wrote one)."""
    try:
        return dict(json.loads((run_dir / STATUS_FILE).read_text()))
    except (OSError, ValueError):
        return {}


def _prune(tunnels: Path, keep_days: int = KEEP_DAYS) -> None:
    """Remove the directories (status, log) of keepers that last wrote more than a week ago."""
    horizon = time.time() - keep_days * 86400
    for old in tunnels.glob("*/"):
        with contextlib.suppress(OSError):
            if max(f.stat().st_mtime for f in [old, *old.iterdir()]) < horizon:
                shutil.rmtree(old)


def spawn_keeper() -> Keeper:
    """Start an idle keeper, detached (a session of its own), in a new run directory."""
    tunnels = settings().home / "tunnels"
    _prune(tunnels)
    run_dir = tunnels / uuid.uuid4().hex[:12]
    run_dir.mkdir(parents=True, mode=0o700)
    root = Path(__file__).resolve().parents[2]  # `-m` finds ladder from here, installed or not
    with (run_dir / LOG_FILE).open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", KEEPER_MODULE, str(run_dir)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            cwd=root,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    started = start_time(proc.pid)
    # /proc/PID/cmdline is empty for a moment after exec: wait until it names the keeper, so
    # that whoever checks its identity from now on (to stop it) sees what the lease recorded
    deadline = time.monotonic() + 10
    while started is None or not is_keeper(proc.pid, started):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SSHError(f"the tunnel keeper did not start: see {run_dir / LOG_FILE}")
        time.sleep(0.01)
        started = start_time(proc.pid)
    return Keeper(proc.pid, started, run_dir)


def instruct(keeper: Keeper, spec: KeeperSpec) -> None:
    """Hand the keeper its spec: from here on it connects and forwards."""
    proc = _children[keeper.pid]
    assert proc.stdin is not None
    try:
        proc.stdin.write(spec.to_json().encode() + b"\n")
        proc.stdin.close()
    except OSError:
        raise SSHError(f"the tunnel keeper died before it started: see {keeper.run_dir / LOG_FILE}") from None


def wait_ready(keeper: Keeper, timeout: float) -> dict[str, Any]:
    """Wait until the keeper reports its forward accepting (``ready``); SSHError with the
    keeper's own one-line reason when it failed, died or took longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        status = keeper.status()
        if status.get("state") == "ready":
            return status
        if status.get("state") in ("failed", "closed") or not pid_alive(keeper.pid):
            why = status.get("error") or f"it exited; see {keeper.run_dir / LOG_FILE}"
            raise (HostKeyError if status.get("host_key") else SSHError)(why)
        if time.monotonic() > deadline:
            raise SSHError(f"the tunnel was not ready within {timeout:.0f} s (last state: "
                           f"{status.get('state', 'starting')}); see {keeper.run_dir / LOG_FILE}")  # fmt: skip
        time.sleep(0.1)


def start_tunnel(
    ledger: LeaseLedger,
    spec: KeeperSpec,
    *,
    owner: str,
    ttl: timedelta,
    target: str,
    description: str,
    ready_timeout: float = 60,
) -> tuple[Lease, Keeper]:
    """Start a keeper, lease it (kind ``ssh_tunnel``), instruct it and wait until its forward
    accepts. Any failure reverts the lease, which stops the keeper; the lease is active after."""
    keeper = spawn_keeper()
    undo = TunnelUndo(pid=keeper.pid, start_time=keeper.start_time,
                      local_port=spec.local_port, run_dir=str(keeper.run_dir))  # fmt: skip
    try:
        lease = ledger.take("ssh_tunnel", target, owner=owner, ttl=ttl,
                            undo=undo.model_dump(), description=description)  # fmt: skip
    except BaseException:
        _stop(keeper.pid, keeper.start_time)
        raise
    try:
        instruct(keeper, spec.model_copy(update={"lease_id": lease.id}))
        wait_ready(keeper, ready_timeout)
    except BaseException:
        ledger.revert(lease.id)
        raise
    return ledger.activate(lease.id), keeper


def _stop(pid: int, started: int, grace: float = 10) -> bool:
    """SIGTERM the keeper (it closes its forward and SSH connection), SIGKILL after ``grace``.
    False when that process was already gone."""
    if not is_keeper(pid, started):
        _reap(pid)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while is_keeper(pid, started) and time.monotonic() < deadline:
        _reap(pid, block=False)
        time.sleep(0.05)
    if is_keeper(pid, started):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int, block: bool = True) -> None:
    proc = _children.get(pid)
    if proc is None:
        return
    if block:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return
    elif proc.poll() is None:
        return
    del _children[pid]


@register_undo("ssh_tunnel", payload=TunnelUndo)
def _close_tunnel(payload: dict[str, Any]) -> str:
    spec = TunnelUndo.model_validate(payload)
    status = read_status(Path(spec.run_dir))
    if spec.pid == os.getpid():  # the keeper itself, giving up: it is on its way out
        return f"the tunnel on 127.0.0.1:{spec.local_port} closed: its keeper {status.get('error')}"
    stopped = _stop(spec.pid, spec.start_time)
    status = read_status(Path(spec.run_dir))
    reconnects = int(status.get("reconnects") or 0)
    again = f", after {reconnects} reconnect(s)" if reconnects else ""
    if stopped:
        return f"closed the tunnel on 127.0.0.1:{spec.local_port} (keeper pid {spec.pid}{again})"
    return f"the tunnel on 127.0.0.1:{spec.local_port} was already closed (keeper pid {spec.pid}{again})"

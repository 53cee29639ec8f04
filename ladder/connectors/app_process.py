"""The debug replica of the app as a process on a host: started detached, stopped by PID.

:func:`start` runs the environment's ``replica.command`` (an argv list; ``{port}`` replaced by
the port) with a clean environment: a fixed ``PATH``, the environment's ``replica.env``, the
runbook's extra variables (e.g. ``LOG_LEVEL=debug``) and ``LADDER_REPLICA=<marker>``. It is
detached with ``setsid`` (its own process group, so a dropped SSH session does not end it), its
pid and log in a run directory of 0700 under ``work_dir``. A real app that needs secrets starts
through a wrapper script on the host that reads them there: nothing secret crosses Ladder.

:func:`stop` finds the pid in the run directory and, only if that process still carries the
marker in its environment (a reused pid is never signalled), ends its process group: SIGTERM,
then SIGKILL. It removes the run directory and is idempotent: a replica already gone is a success.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from ladder.config_hosts import ReplicaProcessConfig
from ladder.connectors.hosts import Host, alive
from ladder.errors import ConnectorError

__all__ = ["MARKER_ENV", "log_tail", "run_dir", "start", "stop"]

MARKER_ENV = "LADDER_REPLICA"
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MARKER = re.compile(r"^[0-9a-f]{8,32}$")
_RUN_DIR = re.compile(r"^/[\w./-]*/ladder-replica-[0-9a-f]{8,32}$")
# $0 is the run directory, "$@" the command; prints the detached command's pid
_SPAWN = (
    'mkdir -m 700 -- "$0" || exit 1; '
    'setsid "$@" > "$0/replica.log" 2>&1 < /dev/null & echo $! > "$0/replica.pid" && echo $!'
)


def run_dir(work_dir: str, marker: str) -> str:
    """The replica's run directory on the host (pid, log), named by its marker."""
    if not _MARKER.match(marker):
        raise ConnectorError(f"replica marker {marker!r} is not hex")
    return f"{work_dir.rstrip('/') or ''}/ladder-replica-{marker}"


def _argv(config: ReplicaProcessConfig, extra_env: Mapping[str, str], marker: str) -> list[str]:
    argv = ["env", "-i"]
    if config.cwd:
        argv += ["-C", config.cwd]
    merged = {**config.env, **extra_env, MARKER_ENV: marker}
    argv += [_PATH, *(f"{k}={v}" for k, v in merged.items())]
    return argv + [a.replace("{port}", str(config.port)) for a in config.command]


def start(
    host: Host, config: ReplicaProcessConfig, extra_env: Mapping[str, str], marker: str
) -> int:
    """Start the replica detached on ``host``; its pid (the process group's leader)."""
    directory = run_dir(config.work_dir, marker)
    res = host.run(["sh", "-c", _SPAWN, directory, *_argv(config, extra_env, marker)], timeout=30)
    last = res.stdout.strip().splitlines()[-1:] if res.ok else []
    if not last or not last[0].isdigit():
        raise ConnectorError(f"{host.label}: cannot start the replica: {res.tail(3)}")
    return int(last[0])


def log_tail(host: Host, directory: str, lines: int = 8) -> str:
    """The last lines of the replica's log, for an error message."""
    res = host.run(["tail", "-n", str(lines), "--", f"{directory}/replica.log"], timeout=30)
    return res.stdout.strip() if res.ok else ""


def _pid(host: Host, directory: str) -> int | None:
    res = host.run(["cat", "--", f"{directory}/replica.pid"], timeout=30)
    text = res.stdout.strip()
    return int(text) if res.ok and text.isdigit() else None


def _carries(host: Host, pid: int, marker: str) -> bool:
    """True when process ``pid`` has ``LADDER_REPLICA=<marker>`` in its environment."""
    entry = f"{MARKER_ENV}={marker}"
    return host.run(["grep", "-qzxF", "--", entry, f"/proc/{pid}/environ"], timeout=30).ok


def stop(host: Host, directory: str, marker: str, grace: float = 15) -> str:
    """Stop the replica started in ``directory`` (see the module docstring); what was done."""
    if not _RUN_DIR.match(directory) or not directory.endswith(marker):
        raise ConnectorError(f"{directory!r} is not a replica run directory of marker {marker}")
    pid = _pid(host, directory)
    if pid is None or not alive(host, pid) or not _carries(host, pid, marker):
        outcome = "the debug replica was not running any more"
    else:
        outcome = _end_group(host, pid, grace)
    res = host.run(["rm", "-rf", "--", directory], timeout=30)
    if not res.ok:
        raise ConnectorError(f"{host.label}: cannot remove {directory}: {res.tail(2)}")
    return outcome


def _end_group(host: Host, pid: int, grace: float) -> str:
    for signal_name, wait in (("TERM", grace), ("KILL", 5.0)):
        host.run(["kill", f"-{signal_name}", "--", f"-{pid}"], timeout=30)
        deadline = time.monotonic() + wait
        while alive(host, pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not alive(host, pid):
            return f"stopped the debug replica pid {pid} on {host.label} (SIG{signal_name})"
    raise ConnectorError(f"{host.label}: the debug replica pid {pid} does not stop")

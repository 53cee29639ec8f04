"""A host to run commands on: argv in, :class:`~ladder.procs.Result` out, files put in place.

Rung 4 talks to a staging host through this small interface only, so the same code runs over
SSH (:class:`SSHHost`, a fabric Connection from ``ladder.connectors.ssh``) and on this machine
(:class:`LocalHost`: the sandbox, whose "staging host" is the machine itself).

Commands are argv lists. Over SSH the remote shell gets ``shlex.join(argv)``: every word
quoted, never text pasted from input. Something that must outlive one command (a tracer) is
started by :func:`spawn`: a constant ``sh -c`` script with the argv as its positional
parameters, detached with ``setsid`` so a dropped SSH session does not take it down, its pid
printed for a later :func:`signal`.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

from ladder.config import SSHConfig
from ladder.errors import ConnectorError
from ladder.procs import Result
from ladder.procs import run as run_local

if TYPE_CHECKING:
    from ladder.connectors.ssh import SSHConnection

__all__ = ["Host", "HostRef", "LocalHost", "SSHHost", "alive", "signal", "spawn"]

# $0 is the output file, "$@" the command; prints the detached command's pid.
_SPAWN = 'setsid "$@" > "$0" 2>&1 < /dev/null & echo $!'


class Host(Protocol):
    """Where commands run. ``label`` names the host in messages and leases."""

    label: str

    def run(self, argv: Sequence[str], *, timeout: float = 60) -> Result:
        """Run ``argv`` to its end; a non-zero exit is a Result, not an exception."""
        ...

    def put(self, local: Path, remote: str) -> None:
        """Copy the local file ``local`` to ``remote`` on the host (SFTP over SSH)."""
        ...

    def close(self) -> None: ...


class LocalHost:
    """This machine as the host (the sandbox's staging)."""

    label = "localhost"

    def run(self, argv: Sequence[str], *, timeout: float = 60) -> Result:
        return run_local(argv, timeout=timeout)

    def put(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def close(self) -> None:
        pass


class SSHHost:
    """A staging host over SSH: an :class:`~ladder.connectors.ssh.SSHConnection` (pinned host
    keys, key from a secret reference), which quotes every argv word with ``shlex``."""

    def __init__(self, connection: SSHConnection) -> None:
        self.connection = connection
        self.label = connection.address

    def run(self, argv: Sequence[str], *, timeout: float = 60) -> Result:
        return self.connection.run(list(argv), timeout=timeout)

    def put(self, local: Path, remote: str) -> None:
        self.connection.put(local, remote)

    def close(self) -> None:
        self.connection.close()


class HostRef(BaseModel):
    """How to reach a host again later (a lease's undo, run by the janitor): over SSH with
    this config (secrets only as references), or this machine (``local``)."""

    model_config = ConfigDict(extra="forbid")
    ssh: SSHConfig | None = None
    local: bool = False

    def open(self) -> Host:
        if self.ssh is not None:
            from ladder.connectors.ssh import SSHConnection

            return SSHHost(SSHConnection(self.ssh))
        if self.local:
            return LocalHost()
        raise ConnectorError("a host reference names neither ssh nor local")


def spawn(host: Host, argv: Sequence[str], output: str) -> int:
    """Start ``argv`` detached on ``host``, its stdout and stderr in ``output``; its pid."""
    res = host.run(["sh", "-c", _SPAWN, output, *argv], timeout=30)
    last = res.stdout.strip().splitlines()[-1:] if res.ok else []
    if not last or not last[0].isdigit():
        raise ConnectorError(f"{host.label}: cannot start {argv[0]}: {res.tail()}")
    return int(last[0])


def signal(host: Host, pid: int, name: str = "INT") -> bool:
    """Send signal ``name`` to ``pid`` on ``host``; False when no such process exists."""
    return host.run(["kill", f"-{name}", str(pid)], timeout=30).ok


def alive(host: Host, pid: int) -> bool:
    """True when ``pid`` exists on ``host`` and is not a zombie."""
    res = host.run(["ps", "-o", "stat=", "-p", str(pid)], timeout=30)
    return res.ok and bool(res.stdout.strip()) and not res.stdout.strip().startswith("Z")

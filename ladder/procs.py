"""Running outside programs: argv lists only, results as values, failures that say what happened."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """What a finished command did."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, n: int = 10) -> str:
        """The last ``n`` lines of stderr (or stdout when stderr is empty)."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-n:])

    def describe(self) -> str:
        return f"{' '.join(self.argv)} exited {self.exit_code}: {self.tail()}"


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    timeout: float | None = 120,
) -> Result:
    """Run ``argv`` (never through a shell) and return its :class:`Result`."""
    merged = {**os.environ, **env} if env else None
    proc = subprocess.run(
        list(argv),
        env=merged,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # /proc/PID/stat: "pid (comm) STATE ..."; comm may hold spaces and parentheses
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]  # noqa: SIM115
    except (OSError, IndexError):
        return True
    return state != "Z"


def child_env(extra: Mapping[str, str], drop: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment for a child, with ``extra`` added and ``drop`` left out."""
    return {k: v for k, v in {**os.environ, **extra}.items() if k not in drop}

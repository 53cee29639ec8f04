"""Finding Puma on a host: its master (or single process) and workers, from a pidfile or ``ps``.

Puma names its processes, which is what the process list is read by:

- single mode and a cluster's master: ``puma 5.6.5 (tcp://127.0.0.1:9292) [app]``;
- a cluster's workers: ``puma: cluster worker 0: 4121 [app]`` (index, then the master's pid).

In single mode the process to trace is the one process. In cluster mode the worker is chosen
explicitly (by index): a replayed request reaches one worker, and rbtrace attaches to one process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ladder.connectors.hosts import Host
from ladder.errors import ConnectorError, GuardrailError

__all__ = ["PumaProcess", "PumaServer", "find_puma"]

_MASTER = re.compile(r"^puma \d[\w.]* \((?P<bind>[^)]*)\)(?: \[(?P<app>[^\]]*)\])?")
_WORKER = re.compile(
    r"^puma: cluster worker (?P<index>\d+): (?P<master>\d+)(?: \[(?P<app>[^\]]*)\])?"
)


@dataclass(frozen=True)
class PumaProcess:
    pid: int
    title: str
    worker: int | None = None  # the index of a cluster worker

    def describe(self) -> str:
        what = f"worker {self.worker}" if self.worker is not None else "process"
        return f"{what} pid {self.pid} ({self.title})"


@dataclass(frozen=True)
class PumaServer:
    """One Puma server on a host: its master (the one process in single mode) and workers."""

    master: PumaProcess
    workers: list[PumaProcess] = field(default_factory=list)
    found_by: str = "process list"

    @property
    def mode(self) -> Literal["single", "cluster"]:
        return "cluster" if self.workers else "single"

    def target(self, worker: int | None) -> PumaProcess:
        """The process to trace: the single process, or the cluster worker with index ``worker``."""
        if self.mode == "single":
            if worker is not None:
                raise GuardrailError(
                    f"worker {worker} was chosen but Puma pid {self.master.pid} runs in single mode"
                )
            return self.master
        indexes = ", ".join(str(w.worker) for w in self.workers)
        if worker is None:
            raise GuardrailError(
                f"Puma pid {self.master.pid} runs in cluster mode: choose the worker to trace "
                f"(worker: one of {indexes})"
            )
        for w in self.workers:
            if w.worker == worker:
                return w
        raise GuardrailError(
            f"Puma pid {self.master.pid} has no worker {worker} (it has {indexes})"
        )

    def describe(self) -> str:
        base = f"Puma {self.mode} mode, pid {self.master.pid} (found by {self.found_by})"
        if self.workers:
            base += ": workers " + ", ".join(f"{w.worker}=pid {w.pid}" for w in self.workers)
        return base


def _processes(host: Host) -> list[tuple[int, int, str]]:
    res = host.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], timeout=30)
    if not res.ok:
        raise ConnectorError(f"{host.label}: cannot list processes: {res.tail()}")
    out = []
    for line in res.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            out.append((int(parts[0]), int(parts[1]), parts[2]))
    return out


def _read_pidfile(host: Host, pidfile: str) -> int:
    res = host.run(["cat", "--", pidfile], timeout=30)
    text = res.stdout.strip()
    if not res.ok or not text.isdigit():
        raise ConnectorError(
            f"{host.label}: cannot read Puma's pidfile {pidfile}: {res.tail() or 'empty'}"
        )
    return int(text)


def find_puma(host: Host, pidfile: str | None = None) -> PumaServer:
    """The Puma server on ``host``: the one ``pidfile`` names, else the only one running."""
    procs = _processes(host)
    masters = {pid: args for pid, _, args in procs if _MASTER.match(args)}
    if pidfile:
        pid = _read_pidfile(host, pidfile)
        if pid not in masters:
            title = next((a for p, _, a in procs if p == pid), None)
            raise ConnectorError(
                f"{host.label}: pidfile {pidfile} names pid {pid}, which is "
                + (f"not Puma ({title})" if title else "not running (a stale pidfile?)")
            )
        found_by = f"pidfile {pidfile}"
    else:
        if not masters:
            raise ConnectorError(f"{host.label}: no Puma process is running")
        if len(masters) > 1:
            listed = "; ".join(f"pid {p}: {a}" for p, a in sorted(masters.items()))
            raise ConnectorError(
                f"{host.label}: {len(masters)} Puma servers are running ({listed}): "
                "name the pidfile (staging.puma_pidfile)"
            )
        pid = next(iter(masters))
        found_by = "process list"
    workers = []
    for wpid, ppid, args in procs:
        m = _WORKER.match(args)
        if m and ppid == pid:
            workers.append(PumaProcess(wpid, args, int(m["index"])))
    workers.sort(key=lambda w: w.worker or 0)
    return PumaServer(PumaProcess(pid, masters[pid]), workers, found_by)

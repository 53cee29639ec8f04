"""One staging trace, start to end: find Puma, preflight, load probes, trace, replay, detach.

Everything it changes on the host is a lease taken *before* the change: each probe that installs
something (``rbtrace_probe``, undone by loading its reviewed undo file) and the tracer
(``rbtrace_tracer``, undone by SIGINT to whatever rbtrace client is attached). All of them are
reverted before :func:`run_trace` returns, whatever happened; if the process dies first, the
tracer stops itself at its deadline (``timeout -s INT``) and the janitor reverts the leases.
Output is scrubbed before it is parsed or kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ladder.connectors import rbtrace
from ladder.connectors.hosts import Host, HostRef
from ladder.connectors.puma import PumaProcess, find_puma
from ladder.errors import RbtraceError
from ladder.leases import Lease, LeaseLedger
from ladder.trace.parse import Trace, parse_trace
from ladder.trace.probes import AllowedProbe
from ladder.trace.replay import Identity, Replayed, ReplayRequest, replay
from ladder.trace.summary import scrub_trace_text

__all__ = ["TraceOutcome", "TracePlan", "run_trace"]


@dataclass(frozen=True)
class TracePlan:
    """A trace that passed the guardrails: every field checked by the rung before any I/O."""

    host: HostRef
    host_name: str
    base_url: str
    seconds: int
    probes: list[AllowedProbe] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    slow_ms: int | None = None
    backtrace_frames: int | None = None
    requests: list[ReplayRequest] = field(default_factory=list)
    identity: Identity = field(default_factory=Identity)
    worker: int | None = None
    pidfile: str | None = None
    work_dir: str = "/tmp"  # noqa: S108  # on the host; a 0700 directory is made in it


@dataclass
class TraceOutcome:
    server: str
    target: PumaProcess
    checks: list[str]
    replayed: list[Replayed]
    text: str  # the scrubbed trace (rbtrace's output, then the probes' log)
    trace: Trace
    undone: list[str]
    backtraces: str = ""


def run_trace(
    plan: TracePlan, ledger: LeaseLedger, owner: str, ttl: timedelta, say: Callable[[str], None]
) -> TraceOutcome:
    host = plan.host.open()
    taken: list[Lease] = []
    workdir = None
    try:
        server = find_puma(host, plan.pidfile)
        target = server.target(plan.worker)
        say(f"{plan.host_name}: {server.describe()}; tracing {target.describe()}")
        checks = rbtrace.preflight(host, target.pid)
        workdir = f"{plan.work_dir.rstrip('/')}/trace-ladder-{owner[:8]}-{target.pid}"
        mk = host.run(["mkdir", "-p", "-m", "700", "--", workdir], timeout=30)
        if not mk.ok:
            raise RbtraceError(f"{host.label}: cannot create {workdir}: {mk.tail()}")
        _hand_over(host, workdir, target.pid)
        probe_log = f"{workdir}/probe.log"
        for probe in plan.probes:
            taken.extend(_load_probe(host, plan, ledger, owner, ttl, target.pid, workdir, probe))
        output = f"{workdir}/rbtrace.out"
        taken.append(
            ledger.take(
                "rbtrace_tracer",
                f"rbtrace on pid {target.pid} at {plan.host_name}",
                owner=owner,
                ttl=ttl,
                undo={"host": plan.host.model_dump(mode="json"), "target_pid": target.pid,
                      "output": output},
                description="a tracer attached to a staging Puma process",
            )
        )  # fmt: skip
        tracer = rbtrace.start_tracer(
            host, target.pid, plan.methods, plan.slow_ms, plan.seconds, output
        )
        started = time.monotonic()  # the tracer's duration counts from here
        ledger.activate(taken[-1].id)
        replayed = replay(plan.base_url, plan.requests, plan.identity)
        say(f"replayed {len(replayed)} request(s): {[r.status for r in replayed]}")
        time.sleep(max(0.0, plan.seconds - (time.monotonic() - started) - 1))
        raw = rbtrace.stop_tracer(host, tracer)
        raw += "\n" + host.run(["cat", "--", probe_log], timeout=30).stdout
        frames = ""
        if plan.backtrace_frames:
            try:
                frames = rbtrace.backtraces(host, target.pid, plan.backtrace_frames)
            except RbtraceError as exc:  # the trace is taken already: keep it, say why not
                frames = f"(no backtraces: {exc})"
    finally:
        undone = [ledger.revert(lease.id) for lease in reversed(taken)]
        if workdir is not None and all(u.state.value == "reverted" for u in undone):
            host.run(["rm", "-rf", "--", workdir], timeout=30)
        host.close()
    failed = [u for u in undone if u.state.value != "reverted"]
    if failed:
        raise RbtraceError(f"could not undo {failed[0].target}: {failed[0].outcome}")
    text = scrub_trace_text(raw)
    trace = parse_trace(text)
    return TraceOutcome(
        server=server.describe(),
        target=target,
        checks=[f"traced {target.describe()}, Ruby {checks.ruby}", *checks.notes],
        replayed=replayed,
        text=text,
        trace=trace,
        undone=[u.outcome or "" for u in undone],
        backtraces=scrub_trace_text(frames),
    )


def _hand_over(host: Host, workdir: str, pid: int) -> None:
    """Give the work directory to the target's user when we are root and it is not: it reads
    the probes there and writes their log."""
    owner = host.run(["stat", "-c", "%u", f"/proc/{pid}"], timeout=30).stdout.strip()
    me = host.run(["id", "-u"], timeout=30).stdout.strip()
    if me == "0" and owner.isdigit() and owner != "0":
        res = host.run(["chown", owner, "--", workdir], timeout=30)
        if not res.ok:
            raise RbtraceError(f"{host.label}: cannot hand {workdir} to uid {owner}: {res.tail()}")


def _load_probe(
    host: Host,
    plan: TracePlan,
    ledger: LeaseLedger,
    owner: str,
    ttl: timedelta,
    pid: int,
    workdir: str,
    probe: AllowedProbe,
) -> list[Lease]:
    """Upload a probe (and its undo) and load it; a lease first when it installs something."""
    remote = f"{workdir}/{probe.name}"
    files = [remote]
    host.put(probe.path, remote)
    lease = None
    if probe.undo is not None:
        undo_remote = f"{workdir}/{probe.undo.name}"
        host.put(Path(probe.undo), undo_remote)
        files.append(undo_remote)
        lease = ledger.take(
            "rbtrace_probe",
            f"probe {probe.name} in pid {pid} at {plan.host_name}",
            owner=owner,
            ttl=ttl,
            undo={"host": plan.host.model_dump(mode="json"), "target_pid": pid,
                  "probe": probe.name, "undo_file": undo_remote, "files": files},
            description=probe.description,
        )  # fmt: skip
    try:
        rbtrace.load_file(host, pid, remote)
    except BaseException:
        if lease is not None:
            ledger.revert(lease.id)
        raise
    if lease is None:
        return []
    ledger.activate(lease.id)
    return [lease]

"""Rung 4, staging trace: replay the failing requests on staging while rbtrace traces Puma.

Guardrails first, before anything is touched, each a one-line refusal: the host must be one the
environment marks as staging, each probe must be in the reviewed allow-list
(``probes/allowlist.yaml`` beside the runbook), each method selector plain names, and the
duration at most the runbook's ``max_duration_seconds`` as the runbook *file* says (a checkpoint
form may lower it, never raise it). Then :func:`ladder.trace.session.run_trace` does the work;
nothing is left attached or installed when the rung ends, so it hands nothing over.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from ladder.errors import GuardrailError
from ladder.rungs.base import (
    ClimbState,
    Finding,
    Minutes,
    Need,
    Rung,
    RungResult,
    RungSettings,
    Where,
)
from ladder.trace.replay import Identity, ReplayRequest

if TYPE_CHECKING:
    from ladder.config import Environment, LoadedRunbook, StagingConfig
    from ladder.trace.session import TracePlan

_SQL_SHOWN = 50


class StagingTraceSettings(RungSettings):
    host: str | None = Field(
        None, description="staging host to trace (default: the environment's first staging host)"
    )
    worker: int | None = Field(
        None, ge=0, description="Puma cluster worker (index) to trace; required in cluster mode"
    )
    probes: list[str] = Field(
        default_factory=list, description="probe files to load, from the allow-list in probes/"
    )
    methods: list[str] = Field(
        default_factory=list,
        description="methods to trace (rbtrace -m), e.g. Shop::Payment#capture!",
    )
    slow_ms: int | None = Field(None, ge=1, description="also show calls slower than this (--slow)")
    backtraces: int | None = Field(
        None, ge=1, le=200, description="after tracing, every thread's backtrace, N frames (-b)"
    )
    duration_seconds: int = Field(30, ge=2, description="how long the tracer stays attached")
    max_duration_seconds: int = Field(
        300, ge=2, le=3600, description="the longest trace this runbook allows"
    )
    replays: int = Field(5, ge=1, le=100, description="failing requests to replay")
    requests: list[ReplayRequest] = Field(
        default_factory=list, description="requests to replay when the evidence rung found none"
    )
    identity: Identity = Field(
        default_factory=Identity, description="how staging is told which user a request is from"
    )
    ttl_minutes: Minutes = Field(15, description="lease TTL of the tracer and the probes")


class StagingTraceResult(RungResult):
    host: str = ""
    target_pid: int | None = None
    checks: list[str] = Field(default_factory=list)
    replayed: list[dict[str, object]] = Field(default_factory=list)
    exceptions: list[dict[str, object]] = Field(default_factory=list)
    slowest: list[dict[str, object]] = Field(default_factory=list)
    sql: list[str] = Field(default_factory=list)
    trace: str = Field("", description="the scrubbed trace")


def staging_hosts(staging: StagingConfig) -> list[str]:
    """The hosts the environment marks as staging: ``staging.hosts``, else ``staging.ssh.host``,
    else this machine when the app runs here (``local``, the sandbox)."""
    if staging.hosts:
        return list(staging.hosts)
    if staging.ssh is not None:
        return [staging.ssh.host]
    return ["localhost"] if staging.local else []


def _runbook_limit(state: ClimbState, settings: StagingTraceSettings) -> int:
    """The maximum duration as the runbook file says (never raised by a checkpoint form)."""
    from ladder.config import load_runbook

    written = load_runbook(state.runbook_path).runbook.rungs.settings("staging_trace")
    limit = getattr(written, "max_duration_seconds", settings.max_duration_seconds)
    return min(limit, settings.max_duration_seconds)


def plan_trace(
    state: ClimbState, settings: StagingTraceSettings, env: Environment
) -> TracePlan | str:
    """The checked plan, or why the rung is unavailable; GuardrailError for a refusal."""
    from ladder.connectors.hosts import HostRef
    from ladder.rungs.evidence import EvidenceResult
    from ladder.trace.probes import allowed_probe, check_selector
    from ladder.trace.replay import from_evidence
    from ladder.trace.session import TracePlan

    staging = env.staging
    if staging is None:
        return "the environment has no staging"
    if staging.unavailable:
        return staging.unavailable
    marked = staging_hosts(staging)
    host = settings.host or (marked[0] if marked else None)
    if host is None or host not in marked:
        raise GuardrailError(
            f"refused host {host!r}: environment {env.name!r} marks as staging only "
            f"{', '.join(marked) or 'no host'} (staging.hosts)"
        )
    limit = _runbook_limit(state, settings)
    if settings.duration_seconds > limit:
        raise GuardrailError(
            f"refused duration {settings.duration_seconds} s: the runbook allows at most {limit} s "
            "(rungs.staging_trace.max_duration_seconds)"
        )
    if settings.ttl_minutes * 60 <= settings.duration_seconds:
        raise GuardrailError("refused: ttl_minutes must outlast duration_seconds")
    probes_dir = state.runbook_path.parent / "probes"
    probes = [allowed_probe(p, probes_dir) for p in settings.probes]
    methods = [check_selector(m) for m in settings.methods]
    if not probes and not methods and settings.slow_ms is None:
        return "nothing to trace: the runbook names no probes, methods or slow_ms"
    if not staging.app_url:
        if env.sandbox:
            return "the sandbox's staging app is not running: `ladder sandbox up` starts it"
        return "the environment's staging has no app_url to replay requests against"
    evidence = state.result(EvidenceResult)
    found = from_evidence(evidence.replayable) if evidence and evidence.status == "done" else []
    requests = (found or settings.requests)[: settings.replays]
    if not requests:
        return "no failing request to replay (the evidence rung found none; list `requests`)"
    ident = settings.identity
    if any(r.user_id for r in requests) and not (ident.header or ident.cookie):
        return "the requests come from users but `identity` names no header or cookie to say so"
    if staging.ssh is not None:
        ref = HostRef(ssh=staging.ssh.model_copy(update={"host": host}))
    elif staging.local:
        ref = HostRef(local=True)
    else:
        return "the environment's staging has no ssh to reach its hosts"
    return TracePlan(
        host=ref,
        host_name=host,
        base_url=staging.app_url,
        seconds=settings.duration_seconds,
        probes=probes,
        methods=methods,
        slow_ms=settings.slow_ms,
        backtrace_frames=settings.backtraces,
        requests=requests,
        identity=settings.identity,
        worker=settings.worker,
        pidfile=staging.puma_pidfile,
        work_dir=staging.work_dir,
    )


def run(state: ClimbState, settings: StagingTraceSettings) -> RungResult:
    """Trace the staging Puma while replaying the incident's failing requests."""
    from ladder.leases import LeaseLedger
    from ladder.trace.session import run_trace
    from ladder.trace.summary import exception_rows, summary_markdown

    plan = plan_trace(state, settings, state.environment)
    if isinstance(plan, str):
        return RUNG.result("unavailable", reason=plan)
    ttl = timedelta(minutes=settings.ttl_minutes)
    notes: list[str] = []
    done = run_trace(plan, LeaseLedger(), state.owner, ttl, notes.append)
    trace = done.trace
    summary = summary_markdown(trace)
    replayed = "\n".join(
        f"| {r.method} {r.path} | {r.user_id or ''} | {r.status or r.error} |"
        for r in done.replayed
    )
    details = (
        f"**{plan.host_name}**: {done.server}\n\n"
        + "\n".join(f"- {c}" for c in done.checks)
        + f"\n\n| replayed | user | status |\n|---|---|---|\n{replayed}\n\n{summary}\n\n"
        + "Undone: " + "; ".join(done.undone or ["nothing was installed"])
        + (f"\n\n### Thread backtraces\n\n```\n{done.backtraces}\n```" if done.backtraces else "")
    )  # fmt: skip
    incident = state.incident.id
    state.publish.markdown("staging-trace", details, f"Staging trace for {incident} (scrubbed)")
    rows = exception_rows(trace.raised)
    if rows:
        state.publish.table("staging-trace-exceptions", rows, f"Exceptions traced for {incident}")
    top = rows[0] if rows else None
    return StagingTraceResult(
        summary=f"traced pid {done.target.pid} on {plan.host_name} for {plan.seconds} s while "
        f"replaying {len(done.replayed)} request(s): {len(trace.all_calls())} calls, "
        f"{len(trace.raised)} exceptions"
        + (f", top: {top['exception']} in {top['raised in']}" if top else ""),
        details_markdown=details,
        host=plan.host_name,
        target_pid=done.target.pid,
        checks=done.checks,
        replayed=[r.model_dump() for r in done.replayed],
        exceptions=rows,
        slowest=[
            {"call": c.name, "ms": round((c.seconds or 0) * 1000, 3)} for c in trace.slowest()
        ],
        sql=trace.sql()[:_SQL_SHOWN],
        trace=done.text[:200_000],
    )


def check(settings: StagingTraceSettings, loaded: LoadedRunbook, where: Where) -> list[Finding]:
    """The guardrails that need no host, for ``ladder runbook check``."""
    from ladder.trace.probes import allowed_probe, check_selector

    out: list[Finding] = []
    for probe in settings.probes:
        try:
            allowed_probe(probe, loaded.path.parent / "probes")
        except GuardrailError as exc:
            out.append(("error", f"{where('probes')}: {exc}"))
    for selector in settings.methods:
        try:
            check_selector(selector)
        except GuardrailError as exc:
            out.append(("error", f"{where('methods')}: {exc}"))
    if settings.duration_seconds > settings.max_duration_seconds:
        out.append(("error", f"{where('duration_seconds')}: {settings.duration_seconds} s is "
                    f"above max_duration_seconds ({settings.max_duration_seconds} s)"))  # fmt: skip
    staging = loaded.environment.staging
    if staging is not None and not (staging.ssh or staging.local or loaded.environment.sandbox):
        out.append(("error", f"{where()}: the environment's staging has no ssh to reach its hosts"))
    if settings.host and staging is not None and settings.host not in staging_hosts(staging):
        out.append(("error", f"{where('host')}: {settings.host!r} is not among the "
                    "environment's staging hosts"))  # fmt: skip
    return out


RUNG = Rung(
    number=4,
    name="staging_trace",
    title="Replay and trace on staging",
    touches="staging only",
    approval_by_default=True,
    settings=StagingTraceSettings,
    needs=(Need("staging", lambda env: env.staging),),
    run=run,
    check=check,
)

"""escalate-incident: climb the ladder for one incident, least invasive rung first.

Rungs run in ladder order up to ``until``. Before each rung that needs approval the run pauses
with a typed form. Whatever happens (done, stopped, failed, cancelled) the run reverts its leases
and publishes the incident report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from ladder import progress
from ladder.config import Environment, LoadedRunbook, bind_environment, load_runbook
from ladder.errors import CheckpointError, LadderError
from ladder.evidence import to_markdown as evidence_markdown
from ladder.incident import Incident
from ladder.leases import LeaseLedger
from ladder.report import Decision, LeaseRecord, Report, RungReport, now
from ladder.rungs import LADDER, LocalReplicaSettings, Rung, RungName, RungSettings, index
from ladder.secrets import resolve_dsn
from ladder.subset import compile_condition, parse_seed
from tasks.checkpoints import checkpoint
from tasks.evidence import collect_evidence
from tasks.local_replica import create_local_replica, default_target
from tasks.report import publish_report


@dataclass
class Climb:
    """What the rungs of one run share: the incident, where it happened, what was found."""

    loaded: LoadedRunbook
    environment: Environment
    incident: Incident
    owner: str
    found: dict[str, Any] = field(default_factory=dict)


def _evidence(climb: Climb, settings: RungSettings) -> RungReport:
    rung = _rung("evidence")
    if not climb.environment.logs:
        return _report(
            rung,
            "unavailable",
            reason="the environment has no log files "
            "(Sentry and Datadog connectors are not built yet)",
        )
    found = collect_evidence(climb.environment, climb.incident, settings)
    climb.found["evidence"] = found
    users = found.affected_users
    if users and "user_ids" not in climb.incident.params:
        climb.incident.params["user_ids"] = users
    top = found.error_groups[0] if found.error_groups else None
    summary = (
        f"{found.errors_in_window} errors in {found.requests_in_window} requests; "
        f"{len(found.error_groups)} error groups"
        + (f", top: {top.exception_class} at {top.top_frame} ({top.count}x)" if top else "")
        + f"; {len(users)} affected users"
    )
    return _report(
        rung,
        "done",
        summary=summary,
        details_markdown=evidence_markdown(found),
        data={
            "errors_in_window": found.errors_in_window,
            "requests_in_window": found.requests_in_window,
            "error_groups": len(found.error_groups),
            "affected_users": users,
        },
    )


def _local_replica(climb: Climb, settings: RungSettings) -> RungReport:
    assert isinstance(settings, LocalReplicaSettings)
    rung = _rung("local_replica")
    env = climb.environment
    if env.production_db is None:
        return _report(rung, "unavailable", reason="the environment has no production_db")
    if settings.policy is None:
        return _report(rung, "unavailable", reason="the runbook names no sanitization policy")
    missing = _missing_seed_params(settings.seeds, climb.incident.params)
    if missing:
        return _report(
            rung,
            "unavailable",
            reason=f"the incident has no {', '.join(missing)} to seed the subset with "
            "(and the evidence rung found none)",
        )
    server = settings.target if settings.target is not None else env.production_db.dsn
    target = default_target(resolve_dsn(server), climb.incident, climb.owner)
    found = create_local_replica(
        env,
        climb.incident,
        settings,
        str(climb.loaded.resolve(settings.policy)),
        target,
        climb.owner,
    )
    rows = found["rows"]
    summary = (
        f"{sum(rows.values())} rows in {len(rows)} tables, sanitized and validated, "
        f"in {found['seconds']:.1f} s → {found['target']}"
    )
    table = "\n".join(f"| {t} | {n} |" for t, n in rows.items())
    details = (
        f"Replica: `{found['target']}` (a lease: dropped when the run ends)\n\n"
        f"Validation gate: {found['validation']['checks']} checks, "
        f"{'passed' if found['validation']['passed'] else 'FAILED'}\n\n"
        f"| table | rows |\n|---|---:|\n{table}"
    )
    return _report(rung, "done", summary=summary, details_markdown=details, data=found)


def _missing_seed_params(seeds: list[str], params: dict[str, Any]) -> list[str]:
    names = {
        name for seed in seeds for name in compile_condition(parse_seed(seed).condition).params
    }
    return sorted(name for name in names if name not in params)


# The rungs Ladder can climb today; the others are reported as not_built.
RUNNERS: dict[str, Callable[[Climb, RungSettings], RungReport]] = {
    "evidence": _evidence,
    "local_replica": _local_replica,
}


def _rung(name: str) -> Rung:
    return LADDER[index(name)]


def _report(rung: Rung, status: str, **kw: Any) -> RungReport:
    return RungReport(number=rung.number, name=rung.name, title=rung.title, status=status, **kw)


def _automatic_approvals(approve_all: bool, env: Environment) -> str | None:
    if not approve_all:
        return None
    if env.sandbox:
        return "sandbox"
    if os.environ.get("LADDER_TEST_MODE") == "1":
        return "test mode"
    raise CheckpointError(
        "approve_all is allowed only on the sandbox environment and in tests; "
        f"environment {env.name!r} needs a person at each checkpoint"
    )


def _bind(loaded: LoadedRunbook, incident: Incident | None) -> tuple[Environment, Incident]:
    env, sandbox_incident = bind_environment(loaded)
    incident = incident or sandbox_incident
    if incident is None:
        raise LadderError("an incident is required outside the sandbox")
    return env, incident


def _owner() -> str:
    run_id = flow_run.get_id()
    return str(run_id) if run_id else f"local-{os.getpid()}"


def _revert_leases(owner: str) -> list[LeaseRecord]:
    ledger = LeaseLedger()
    ledger.revert_owner(owner)
    return [
        LeaseRecord(
            id=lease.id,
            kind=lease.kind,
            target=lease.target,
            state=lease.state,
            expires_at=lease.expires_at,
            reverted_at=lease.reverted_at,
            outcome=lease.outcome,
        )
        for lease in ledger.list(owner=owner)
    ]


def _revert_hook(flow: Any, run: Any, state: Any) -> None:
    """Cancellation/crash hook: revert what the run leased (the janitor covers a SIGKILL)."""
    LeaseLedger().revert_owner(str(run.id))


@flow(
    name="escalate-incident",
    description="Climb the production-debugging ladder for one incident.",
    on_cancellation=[_revert_hook],
    on_crashed=[_revert_hook],
)
def escalate(
    runbook: str = "runbooks/demo.yaml",
    incident: Incident | None = None,
    until: RungName | None = None,
    approve_all: bool = False,
) -> dict[str, Any]:
    """Climb the rungs ``runbook`` names, up to ``until``, for ``incident``.

    ``incident`` may be omitted on the sandbox (its built-in incident is used). ``approve_all``
    answers every checkpoint with *approve*; it is refused outside the sandbox and tests.
    """
    logger = get_run_logger()
    loaded = load_runbook(runbook)
    env, incident = _bind(loaded, incident)
    automatic = _automatic_approvals(approve_all, env)
    owner = _owner()
    climb = Climb(loaded, env, incident.model_copy(deep=True), owner)
    report = Report(
        incident=incident,
        runbook=loaded.runbook.name,
        environment=env.name,
        flow_run_id=owner,
        approvals=f"automatic ({automatic})" if automatic else "manual",
    )
    highest = until or loaded.runbook.highest()
    timeout = int(loaded.runbook.checkpoint_timeout_minutes * 60)
    failure: BaseException | None = None
    try:
        stopped_by: Decision | None = None
        for rung in LADDER:
            rr = _climb_one(rung, climb, report, highest, stopped_by, automatic, timeout)
            report.rungs.append(rr)
            progress.emit("rung", rung=rr)
            logger.info("rung %s: %s %s", rung.name, rr.status, rr.summary or rr.reason or "")
            if report.decisions and report.decisions[-1].decision == "stop" and stopped_by is None:
                stopped_by = report.decisions[-1]
                report.outcome = "stopped"
            if rr.status == "failed":
                report.outcome = "failed"
                report.error = rr.reason
                break
        for rung in LADDER[len(report.rungs) :]:
            report.rungs.append(
                _report(rung, "skipped", reason="not reached: an earlier rung failed")
            )
    except BaseException as exc:
        failure = exc
        report.outcome = "failed"
        report.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report.leases = _revert_leases(owner)
        report.finished_at = now()
        path = publish_report(report)
        progress.emit("report", path=path, report=report)
        if failure is None and report.outcome == "failed":
            raise LadderError(f"incident {incident.id}: {report.error} (report: {path})")
    return {"report_path": path, "report": report.model_dump(mode="json")}


def _climb_one(
    rung: Rung,
    climb: Climb,
    report: Report,
    highest: str | None,
    stopped_by: Decision | None,
    automatic: str | None,
    timeout: int,
) -> RungReport:
    settings = climb.loaded.runbook.rungs.settings(rung.name)
    if stopped_by is not None:
        return _report(
            rung,
            "skipped",
            reason=f"the run was stopped at {stopped_by.rung} by {stopped_by.approver}",
        )
    if settings is None:
        return _report(rung, "skipped", reason="not in the runbook")
    if highest is None or rung.number > _rung(highest).number:
        return _report(rung, "skipped", reason=f"above until={highest}")
    runner = RUNNERS.get(rung.name)
    if runner is None:
        return _report(rung, "not_built", reason="not built yet in this version of Ladder")
    needs_approval = rung.approval_by_default if settings.approval is None else settings.approval
    if needs_approval:
        progress.emit("checkpoint", rung=rung.name)
        decision, settings = checkpoint(
            rung,
            settings,
            description=_checkpoint_text(rung, climb),
            timeout_seconds=timeout,
            automatic=automatic,
        )
        report.decisions.append(decision)
        if decision.decision != "approve":
            verb = "stopped" if decision.decision == "stop" else "skipped"
            why = f": {decision.reason}" if decision.reason else ""
            return _report(rung, "skipped", reason=f"{verb} by {decision.approver}{why}")
    started = now()
    try:
        rr = runner(climb, settings)
    except LadderError as exc:
        rr = _report(rung, "failed", reason=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug, not a refusal: keep the traceback in the run's logs
        get_run_logger().exception("rung %s failed", rung.name)
        rr = _report(rung, "failed", reason=f"unexpected {type(exc).__name__}: {exc}")
    rr.started_at, rr.finished_at = started, now()
    return rr


def _checkpoint_text(rung: Rung, climb: Climb) -> str:
    return (
        f"**Incident {climb.incident.id}**: {climb.incident.title}\n\n"
        f"Next rung: **{rung.number}. {rung.title}** — touches production: {rung.touches_production}.\n\n"
        "Choose *approve* to climb it (you may adjust its settings below), *skip* to go on "
        "to the next rung, or *stop* to end the run here. Leases are reverted either way."
    )

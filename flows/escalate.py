"""escalate-incident: climb the ladder for one incident, least invasive rung first.

Rungs run in ladder order up to ``until``. Before each rung that needs approval the run pauses
with a typed form. Whatever happens (done, stopped, failed, cancelled) the run reverts its leases
and publishes the incident report.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger
from prefect.exceptions import TerminationSignal

from ladder import progress
from ladder.config import Environment, LoadedRunbook, bind_environment, load_runbook
from ladder.errors import CheckpointError, LadderError
from ladder.incident import Incident
from ladder.leases import LeaseLedger
from ladder.report import Decision, LeaseRecord, Report, RungReport, now
from ladder.rungs import (
    LADDER,
    RUNGS,
    EvidenceSettings,
    LocalReplicaSettings,
    Rung,
    RungName,
    RungSettings,
)
from tasks.checkpoints import checkpoint
from tasks.evidence import evidence_rung
from tasks.local_replica import local_replica_rung
from tasks.naming import lease_owner
from tasks.report import publish_report, report_stem


@dataclass
class Climb:
    """What the rungs of one run share: the incident, where it happened, what was found."""

    loaded: LoadedRunbook
    environment: Environment
    incident: Incident
    owner: str


def _evidence(climb: Climb, settings: RungSettings) -> RungReport:
    assert isinstance(settings, EvidenceSettings)
    rr = evidence_rung(climb.environment, climb.incident, settings)
    users = rr.data.get("affected_users")
    if users and "user_ids" not in climb.incident.params:
        climb.incident.params["user_ids"] = users  # rung 2 seeds its subset with them
    return rr


def _local_replica(climb: Climb, settings: RungSettings) -> RungReport:
    assert isinstance(settings, LocalReplicaSettings)
    policy = str(climb.loaded.resolve(settings.policy)) if settings.policy else None
    return local_replica_rung(climb.environment, climb.incident, settings, policy, climb.owner)


# The rungs Ladder can climb today; the others are reported as not_built.
RUNNERS: dict[str, Callable[[Climb, RungSettings], RungReport]] = {
    "evidence": _evidence,
    "local_replica": _local_replica,
}


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


def _on_cancellation(flow: Any, run: Any, state: Any) -> None:
    _after_cancel_or_crash(run, state, "cancelled")


def _on_crashed(flow: Any, run: Any, state: Any) -> None:
    _after_cancel_or_crash(run, state, "failed")


def _after_cancel_or_crash(run: Any, state: Any, outcome: str) -> None:
    """Hook for a cancelled or crashed run: revert its leases and leave a short report.

    It runs where the run was managed (the runner), not in the killed process; a SIGKILLed
    worker runs no hook at all, and the janitor reverts its leases when they expire.
    """
    owner = str(run.id)
    leases = _revert_leases(owner)
    params = run.parameters or {}
    try:
        loaded = load_runbook(params.get("runbook", "runbooks/demo.yaml"))
        incident = params.get("incident")
        env, incident = _bind(loaded, Incident.model_validate(incident) if incident else None)
    except LadderError:
        return  # nothing to name the report after; the leases are reverted all the same
    if report_stem(incident.id, owner).with_suffix(".json").exists():
        return  # the run's own process wrote the full report on its way out
    report = Report(
        incident=incident,
        runbook=loaded.runbook.name,
        environment=env.name,
        flow_run_id=owner,
        outcome=outcome,
        error=state.message,
        leases=leases,
        finished_at=now(),
    )
    publish_report.fn(report)


@flow(
    name="escalate-incident",
    description="Climb the production-debugging ladder for one incident.",
    on_cancellation=[_on_cancellation],
    on_crashed=[_on_crashed],
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
    owner = lease_owner()
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
    failure = False
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
                RungReport.of(rung, "skipped", reason="not reached: an earlier rung failed")
            )
    except TerminationSignal:
        failure = True
        report.outcome = "cancelled"
        raise
    except BaseException as exc:
        failure = True
        report.outcome = "failed"
        report.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report.leases = _revert_leases(owner)
        report.finished_at = now()
        path = publish_report(report)
        progress.emit("report", path=path, report=report)
        if not failure and report.outcome == "failed":
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
        return RungReport.of(
            rung,
            "skipped",
            reason=f"the run was stopped at {stopped_by.rung} by {stopped_by.approver}",
        )
    if settings is None:
        return RungReport.of(rung, "skipped", reason="not in the runbook")
    if highest is None or rung.number > RUNGS[highest].number:
        return RungReport.of(rung, "skipped", reason=f"above until={highest}")
    runner = RUNNERS.get(rung.name)
    if runner is None:
        return RungReport.of(rung, "not_built", reason="not built yet in this version of Ladder")
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
            return RungReport.of(rung, "skipped", reason=f"{verb} by {decision.approver}{why}")
    started = now()
    try:
        rr = runner(climb, settings)
    except LadderError as exc:
        rr = RungReport.of(rung, "failed", reason=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug, not a refusal: keep the traceback in the run's logs
        get_run_logger().exception("rung %s failed", rung.name)
        rr = RungReport.of(rung, "failed", reason=f"unexpected {type(exc).__name__}: {exc}")
    rr.started_at, rr.finished_at = started, now()
    return rr


def _checkpoint_text(rung: Rung, climb: Climb) -> str:
    return (
        f"**Incident {climb.incident.id}**: {climb.incident.title}\n\n"
        f"Next rung: **{rung.number}. {rung.title}** — touches production: {rung.touches_production}.\n\n"
        "Choose *approve* to climb it (you may adjust its settings below), *skip* to go on "
        "to the next rung, or *stop* to end the run here. Leases are reverted either way."
    )

"""escalate-incident: climb the ladder for one incident, least invasive rung first.

The flow walks the rung registry up to ``until``; it has no code of any one rung. Before each
rung that needs approval the run pauses with a typed form. After the highest rung, if a rung
handed the engineer something live (a replica database, a tunnel, a flag, a route), the run
**holds** it at a second kind of checkpoint until the engineer releases it or its TTL passes.
Whatever happens (done, stopped, failed, cancelled) the run then reverts its leases and
publishes the incident report.
"""

from __future__ import annotations

import importlib
import traceback
from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal

from ladder import progress
from ladder.config import Environment, LoadedRunbook, bind_environment, load_runbook
from ladder.errors import CheckpointError, LadderError
from ladder.incident import Incident
from ladder.leases import LeaseLedger
from ladder.report import Decision, LeaseRecord, Report, RungReport, now
from ladder.rungs import ClimbState, Held, Rung, RungName, RungResult, ladder
from ladder.rungs import rung as rung_named
from ladder.secrets import scrub
from tasks.checkpoints import checkpoint, hold_checkpoint, injected_approvals
from tasks.naming import lease_owner
from tasks.publish import PrefectPublisher
from tasks.report import publish_report, report_stem


def _automatic_approvals(approve_all: bool, env: Environment) -> str | None:
    """Why checkpoints answer themselves in this run, or None when a person must answer."""
    injected = injected_approvals()
    if injected:
        return injected
    if not approve_all:
        return None
    if env.sandbox:
        return "sandbox"
    raise CheckpointError(
        "approve_all is allowed only on the sandbox environment; "
        f"environment {env.name!r} needs a person at each checkpoint"
    )


def _bind(
    loaded: LoadedRunbook, incident: Incident | None, sandbox_dir: str | None
) -> tuple[Environment, Incident]:
    env, sandbox_incident = bind_environment(loaded, sandbox_dir=sandbox_dir)
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


# Prefect calls a flow's hooks positionally in the run's own process and by keyword
# (``flow=, flow_run=, state=``) in the runner that killed it: the names must be these.
def _on_cancellation(flow: Any, flow_run: Any, state: Any) -> None:
    _after_cancel_or_crash(flow_run, state, "cancelled")


def _on_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    _after_cancel_or_crash(flow_run, state, "failed")


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
        incident = Incident.model_validate(incident) if incident else None
        env, incident = _bind(loaded, incident, params.get("sandbox_dir"))
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
        error=scrub(state.message or "") or None,
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
    until: RungName | None = None,  # type: ignore[valid-type]
    approve_all: bool = False,
    sandbox_dir: str | None = None,
) -> dict[str, Any]:
    """Climb the rungs a runbook names for one incident, pausing for approval where it says so.

    Args:
        runbook: Runbook YAML file (relative to the project directory or absolute): the
            environment, the rungs to climb with their settings, and the checkpoints.
        incident: The incident to investigate (id, title, window, parameters such as user_ids).
            May be left empty on the sandbox, which has an incident of its own.
        until: Highest rung to climb (default: the runbook's `until`, else its last rung).
        approve_all: Approve every checkpoint automatically and skip the hold. Only allowed
            on the sandbox environment; anywhere else a person answers each checkpoint.
        sandbox_dir: On the sandbox environment, the sandbox's directory (default:
            LADDER_SANDBOX_DIR, else the sandbox in Ladder's state directory). Ignored
            elsewhere.
    """
    logger = get_run_logger()
    loaded = load_runbook(runbook)
    env, incident = _bind(loaded, incident, sandbox_dir)
    automatic = _automatic_approvals(approve_all, env)
    owner = lease_owner()
    state = ClimbState(
        incident=incident,
        environment=env,
        runbook_path=loaded.path,
        owner=owner,
        publish=PrefectPublisher(incident.id),
    )
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
        for rung in ladder():
            rr = _climb_one(rung, state, loaded, report, highest, stopped_by, automatic, timeout)
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
        for rung in ladder()[len(report.rungs) :]:
            report.rungs.append(
                RungReport.of(rung, "skipped", reason="not reached: an earlier rung failed")
            )
        _hold(report, loaded, automatic)
    except TerminationSignal:
        failure = True
        report.outcome = "cancelled"
        raise
    except BaseException as exc:
        failure = True
        report.outcome = "failed"
        report.error = _why(exc)
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
    state: ClimbState,
    loaded: LoadedRunbook,
    report: Report,
    highest: str | None,
    stopped_by: Decision | None,
    automatic: str | None,
    timeout: int,
) -> RungReport:
    settings = loaded.runbook.rungs.settings(rung.name)
    if stopped_by is not None:
        return RungReport.of(
            rung,
            "skipped",
            reason=f"the run was stopped at {stopped_by.rung} by {stopped_by.approver}",
        )
    if settings is None:
        return RungReport.of(rung, "skipped", reason="not in the runbook")
    if highest is None or rung.number > rung_named(highest).number:
        return RungReport.of(rung, "skipped", reason=f"above until={highest}")
    if not rung.built:
        return RungReport.of(rung, "not_built", reason="not built yet in this version of Ladder")
    if rung.prefill is not None:
        settings = rung.prefill(state, settings)
    needs_approval = rung.approval_by_default if settings.approval is None else settings.approval
    if needs_approval:
        progress.emit("checkpoint", rung=rung.name)
        decision, settings = checkpoint(
            rung,
            settings,
            description=_checkpoint_text(rung, state),
            timeout_seconds=timeout,
            automatic=automatic,
        )
        report.decisions.append(decision)
        state.approvers[rung.name] = decision.approver
        if decision.decision != "approve":
            verb = "stopped" if decision.decision == "stop" else "skipped"
            why = f": {decision.reason}" if decision.reason else ""
            return RungReport.of(rung, "skipped", reason=f"{verb} by {decision.approver}{why}")
    started = now()
    try:
        result = _runner(rung)(state, settings)
    except LadderError as exc:
        result = RungResult(status="failed", reason=_why(exc))
    except Exception as exc:  # a bug, not a refusal: keep the traceback in the run's logs
        trace = scrub("".join(traceback.format_exception(exc)))
        get_run_logger().error("rung %s failed:\n%s", rung.name, trace)
        result = RungResult(status="failed", reason=f"unexpected {_why(exc)}")
    state.found[rung.name] = result
    rr = RungReport.from_result(rung, result)
    rr.started_at, rr.finished_at = started, now()
    return rr


def _why(exc: BaseException) -> str:
    """``Type: message`` for a report or a rung's reason, with any password masked."""
    return scrub(f"{type(exc).__name__}: {exc}")


def _runner(rung: Rung) -> Any:
    """The Prefect task that climbs ``rung``: its own (``rung.task``) or its runner as a task."""
    if rung.task:
        module, _, name = rung.task.partition(":")
        return getattr(importlib.import_module(module), name)
    return task(
        rung.run,
        name=f"climb_{rung.name}",
        retries=rung.retries,
        retry_delay_seconds=5,
        cache_policy=NO_CACHE,
    )


def _checkpoint_text(rung: Rung, state: ClimbState) -> str:
    return (
        f"**Incident {state.incident.id}**: {state.incident.title}\n\n"
        f"Next rung: **{rung.number}. {rung.title}** — touches production: {rung.touches}.\n\n"
        "Choose *approve* to climb it (you may adjust its settings below), *skip* to go on "
        "to the next rung, or *stop* to end the run here. Leases are reverted either way."
    )


def _hold(report: Report, loaded: LoadedRunbook, automatic: str | None) -> None:
    """Keep what the rungs handed over until the engineer releases it or its TTL passes."""
    held = report.held()
    if not held:
        return
    if report.outcome != "completed":
        report.hold = f"not held: the run {report.outcome}; everything was released at its end"
        return
    if automatic:
        report.hold = (
            f"skipped: approvals are automatic ({automatic}); everything was released "
            "when the run ended"
        )
        return
    ledger = LeaseLedger()
    round_ = 0
    while True:
        round_ += 1
        held = _current(held, ledger)
        if not held:
            report.hold = "ended: nothing held is still live"
            return
        decision = hold_checkpoint(
            held,
            round_=round_,
            max_minutes=loaded.runbook.max_hold_minutes,
            description=_hold_text(report, held, loaded.runbook.max_hold_minutes),
        )
        report.decisions.append(decision)
        if decision.decision == "release":
            how = "its TTL passed" if decision.timed_out else f"{decision.approver} released it"
            report.hold = f"released at {now():%Y-%m-%d %H:%M:%S} UTC: {how}"
            return
        minutes = int(decision.settings["ttl_minutes"])
        expires = now() + timedelta(minutes=minutes)
        for h in held:
            ledger.extend(h.lease_id, expires)
        get_run_logger().info(
            "hold extended by %s to %s UTC", decision.approver, f"{expires:%H:%M:%S}"
        )
        for r in report.rungs:
            r.held = [h.model_copy(update={"expires_at": expires}) for h in r.held]


def _current(held: list[Held], ledger: LeaseLedger) -> list[Held]:
    """``held`` as the ledger has it now: only what is still live, with its current expiry."""
    out = []
    for h in held:
        lease = ledger.get(h.lease_id)
        if lease.is_open:
            out.append(h.model_copy(update={"expires_at": lease.expires_at}))
    return out


def _hold_text(report: Report, held: list[Held], max_minutes: int) -> str:
    rows = "\n".join(f"| {h.what} | `{h.use}` | {h.expires_at:%Y-%m-%d %H:%M} UTC |" for h in held)
    return (
        f"**Incident {report.incident.id}**: {report.incident.title}\n\n"
        "The ladder is climbed. The run holds these for you:\n\n"
        f"| what | how to reach it | expires |\n|---|---|---|\n{rows}\n\n"
        "Choose *release* when you are done (everything is reverted now), or *extend* to keep "
        f"everything `ttl_minutes` more from now (at most {max_minutes})."
    )

"""Checkpoints: the flow pauses with a typed form and a person answers it in the Prefect UI.

Two kinds. An **approval** before a rung: approve (with the rung's settings, pre-filled from the
runbook and editable), skip, or stop. A **hold** after the highest rung, while the run keeps
something live for the engineer: release it now, or extend it. Each form says when it times out;
an approval that times out is a *stop*, a hold that times out is a *release* — never a *go on*.

Approvals without a person exist for the sandbox (``approve_all`` on a sandbox environment) and
for tests, which inject theirs in code with :func:`automatic_approvals`: no variable a worker
could carry turns them on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from prefect import get_client, get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running
from pydantic import BaseModel, ConfigDict, Field, create_model

from ladder.report import Decision, now
from ladder.rungs import Held, Rung, RungSettings
from ladder.settings import settings as ladder_settings

_injected: list[str] = []


@contextmanager
def automatic_approvals(label: str) -> Iterator[None]:
    """Inside this block, in this process only, every checkpoint approves itself as ``label``
    (the report says ``automatic (label)``). For tests; the sandbox has ``approve_all``."""
    _injected.append(label)
    try:
        yield
    finally:
        _injected.remove(label)


def injected_approvals() -> str | None:
    """The label of the automatic approvals injected in this process, if any."""
    return _injected[-1] if _injected else None


class Approval(RunInput):
    """What every approval checkpoint asks: the decision, who takes it, and why."""

    # a refused answer may hold what a person typed by mistake, e.g. a DSN with its password
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    decision: Literal["approve", "skip", "stop"] = Field(
        description="approve: climb this rung · skip: go to the next · stop: end the run here"
    )
    approver: str = Field(min_length=1, max_length=200, description="your name or handle")
    reason: str = Field("", max_length=2000, description="why (kept in the incident report)")


class HoldAnswer(RunInput):
    """What the hold asks: release everything now, or keep it longer."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    decision: Literal["release", "extend"] = Field(
        description="release: revert everything held now · extend: keep it ttl_minutes more"
    )
    approver: str = Field(min_length=1, max_length=200, description="your name or handle")
    reason: str = Field("", max_length=2000, description="why (kept in the incident report)")


def _editable(name: str, settings: BaseModel) -> tuple[Any, Any]:
    """A settings field as a form field: same type and constraints, the runbook's value as default."""
    info = type(settings).model_fields[name]
    annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    field = Field(default=getattr(settings, name), description=info.description, title=info.title)
    return annotation, field


def approval_form(rung: Rung, settings: RungSettings, description: str) -> type[Approval]:
    """The checkpoint form for ``rung``: Approval plus the rung's settings, pre-filled."""
    fields = {
        name: _editable(name, settings)
        for name in type(settings).model_fields
        if name != "approval"
    }
    model = create_model(f"Approve_{rung.name}", __base__=Approval, **fields)
    model._description = description
    return model


def hold_form(max_minutes: int, description: str) -> type[HoldAnswer]:
    """The hold form; ``ttl_minutes`` (for *extend*) is bounded by the runbook's maximum."""
    ttl = Field(
        default=min(60, max_minutes),
        ge=1,
        le=max_minutes,
        description=f"with extend: keep everything this many minutes from now (at most {max_minutes})",
    )
    model = create_model("Hold", __base__=HoldAnswer, ttl_minutes=(int, ttl))
    model._description = description
    return model


def _deadline_text(deadline: datetime, then: str) -> str:
    return f"\n\n**This checkpoint waits until {deadline:%Y-%m-%d %H:%M:%S} UTC**; then it {then}."


def _poll(timeout_seconds: int) -> int:
    return max(1, min(ladder_settings().checkpoint_poll_seconds, timeout_seconds))


def pause_key(rung_name: str) -> str:
    """The pause key of the checkpoint before ``rung_name``. Prefect keeps a pause's form under
    ``paused-<key>-schema`` and accepts only lowercase letters, digits and dashes there."""
    return "checkpoint-" + rung_name.replace("_", "-")


def checkpoint(
    rung: Rung,
    settings: RungSettings,
    *,
    description: str,
    timeout_seconds: int,
    automatic: str | None,
) -> tuple[Decision, RungSettings]:
    """Pause for approval of ``rung``; returns the decision and the (possibly edited) settings.

    ``automatic`` is the recorded reason approvals are given without a person (sandbox, tests).
    """
    if automatic:
        decision = Decision(
            rung=rung.name,
            decision="approve",
            approver="ladder",
            reason=f"approved automatically ({automatic})",
            automatic=True,
            settings=settings.model_dump(mode="json", exclude={"approval"}),
        )
        return decision, settings
    deadline = now() + timedelta(seconds=timeout_seconds)
    form = approval_form(rung, settings, description + _deadline_text(deadline, "stops the run"))
    get_run_logger().info(
        "waiting for approval at %s until %s UTC", rung.name, f"{deadline:%Y-%m-%d %H:%M:%S}"
    )
    try:
        answer = pause_flow_run(
            wait_for_input=form,
            timeout=timeout_seconds,
            poll_interval=_poll(timeout_seconds),
            key=pause_key(rung.name),
        )
    except FlowPauseTimeout:
        _running_again()
        decision = Decision(
            rung=rung.name,
            decision="stop",
            approver="nobody",
            reason=f"no answer within {timeout_seconds} s: a checkpoint that times out stops the run",
            timed_out=True,
        )
        return decision, settings
    chosen = answer.model_dump(exclude={"decision", "approver", "reason", "metadata"})
    edited = type(settings).model_validate({**chosen, "approval": settings.approval})
    decision = Decision(
        rung=rung.name,
        decision=answer.decision,
        approver=answer.approver,
        reason=answer.reason,
        settings=edited.model_dump(mode="json", exclude={"approval"}),
    )
    return decision, edited


def hold_checkpoint(
    held: list[Held], *, round_: int, max_minutes: int, description: str
) -> Decision:
    """Pause while ``held`` is live, until the earliest expiry; the answer (or a timeout, which
    releases) as a Decision on the ``hold`` pseudo-rung. ``round_`` keeps each pause's key apart."""
    deadline = min(h.expires_at for h in held)
    timeout = int((deadline - now()).total_seconds())
    if timeout < 1:
        return _released_by_ttl(deadline)
    form = hold_form(
        max_minutes, description + _deadline_text(deadline, "releases everything held")
    )
    get_run_logger().info(
        "holding %d item(s) for the engineer until %s UTC: %s",
        len(held),
        f"{deadline:%Y-%m-%d %H:%M:%S}",
        "; ".join(h.what for h in held),
    )
    try:
        answer = pause_flow_run(
            wait_for_input=form,
            timeout=timeout,
            poll_interval=_poll(timeout),
            key=f"hold-{round_}",
        )
    except FlowPauseTimeout:
        _running_again()
        return _released_by_ttl(deadline)
    return Decision(
        rung="hold",
        decision=answer.decision,
        approver=answer.approver,
        reason=answer.reason,
        settings={"ttl_minutes": answer.ttl_minutes} if answer.decision == "extend" else {},
    )


def _running_again() -> None:
    """After a pause timed out, put the run back to Running: the server would refuse any later
    state (and fail the run) although the timeout is an answer Ladder acts on."""
    run = FlowRunContext.get()
    if run is None or run.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.flow_run.id, Running(), force=True)


def _released_by_ttl(deadline: datetime) -> Decision:
    return Decision(
        rung="hold",
        decision="release",
        approver="nobody",
        reason=f"the earliest TTL passed at {deadline:%H:%M:%S} UTC: a hold that times out releases",
        timed_out=True,
    )

"""Approval checkpoints: the flow pauses with a typed form; a person approves, skips or stops.

The form is a Prefect ``RunInput`` built from the rung's settings model, pre-filled with the
runbook's values, so the approver can adjust them (a TTL, an actor) before saying yes. A
checkpoint that times out is a *stop*, never a *go on*.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from ladder.report import Decision
from ladder.rungs import Rung, RungSettings


class Approval(RunInput):
    """What every checkpoint asks: the decision, who takes it, and why."""

    decision: Literal["approve", "skip", "stop"] = Field(
        description="approve: climb this rung · skip: go to the next · stop: end the run here"
    )
    approver: str = Field(min_length=1, max_length=200, description="your name or handle")
    reason: str = Field("", max_length=2000, description="why (kept in the incident report)")


def approval_form(rung: Rung, settings: RungSettings, description: str) -> type[Approval]:
    """The checkpoint form for ``rung``: Approval plus the rung's settings, pre-filled."""
    fields: dict[str, Any] = {}
    for name, info in type(settings).model_fields.items():
        if name == "approval":
            continue
        prefilled = FieldInfo.merge_field_infos(info, default=getattr(settings, name))
        fields[name] = (info.annotation, prefilled)
    model = create_model(f"Approve_{rung.name}", __base__=Approval, **fields)
    model._description = description
    return model


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
            settings=settings.model_dump(exclude={"approval"}),
        )
        return decision, settings
    form = approval_form(rung, settings, description)
    poll = int(os.environ.get("LADDER_CHECKPOINT_POLL_SECONDS", "5"))
    try:
        answer = pause_flow_run(
            wait_for_input=form,
            timeout=timeout_seconds,
            poll_interval=max(1, min(poll, timeout_seconds)),
            key=f"checkpoint-{rung.name}",
        )
    except FlowPauseTimeout:
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
        settings=edited.model_dump(exclude={"approval"}),
    )
    return decision, edited

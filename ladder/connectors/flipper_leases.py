"""The ``flipper_actor_gate`` lease kind: one actor enabled for one feature by rung 5.

Taken *before* the gate is written, with what was there before: ``was_enabled`` (the actor
already had the gate: the undo leaves it alone, so it stays enabled; re-enabling it would
outlive whoever enabled it, e.g. another run's lease) and ``feature_existed`` (the undo removes a
feature Ladder created, if nothing else was added to it meanwhile). The undo restores that state
and reads the gate back; a gate that still reads enabled is a failed revert, never a silent one.
Idempotent: undoing what is undone finds the gate already gone. ``approver`` and ``incident``
are for ``ladder flags list`` and the audit trail, not for the undo.

The janitor finds the kind by importing :data:`ladder.leases.UNDO_PACKAGES`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ladder.connectors.flipper import open_flipper
from ladder.connectors.flipper_config import FlipperConfig
from ladder.errors import FlipperError
from ladder.leases import register_undo

__all__ = ["KIND", "ActorGateUndo", "restore_actor_gate"]

KIND = "flipper_actor_gate"


class ActorGateUndo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flipper: FlipperConfig
    feature: str
    actor: str
    was_enabled: bool
    feature_existed: bool
    approver: str = Field("", description="who approved the change (for the audit trail)")
    incident: str = ""


def restore_actor_gate(spec: ActorGateUndo) -> str:
    """Put the gate back as it was before the lease and check it by reading it back."""
    with open_flipper(spec.flipper) as flipper:
        if spec.was_enabled:
            # Not Ladder's to turn off, nor to turn on again: whoever enabled it (a person,
            # another run's lease) decides, and may have turned it off since.
            state = flipper.feature(spec.feature)
            now = "on" if state is not None and spec.actor in state.actors else "off"
            return (
                f"{spec.feature} left alone for {spec.actor}: it was enabled before the lease "
                f"(reads {now})"
            )
        flipper.disable_actor(spec.feature, spec.actor)
        state = flipper.feature(spec.feature)
        if state is not None and spec.actor in state.actors:
            raise FlipperError(
                f"{spec.feature} still reads enabled for {spec.actor} after removing its gate"
            )
        outcome = f"{spec.feature} disabled for {spec.actor} (gate read back: off)"
        if not spec.feature_existed and state is not None:
            flipper.remove_feature(spec.feature)
            if flipper.feature(spec.feature) is None:
                outcome += f"; feature {spec.feature}, added by Ladder, removed"
        return outcome


@register_undo(KIND, payload=ActorGateUndo)
def _undo_actor_gate(payload: dict[str, Any]) -> str:
    return restore_actor_gate(ActorGateUndo.model_validate(payload))

"""The blast-radius guard of rung 5: what may be enabled, for whom, checked before any I/O.

One actor gate per feature and actor, nothing wider: boolean, group, percentage and expression
gates are refused (they reach people nobody named), so are more actors than the runbook allows
and features not on the runbook's allow-list. The allow-list and the actor limit are taken from
the runbook *file*: a checkpoint form may narrow them, never widen them. Each refusal is one
line (:class:`~ladder.errors.GuardrailError`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ladder.errors import GuardrailError

__all__ = ["ACTOR_ID", "FlagPlan", "actors_from_params", "check_flags"]

#: A Flipper actor id as Ladder writes it: ``Type;id`` (``User;42``), as ``flipper_id`` makes it.
ACTOR_ID = re.compile(r"^[A-Z][A-Za-z0-9_:]{0,60};[A-Za-z0-9_\-]{1,64}$")
_WIDER = {
    "boolean": "a boolean gate turns the feature on for everyone",
    "groups": "a group gate reaches every member of the group",
    "group": "a group gate reaches every member of the group",
    "percentage_of_actors": "a percentage gate reaches a share of all actors",
    "percentage_of_time": "a percentage gate reaches a share of all requests",
    "expression": "an expression gate reaches whoever matches it",
}


@dataclass(frozen=True)
class FlagPlan:
    """What the guard let through: these features, each for these actors."""

    features: tuple[str, ...]
    actors: tuple[str, ...]


def actors_from_params(params: dict[str, Any], actor_type: str) -> list[str]:
    """``User;42`` for the first affected user of the incident (or of rung 1), if any."""
    ids = params.get("user_ids") or params.get("user_id") or []
    ids = ids if isinstance(ids, list | tuple) else [ids]
    return [f"{actor_type};{ids[0]}"] if ids else []


def check_flags(
    *,
    gate: str,
    features: Sequence[str],
    actors: Sequence[str],
    allowed_features: Sequence[str],
    max_actors: int,
) -> FlagPlan:
    """The plan, or GuardrailError naming the first thing refused and the setting that limits it."""
    if gate != "actors":
        why = _WIDER.get(gate, "rung 5 writes actor gates only")
        raise GuardrailError(
            f"refused gate {gate!r}: {why}; rung 5 enables a feature for named actors only "
            "(gate: actors)"
        )
    if not features:
        raise GuardrailError("refused: no feature to enable (rungs.production_flags.features)")
    for feature in features:
        if feature not in allowed_features:
            allowed = ", ".join(allowed_features) or "none"
            raise GuardrailError(
                f"refused feature {feature!r}: not on the runbook's allow-list "
                f"(rungs.production_flags.allowed_features: {allowed})"
            )
    for actor in actors:
        if not ACTOR_ID.match(actor):
            raise GuardrailError(
                f"refused actor {actor!r}: an actor is one flipper_id, 'Type;id' "
                "(e.g. 'User;42'), never a group, a percentage or everyone"
            )
    unique = tuple(dict.fromkeys(actors))
    if len(unique) > max_actors:
        raise GuardrailError(
            f"refused {len(unique)} actors ({', '.join(unique)}): the runbook allows at most "
            f"{max_actors} (rungs.production_flags.max_actors)"
        )
    return FlagPlan(tuple(dict.fromkeys(features)), unique)

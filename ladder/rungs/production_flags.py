"""Rung 5, production flags: the runbook's Flipper features enabled for ONE actor, with a TTL.

The guard runs before any I/O (:mod:`ladder.flags.guard`): actor gates only, at most the
runbook's ``max_actors``, only features on its ``allowed_features`` (both as the runbook *file*
says; a checkpoint form may narrow them, never widen them). Then, for each feature and actor, the
gate as it is now is read, a ``flipper_actor_gate`` lease records it (before the change), the
gate is written and read back. While the flag is on, the actor's log lines are collected from
the environment's log sources for ``collect_seconds``, scrubbed, for the report. The flag is
handed over: the run holds it until the engineer releases it, its TTL passes, the run ends or
fails, or the janitor finds it expired; the undo restores what was there before.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ladder.errors import GuardrailError
from ladder.rungs.base import (
    ClimbState,
    Finding,
    Held,
    Minutes,
    Need,
    Rung,
    RungResult,
    RungSettings,
    Where,
)

if TYPE_CHECKING:
    from ladder.config import LoadedRunbook
    from ladder.flags.guard import FlagPlan

FeatureName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_:\-]{1,100}$")]
_SHOWN = 200


class ProductionFlagsSettings(RungSettings):
    features: list[FeatureName] = Field(
        default_factory=lambda: ["debug_mode"],
        min_length=1,
        description="Flipper features to enable",
    )
    allowed_features: list[FeatureName] = Field(
        default_factory=lambda: ["debug_mode"],
        description="the only features this runbook lets rung 5 enable (the file's list wins)",
    )
    actors: list[str] = Field(
        default_factory=list,
        description="Flipper actor ids, e.g. 'User;42' (default: the incident's first user)",
    )
    actor_type: str = Field(
        "User", pattern=r"^[A-Z][A-Za-z0-9_:]{0,60}$", description="actor type for a user id"
    )
    max_actors: int = Field(1, ge=1, le=10, description="most actors the runbook allows")
    gate: str = Field("actors", description="the gate to write: only 'actors' is allowed")
    ttl_minutes: Minutes = Field(30, description="how long the flag stays on")
    collect_seconds: int = Field(
        60, ge=0, le=3600, description="how long to collect the actor's log lines after enabling"
    )


class ProductionFlagsResult(RungResult):
    flipper: str = ""
    gates: list[dict[str, object]] = Field(default_factory=list)
    log_lines: list[str] = Field(default_factory=list, description="the actor's lines, scrubbed")


def _file_limits(state: ClimbState) -> ProductionFlagsSettings | None:
    from ladder.config import load_runbook

    written = load_runbook(state.runbook_path).runbook.rungs.settings("production_flags")
    return written if isinstance(written, ProductionFlagsSettings) else None


def plan_flags(state: ClimbState, settings: ProductionFlagsSettings) -> FlagPlan:
    """The guarded plan; GuardrailError for a refusal (one line)."""
    from ladder.flags.guard import actors_from_params, check_flags

    written = _file_limits(state) or settings
    allowed = [f for f in settings.allowed_features if f in written.allowed_features]
    actors = settings.actors or actors_from_params(state.params(), settings.actor_type)
    if not actors:
        raise GuardrailError(
            "refused: no actor to enable (the incident names no user_ids, the evidence rung "
            "found none, and rungs.production_flags.actors is empty)"
        )
    return check_flags(
        gate=settings.gate,
        features=settings.features,
        actors=actors,
        allowed_features=allowed,
        max_actors=min(settings.max_actors, written.max_actors),
    )


def prefill(state: ClimbState, settings: ProductionFlagsSettings) -> ProductionFlagsSettings:
    """The incident's (or rung 1's) first user as the actor, for the approval form to show."""
    from ladder.flags.guard import actors_from_params

    if settings.actors:
        return settings
    actors = actors_from_params(state.params(), settings.actor_type)
    return settings.model_copy(update={"actors": actors}) if actors else settings


def run(state: ClimbState, settings: ProductionFlagsSettings) -> RungResult:
    """Enable the features for the actor under leases, then collect the actor's log lines."""
    from ladder.connectors.flipper import describe, open_flipper
    from ladder.connectors.flipper_leases import KIND, ActorGateUndo
    from ladder.errors import FlipperError
    from ladder.flags.collect import collect, mark
    from ladder.leases import LeaseLedger, leased

    env, incident = state.environment, state.incident
    if env.flipper is None:
        return RUNG.result("unavailable", reason="the environment has no flipper")
    if env.flipper.unavailable:
        return RUNG.result("unavailable", reason=env.flipper.unavailable)
    plan = plan_flags(state, settings)
    where = describe(env.flipper)
    ledger, ttl = LeaseLedger(), timedelta(minutes=settings.ttl_minutes)
    approver = state.approvers.get(RUNG.name, "")
    marks = mark(env.logs)
    held: list[Held] = []
    gates: list[dict[str, object]] = []
    with open_flipper(env.flipper) as flipper:
        for feature in plan.features:
            for actor in plan.actors:
                before = flipper.feature(feature)
                was = before is not None and actor in before.actors
                undo = ActorGateUndo(
                    flipper=env.flipper, feature=feature, actor=actor, was_enabled=was,
                    feature_existed=before is not None, approver=approver, incident=incident.id,
                )  # fmt: skip
                with leased(
                    ledger, KIND, f"{feature} for {actor}", state.owner, ttl,
                    undo.model_dump(mode="json"),
                    description=f"{feature} for {actor} in {where}, incident {incident.id}"
                    + (f", approved by {approver}" if approver else ""),
                ) as lease:  # fmt: skip
                    flipper.enable_actor(feature, actor)
                    after = flipper.feature(feature)
                    if after is None or actor not in after.actors:
                        raise FlipperError(f"{feature} does not read back enabled for {actor}")
                expires = ledger.get(lease.id).expires_at
                held.append(Held(lease_id=lease.id, what=f"Flipper {feature} for {actor}",
                                 use=f"requests as {actor} run with {feature} on ({where})",
                                 expires_at=expires))  # fmt: skip
                gates.append({"feature": feature, "actor": actor, "lease": lease.id,
                              "was_enabled": was, "expires_at": expires.isoformat()})  # fmt: skip
    user_ids = [actor.split(";", 1)[1] for actor in plan.actors]
    lines = collect(marks, user_ids, settings.collect_seconds) if marks else []
    details = _details(gates, lines, where, settings.collect_seconds, bool(marks))
    state.publish.markdown("flags", details, f"Debug flags for {incident.id} (scrubbed log lines)")
    return ProductionFlagsResult(
        summary=f"{', '.join(plan.features)} on for {', '.join(plan.actors)} ({where}); "
        f"{len(lines)} log line(s) of that user in {settings.collect_seconds} s",
        details_markdown=details,
        held=held,
        flipper=where,
        gates=gates,
        log_lines=lines[:_SHOWN],
    )


def _details(
    gates: list[dict[str, object]], lines: list[str], where: str, seconds: int, sources: bool
) -> str:
    rows = "\n".join(
        f"| {g['feature']} | {g['actor']} | {'yes (left alone at revert)' if g['was_enabled'] else 'no'}"
        f" | {g['lease']} | {g['expires_at']} |"
        for g in gates
    )
    if not sources:
        logs = "The environment has no plain log file to collect the user's lines from."
    elif lines:
        shown = "\n".join(lines[:_SHOWN])
        logs = f"{len(lines)} line(s) of the user in {seconds} s, scrubbed:\n\n```\n{shown}\n```"
    else:
        logs = f"No log line of the user was written in {seconds} s."
    return (
        f"Flags in {where}:\n\n| feature | actor | on before? | lease | expires |\n"
        f"|---|---|---|---|---|\n{rows}\n\n{logs}"
    )


def check(settings: ProductionFlagsSettings, loaded: LoadedRunbook, where: Where) -> list[Finding]:
    """The guard's refusals that need no incident, for ``ladder runbook check``."""
    from ladder.flags.guard import check_flags

    try:
        check_flags(
            gate=settings.gate,
            features=settings.features,
            actors=settings.actors,
            allowed_features=settings.allowed_features,
            max_actors=settings.max_actors,
        )
    except GuardrailError as exc:
        return [("error", f"{where()}: {exc}")]
    return []


RUNG = Rung(
    number=5,
    name="production_flags",
    title="Debug flag for one actor",
    touches="yes, one actor",
    approval_by_default=True,
    settings=ProductionFlagsSettings,
    needs=(Need("flipper", lambda env: env.flipper),),
    run=run,
    hands_over=True,
    check=check,
    prefill=prefill,
)

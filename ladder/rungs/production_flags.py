"""Rung 5, production flags: a Flipper feature enabled for one actor, with a TTL.

Declared, not built yet: runs report it ``not_built`` (issue 10 builds it).
"""

from __future__ import annotations

from pydantic import Field

from ladder.rungs.base import Minutes, Need, Rung, RungSettings


class ProductionFlagsSettings(RungSettings):
    feature: str = Field(
        "debug_mode", pattern=r"^[A-Za-z0-9_:\-]{1,100}$", description="Flipper feature to enable"
    )
    actor: str | None = Field(None, description="Flipper actor id, e.g. 'User;42'")
    ttl_minutes: Minutes = Field(30, description="how long the flag stays on")


RUNG = Rung(
    number=5,
    name="production_flags",
    title="Debug flag for one actor",
    touches="yes, one actor",
    approval_by_default=True,
    settings=ProductionFlagsSettings,
    needs=(Need("flipper", lambda env: env.flipper),),
    hands_over=True,
)

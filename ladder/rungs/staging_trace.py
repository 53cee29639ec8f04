"""Rung 4, staging trace: replay the failing requests on staging while rbtrace traces Puma.

Declared, not built yet: runs report it ``not_built`` (issue 9 builds it).
"""

from __future__ import annotations

from pydantic import Field

from ladder.rungs.base import Minutes, Need, Rung, RungSettings


class StagingTraceSettings(RungSettings):
    probes: list[str] = Field(default_factory=list, description="rbtrace probe files to load")
    replays: int = Field(5, ge=1, le=100, description="failing requests to replay")
    ttl_minutes: Minutes = Field(15, description="how long the tracer stays attached")


RUNG = Rung(
    number=4,
    name="staging_trace",
    title="Replay and trace on staging",
    touches="staging only",
    approval_by_default=True,
    settings=StagingTraceSettings,
    needs=(Need("staging", lambda env: env.staging),),
    hands_over=True,
)

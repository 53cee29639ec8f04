"""Rung 3, tunnel: an SSH port forward (fabric) to a read-only production replica, for a while.

Declared, not built yet: runs report it ``not_built`` (issue 9 builds it).
"""

from __future__ import annotations

from pydantic import Field

from ladder.rungs.base import Minutes, Need, Rung, RungSettings


class TunnelSettings(RungSettings):
    ttl_minutes: Minutes = Field(30, description="how long the tunnel stays open")
    local_port: int | None = Field(
        None, ge=1024, le=65535, description="local port to listen on (default: a free one)"
    )


RUNG = Rung(
    number=3,
    name="tunnel",
    title="SSH tunnel to a read-only replica",
    touches="reads only",
    approval_by_default=True,
    settings=TunnelSettings,
    needs=(Need("ssh and production_db", lambda env: env.ssh and env.production_db),),
    hands_over=True,
)

"""Rung 6, replica app: a debug replica of the app that the load balancer sends only tagged requests.

Declared, not built yet: runs report it ``not_built`` (issue 10 builds it).
"""

from __future__ import annotations

from pydantic import Field

from ladder.rungs.base import Minutes, Need, Rung, RungSettings


class ReplicaAppSettings(RungSettings):
    header: str = Field(
        "X-Debug-Replica",
        pattern=r"^[A-Za-z0-9\-]{1,64}$",
        description="request header that routes a request to the replica",
    )
    ttl_minutes: Minutes = Field(60, description="how long the replica and its route live")


RUNG = Rung(
    number=6,
    name="replica_app",
    title="Debug replica behind the load balancer",
    touches="yes, tagged requests",
    approval_by_default=True,
    settings=ReplicaAppSettings,
    needs=(Need("kubernetes or load_balancer", lambda env: env.kubernetes or env.load_balancer),),
    hands_over=True,
)

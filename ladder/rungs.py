"""The rungs of the ladder: their order, what each touches, and the parameters a runbook may set.

Each rung's settings model is what a runbook writes under ``rungs.<name>`` and what its approval
checkpoint shows as a form (pre-filled with the runbook's values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ladder.secrets import Dsn

RungName = Literal[
    "evidence", "local_replica", "tunnel", "staging_trace", "production_flags", "replica_app"
]


class RungSettings(BaseModel):
    """Settings every rung has. ``approval: null`` means the rung's default."""

    model_config = ConfigDict(extra="forbid")
    approval: bool | None = Field(
        default=None, description="pause for an approver before this rung (default: by rung)"
    )


Minutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]


class EvidenceSettings(RungSettings):
    baseline_minutes: Minutes = Field(60, description="minutes before the window used as normal")
    samples: int = Field(5, ge=0, le=50, description="sample requests to show (scrubbed)")


class LocalReplicaSettings(RungSettings):
    policy: str | None = Field(
        None, description="sanitization policy file, relative to the runbook"
    )
    seeds: list[str] = Field(
        default_factory=list,
        description="seed conditions, 'TABLE: SQL condition' with :params from the incident",
    )
    child_depth: int = Field(2, ge=0, le=10, description="levels of child rows to follow")
    caps: dict[str, int] = Field(default_factory=dict, description="row cap per child table")
    whole_tables: list[str] = Field(default_factory=list, description="lookup tables copied whole")
    ttl_minutes: Minutes = Field(240, description="how long the replica database lives")
    target: Dsn | None = Field(
        None,
        description="server to create the replica database on; each run gets a new database "
        "(default: beside the source, which only the sandbox allows)",
    )


class TunnelSettings(RungSettings):
    ttl_minutes: Minutes = Field(30, description="how long the tunnel stays open")
    local_port: int | None = Field(None, ge=1024, le=65535)


class StagingTraceSettings(RungSettings):
    probes: list[str] = Field(default_factory=list, description="rbtrace probe files to load")
    replays: int = Field(5, ge=1, le=100, description="failing requests to replay")
    ttl_minutes: Minutes = 15


class ProductionFlagsSettings(RungSettings):
    feature: str = Field("debug_mode", pattern=r"^[A-Za-z0-9_:\-]{1,100}$")
    actor: str | None = Field(None, description="Flipper actor id, e.g. 'User;42'")
    ttl_minutes: Minutes = 30


class ReplicaAppSettings(RungSettings):
    header: str = Field("X-Debug-Replica", pattern=r"^[A-Za-z0-9\-]{1,64}$")
    ttl_minutes: Minutes = 60


@dataclass(frozen=True)
class Rung:
    """One rung: its place on the ladder and how careful to be with it."""

    number: int
    name: RungName
    title: str
    touches_production: str
    approval_by_default: bool
    settings: type[RungSettings]
    built: bool


LADDER: tuple[Rung, ...] = (
    Rung(1, "evidence", "Evidence from logs and monitoring", "reads only", False,
         EvidenceSettings, built=True),
    Rung(2, "local_replica", "Sanitized local replica", "reads only", False,
         LocalReplicaSettings, built=True),
    Rung(3, "tunnel", "SSH tunnel to a read-only replica", "reads only", True,
         TunnelSettings, built=False),
    Rung(4, "staging_trace", "Replay and trace on staging", "staging only", True,
         StagingTraceSettings, built=False),
    Rung(5, "production_flags", "Debug flag for one actor", "yes, one actor", True,
         ProductionFlagsSettings, built=False),
    Rung(6, "replica_app", "Debug replica behind the load balancer", "yes, tagged requests", True,
         ReplicaAppSettings, built=False),
)  # fmt: skip

RUNGS: dict[str, Rung] = {r.name: r for r in LADDER}
RUNG_NAMES: tuple[str, ...] = tuple(RUNGS)


def rung(name: str) -> Rung:
    """The rung called ``name``; ``KeyError`` names the known ones."""
    try:
        return RUNGS[name]
    except KeyError:
        raise KeyError(f"unknown rung {name!r}; the rungs are: {', '.join(RUNG_NAMES)}") from None


def index(name: str) -> int:
    return RUNG_NAMES.index(name)

"""What a rung is: its declaration, its settings, the climb state it reads and the result it returns.

A rung module (``ladder/rungs/<name>.py``) declares one :class:`Rung` as ``RUNG``; the registry in
:mod:`ladder.rungs` finds it. Its runner takes the :class:`ClimbState` (the incident, the
environment, what earlier rungs found) and its settings, and returns a :class:`RungResult`
(usually a subclass with typed fields for later rungs to read). A rung that hands the engineer
something live lists it in ``RungResult.held``: the run then holds it until the engineer releases
it (see ``flows/escalate.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from ladder.config import Environment, LoadedRunbook
    from ladder.incident import Incident

Minutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]
RungStatus = Literal["done", "skipped", "not_built", "unavailable", "failed"]


class RungSettings(BaseModel):
    """Settings every rung has. ``approval: null`` means the rung's default."""

    model_config = ConfigDict(extra="forbid")
    approval: bool | None = Field(
        default=None, description="pause for an approver before this rung (default: by rung)"
    )


class Held(BaseModel):
    """Something live a rung handed over, held by the run until released or expired."""

    lease_id: str = Field(description="the lease that undoes it")
    what: str = Field(description="what it is, e.g. 'replica database ladder_replica_x'")
    use: str = Field(description="how to reach it, e.g. a DSN without password or a curl line")
    expires_at: datetime


class RungResult(BaseModel):
    """What a rung's runner returns. Subclasses add typed fields for later rungs and the report."""

    status: RungStatus = "done"
    summary: str = ""
    reason: str | None = None
    details_markdown: str | None = None
    held: list[Held] = Field(default_factory=list)

    def params(self) -> dict[str, Any]:
        """Parameters this result offers later rungs' queries (the incident's own win)."""
        return {}

    def data(self) -> dict[str, Any]:
        """The subclass's own fields, JSON-ready, for the report."""
        return self.model_dump(mode="json", exclude=set(RungResult.model_fields))


R = TypeVar("R", bound=RungResult)


@dataclass
class ClimbState:
    """What the rungs of one run share: the incident, where it happened, what was found so far."""

    incident: Incident
    environment: Environment
    runbook_path: Path
    owner: str
    found: dict[str, RungResult] = field(default_factory=dict)
    #: who approved each rung at its checkpoint (rung name -> approver), for leases' audit trail
    approvers: dict[str, str] = field(default_factory=dict)
    publish: Publisher = field(default_factory=lambda: Publisher())

    def resolve(self, relative: str) -> Path:
        """A path written in the runbook, relative to the runbook's directory."""
        p = Path(relative)
        return p if p.is_absolute() else self.runbook_path.parent / p

    def result(self, kind: type[R]) -> R | None:
        """The earlier result of type ``kind`` (e.g. ``EvidenceResult``), if that rung ran."""
        return next((r for r in self.found.values() if isinstance(r, kind)), None)

    def params(self) -> dict[str, Any]:
        """The incident's parameters, completed by what earlier rungs found (never overriding)."""
        merged: dict[str, Any] = {}
        for result in self.found.values():
            if result.status == "done":
                merged.update(result.params())
        return {**merged, **self.incident.params}


Runner = Callable[[ClimbState, Any], RungResult]
Finding = tuple[Literal["error", "warning"], str]
#: ``where("policy")`` -> ``"runbook.yaml:12: rungs.local_replica.policy"``, for a finding's start.
Where = Callable[..., str]
Check = Callable[[Any, "LoadedRunbook", Where], list[Finding]]
#: Like :data:`Check`, against the live environment: ``("note", ...)`` says what was skipped.
LiveFinding = tuple[Literal["error", "warning", "note"], str]
LiveCheck = Callable[[Any, "LoadedRunbook", "Environment", Where], list[LiveFinding]]


@dataclass(frozen=True)
class Need:
    """A part of the environment a rung cannot run without (``ladder runbook check`` reads it)."""

    what: str
    present: Callable[[Environment], Any]


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder, declared once in its module.

    ``run`` is ``None`` until the rung is built (runs report it ``not_built``). The flow runs it
    as a Prefect task named after the rung, with ``retries``; ``task`` names a task of the rung's
    own instead (``"tasks.module:function"``, same signature as ``run``) when it needs more of
    Prefect. ``hands_over`` says the rung gives the engineer something live, to be held.
    ``check`` adds rung-specific findings to ``ladder runbook check``; ``check_live`` adds those
    that need the live environment (a database), run only by ``ladder runbook check``.
    ``prefill`` completes the settings from what the climb knows (e.g. the incident's user as
    the actor) before the checkpoint form shows them, so the approver sees and can change them.
    """

    number: int
    name: str
    title: str
    touches: str
    approval_by_default: bool
    settings: type[RungSettings]
    needs: Sequence[Need] = ()
    run: Runner | None = None
    task: str | None = None
    retries: int = 0
    hands_over: bool = False
    check: Check | None = None
    check_live: LiveCheck | None = None
    prefill: Callable[[ClimbState, Any], RungSettings] | None = None

    @property
    def built(self) -> bool:
        return self.run is not None

    def result(self, status: RungStatus, **fields: Any) -> RungResult:
        """A plain result of this rung (skipped, unavailable, failed, ...)."""
        return RungResult(status=status, **fields)


class Publisher:
    """Where a runner shows its work while it runs. This one shows nothing; the flow passes one
    that publishes Prefect artifacts (``tasks/publish.py``). ``what`` is a short stable name
    (``evidence``, ``replica-plan``) the artifact key is made from."""

    def markdown(self, what: str, text: str, description: str) -> None:
        """A markdown document."""

    def table(self, what: str, rows: list[dict[str, Any]], description: str) -> None:
        """A table, one dict per row."""

    def progress(self, what: str, description: str) -> Callable[[str, int, int], None]:
        """A progress callback ``(item, done, total)``; ``finish`` it by calling with done=total."""
        return lambda item, done, total: None

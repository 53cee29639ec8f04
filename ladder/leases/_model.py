"""A lease as a value: its state machine and its row in the ledger's table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa


class LeaseState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REVERTED = "reverted"
    REVERT_FAILED = "revert_failed"


OPEN_STATES = (LeaseState.PENDING, LeaseState.ACTIVE, LeaseState.REVERT_FAILED)


@dataclass(frozen=True)
class Lease:
    """One recorded change to a shared environment."""

    id: str
    kind: str
    target: str
    description: str
    owner: str
    created_at: datetime
    expires_at: datetime
    state: LeaseState
    undo: dict[str, Any]
    outcome: str | None
    reverted_at: datetime | None
    attempts: int

    @property
    def is_open(self) -> bool:
        """True while the change may still be in place (pending, active or revert_failed)."""
        return self.state in OPEN_STATES

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 in UTC)."""
        data = asdict(self)
        data["state"] = self.state.value
        for key in ("created_at", "expires_at", "reverted_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


def lease_from_row(row: sa.Row[Any]) -> Lease:
    m = row._mapping
    return Lease(
        id=m["id"],
        kind=m["kind"],
        target=m["target"],
        description=m["description"],
        owner=m["owner"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        state=LeaseState(m["state"]),
        undo=dict(m["undo"]),
        outcome=m["outcome"],
        reverted_at=m["reverted_at"],
        attempts=m["attempts"],
    )

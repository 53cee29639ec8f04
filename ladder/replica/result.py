"""What a replica run did: :class:`ReplicaResult`, returned by
:func:`ladder.replica.pipeline.create_replica` (and printed by ``ladder replica create --json``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ladder.replica.gate import ValidationResult


class ReplicaResult(BaseModel):
    """What :func:`create_replica` did. ``target`` never holds a password."""

    target: str
    database: str
    tables: dict[str, int]
    table_seconds: dict[str, float]
    seconds: float
    copy_seconds: float
    step_seconds: dict[str, float] = {}  # plan, schema, copy, post_data, gate, swap
    rows_per_s: float
    validation: ValidationResult
    lease_ids: list[str]
    previous: list[str]
    plan: list[dict[str, Any]]
    warnings: list[str] = []  # e.g. extensions the target server lacks, left out

    def throughput(self) -> list[dict[str, Any]]:
        """Rows, seconds and rows/s per table (for a table artifact)."""
        return [
            {
                "table": t,
                "rows": n,
                "seconds": round(self.table_seconds.get(t, 0.0), 3),
                "rows_per_s": round(n / s) if (s := self.table_seconds.get(t, 0.0)) else None,
            }
            for t, n in self.tables.items()
        ]

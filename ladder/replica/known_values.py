"""Known values for a copy: collected from the source before any table is copied, then looked up
in the copy's ``text`` and ``json`` columns (:mod:`ladder.sanitize.known`).

Tables are copied several at a time and in no order that puts ``users`` before the
``orders.notes`` that name them, so the originals cannot be gathered while the rows stream by.
Instead, a first pass reads, inside the subset's snapshot, the distinct values of every
transformed column of the copied rows (``SELECT DISTINCT`` on the source, capped at
:data:`ladder.sanitize.known.MAX_VALUES`, only values the matcher would use), and computes their
pseudonyms with the very transformers and key of the copy (deterministic: the same input and
key give the same output in every table). Only then does the copy start, with each ``text`` and
``json`` transformer followed by the known-value replacement. The pass costs one extra read of
the transformed columns of the subset; it is skipped when the copy has no ``text``/``json``
column. The gate checks what survives with the same matcher (``no_known_value``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import pyarrow as pa
from psycopg import sql

from ladder.connectors.postgres import connect
from ladder.replica.copy import TableCopy
from ladder.sanitize.fit import char_limit, fit
from ladder.sanitize.known import MAX_VALUES, KnownValues
from ladder.sanitize.registry import ColumnValues, Transformer

__all__ = ["SCRUBBERS", "WithKnownValues", "add_known_values", "collect_known_values"]

SCRUBBERS = frozenset({"text", "json"})
log = logging.getLogger(__name__)


class WithKnownValues(Transformer):
    """A ``text`` or ``json`` transformer followed by the known-value replacement; it answers to
    the wrapped transformer's name and options (the copy fits and checks it as that one)."""

    name = "known"  # replaced per instance by the wrapped transformer's name

    def __init__(self, inner: Transformer, known: KnownValues):
        super().__init__(inner.options)
        self.inner, self.known = inner, known
        self.name = inner.name  # type: ignore[misc]
        self.keyed, self.replaces_pii = inner.keyed, inner.replaces_pii  # type: ignore[misc]

    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        out = self.inner.transform(values, key)
        if isinstance(out, pa.ChunkedArray):
            out = out.combine_chunks()
        if not isinstance(out, pa.Array) or not pa.types.is_string(out.type):
            return out
        return self.known.replace(out, json_text=self.inner.name == "json")


def collect_known_values(
    source_dsn: str,
    snapshot_id: str,
    copies: Sequence[TableCopy],
    key: bytes,
    *,
    max_values: int = MAX_VALUES,
) -> KnownValues:
    """The originals of every transformed (non-scrubbing) column of ``copies`` and their
    pseudonyms, read in the snapshot ``snapshot_id`` (see the module docstring)."""
    known = KnownValues(max_values=max_values)
    with connect(source_dsn, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
        for copy in copies:
            for column, t in copy.transforms.items():
                room = known.max_values - len(known)
                if t.name in SCRUBBERS or not t.replaces_pii:
                    continue
                if room <= 0:
                    known.truncated = True
                    break
                c = sql.Identifier("q", column)
                rows = conn.execute(
                    sql.SQL(
                        "SELECT DISTINCT btrim({c}::text) FROM ({query}) AS q WHERE {c}::text ~ "
                        "'[[:alpha:]]' AND length(btrim({c}::text)) >= %s LIMIT %s"
                    ).format(c=c, query=copy.query),
                    [known.min_length, room + 1],
                ).fetchall()
                originals = pa.array([r[0] for r in rows], type=pa.string())
                out = _pseudonyms(t, originals, key, copy, column)
                known.add(originals, out)
        conn.execute("ROLLBACK")
    if known.truncated:
        log.warning(
            "known values: more than %d originals; the rest are left to the PII patterns",
            known.max_values,
        )
    return known.freeze()


def _pseudonyms(
    t: Transformer, originals: pa.Array, key: bytes, copy: TableCopy, column: str
) -> list[object]:
    out = t.transform(originals, key)
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    sql_type = copy.types.get(column, "")
    if isinstance(out, pa.Array) and (limit := char_limit(sql_type)) is not None:
        out = fit(out, limit, f"{copy.name}.{column}", sql_type, t)
    return list(out.to_pylist())


def add_known_values(
    source_dsn: str, snapshot_id: str, copies: Sequence[TableCopy], key: bytes
) -> tuple[list[TableCopy], KnownValues | None]:
    """``copies`` with their ``text``/``json`` transformers followed by the known-value
    replacement, and the known values (None when no column is scrubbed: nothing to look in)."""
    if not any(t.name in SCRUBBERS for c in copies for t in c.transforms.values()):
        return list(copies), None
    known = collect_known_values(source_dsn, snapshot_id, copies, key)
    if not len(known):
        return list(copies), known
    wrapped = [
        dataclasses.replace(
            c,
            transforms={
                name: WithKnownValues(t, known) if t.name in SCRUBBERS else t
                for name, t in c.transforms.items()
            },
        )
        for c in copies
    ]
    return wrapped, known

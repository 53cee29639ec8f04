"""Running a :class:`SubsetPlan`: the selected keys, computed in one snapshot, and a copy query per table.

``execute_plan`` opens a REPEATABLE READ, READ ONLY transaction on the caller's (idle) connection,
exports its snapshot, and computes the selection with plain SELECTs that return keys - no
temporary tables, so it works on a hot-standby replica. Keys are held in a :class:`KeySet`
(8 bytes per integer key, fetched in bounded chunks) and travel into each copy query as an array
literal (about 10 bytes per bigint key in the query text).

Copy queries must run under the same snapshot so that the rows match the keys: on this
connection, or on others that start ``BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SET TRANSACTION SNAPSHOT '<subset.snapshot_id>'`` while the ``with`` block is open.

Tables without a usable key are selected by their foreign-key columns: the copy query names the
parent keys they must reference, which is exact for any snapshot (``ctid`` would not be).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ladder.replica.subset.graph import ForeignKey, Table
from ladder.replica.subset.keys import Keys, KeySet, concat, fetch_keys
from ladder.replica.subset.plan import SubsetPlan
from ladder.replica.subset.query import (
    Binder,
    children_select,
    copy_select,
    count_select,
    key_in,
    parents_select,
    references,
    seed_select,
)
from ladder.replica.subset.seeds import compile_condition
from ladder.replica.subset.snapshot import read_only, translate


@dataclass
class _Selection:
    table: Table
    whole: bool = False
    keys: KeySet = field(default_factory=KeySet)
    via: list[tuple[ForeignKey, Table, Keys]] = field(default_factory=list)  # keyless
    child_rows: int = 0

    def where(self, binder: Binder) -> sql.Composable | None:
        """The rows of this selection, as a condition on alias ``_c`` (None: every row)."""
        if self.whole:
            return None
        if self.table.key:
            return key_in("_c", self.table, self.keys.values(), binder)
        parts = [references(fk, self.table, parent, keys, binder) for fk, parent, keys in self.via]
        return sql.SQL(" OR ").join(parts) if parts else sql.SQL("false")


class Subset:
    """The outcome of :func:`execute_plan`: per-table copy queries, counts and the snapshot id."""

    def __init__(self, plan: SubsetPlan, snapshot_id: str, selections: dict[str, _Selection]):
        self.plan = plan
        self.snapshot_id = snapshot_id
        self._sel = selections
        self.counts: dict[str, int] = {}

    @property
    def order(self) -> list[str]:
        """Table names in load order (parents first)."""
        return self.plan.order

    def _get(self, table: str) -> _Selection:
        name = table if table in self._sel else self.plan.graph.resolve(table, self.plan.schemas)
        if name not in self._sel:
            raise KeyError(f"{table} is not in the subset (tables: {', '.join(self.order)})")
        return self._sel[name]

    def keys(self, table: str) -> list[Any]:
        """Selected keys of a keyed table (scalars, or tuples for composite keys), sorted."""
        return self._get(table).keys.sorted()

    def copy_query(self, table: str, columns: Sequence[str] | None = None) -> sql.Composed:
        """``SELECT`` of exactly the selected rows, all columns in table order (or ``columns``).

        Self-contained (keys inlined as literals), for ``COPY ({query}) TO STDOUT`` run under
        :attr:`snapshot_id`.
        """
        sel = self._get(table)
        return copy_select(sel.table, sel.where(Binder(literal=True)), columns)

    def describe(self) -> list[dict[str, Any]]:
        return self.plan.describe(self.counts)

    def render(self) -> str:
        return self.plan.render(self.counts)


@contextmanager
def execute_plan(
    conn: psycopg.Connection, plan: SubsetPlan, params: Mapping[str, object] | None = None
) -> Iterator[Subset]:
    """Compute ``plan`` on ``conn`` (idle, opened by the caller) in one exported snapshot.

    Missing ``:name`` parameters fail before any query. Inside the block the transaction is
    open, so :attr:`Subset.snapshot_id` can be imported by copier connections; on exit it is
    rolled back (nothing was written: it is READ ONLY). Errors become :class:`PostgresError`
    naming the step (seed, FK) that failed.
    """
    params = params or {}
    bound = [
        compile_condition(s.condition).bind(params, what=f"seed {s}") for s in plan.seeds
    ]  # fail on missing parameters before touching the database
    with read_only(conn, snapshot=True) as snapshot_id:
        assert snapshot_id is not None
        sels = {t.name: _Selection(t.table, whole=t.whole) for t in plan.tables}
        _Closure(conn, plan, sels).run(bound)
        subset = Subset(plan, snapshot_id, sels)
        with translate("counting the subset"):
            for name, sel in sels.items():
                if sel.table.key and not sel.whole:
                    subset.counts[name] = len(sel.keys)
                else:
                    binder = Binder()
                    row = conn.execute(count_select(sel.table, sel.where(binder)), binder.params)
                    subset.counts[name] = int(row.fetchone()[0])  # type: ignore[index]
        yield subset


class _Closure:
    """Seeds, then children level by level, then parents to a fixpoint (rules in ``plan.py``)."""

    def __init__(self, conn: psycopg.Connection, plan: SubsetPlan, sels: dict[str, _Selection]):
        self.conn = conn
        self.plan = plan
        self.graph = plan.graph
        self.sels = sels
        self.batches: list[tuple[str, Keys, str | None]] = []  # (table, new keys, via FK)

    def add(
        self, sel: _Selection, query: sql.Composable, params: Mapping[str, object], what: str
    ) -> Keys:
        """Run ``query`` (it returns key rows) and add its rows to ``sel``: the new keys."""
        new: Keys = []
        with translate(what):
            for rows in fetch_keys(self.conn, query, params):
                new = concat(new, sel.keys.add(rows))
        return new

    def run(self, bound: list[dict[str, object]]) -> None:
        level = self._seeds(bound)
        for depth in range(1, self.plan.depth + 1):
            level = self._children(level, depth)
        self._parents()

    def _seeds(self, bound: list[dict[str, object]]) -> dict[str, Keys]:
        level: dict[str, Keys] = {}
        for seed, params in zip(self.plan.seeds, bound, strict=True):
            sel = self.sels[seed.table]
            if sel.whole:
                continue
            query = seed_select(sel.table, compile_condition(seed.condition).query)
            new = self.add(sel, query, params, f"seed {seed}")
            level[seed.table] = concat(level.get(seed.table, []), new)
            self.batches.append((seed.table, new, None))
        return level

    def _children(self, level: dict[str, Keys], depth: int) -> dict[str, Keys]:
        nxt: dict[str, Keys] = {}
        for parent_name, keys in sorted(level.items()):
            parent = self.graph.tables[parent_name]
            for fk in self.graph.children_of(parent_name):
                sel = self.sels.get(fk.child)
                if sel is None or sel.whole or not len(keys):
                    continue
                if not sel.table.key:
                    sel.via.append((fk, parent, keys))
                    continue
                cap = self.plan.table(fk.child).cap
                limit = None if cap is None else cap - sel.child_rows
                if limit is not None and limit <= 0:
                    continue
                binder = Binder()
                query = children_select(fk, sel.table, parent, keys, binder, limit)
                new = self.add(
                    sel, query, binder.params, f"following {fk.name} to children (depth {depth})"
                )
                sel.child_rows += len(new)
                nxt[fk.child] = concat(nxt.get(fk.child, []), new)
                self.batches.append((fk.child, new, fk.name))
        return nxt

    def _parents(self) -> None:
        # A batch of child rows found through an FK references, through that same FK, only rows
        # already selected: that edge is skipped for the batch.
        frontier: list[tuple[str, Keys, str | None]] = list(self.batches)
        for name, sel in self.sels.items():  # whole and keyless tables: their rows, once
            if sel.whole or not sel.table.key:
                self._parents_of(name, sel, None, None, frontier)
        while frontier:
            name, keys, skip = frontier.pop(0)
            self._parents_of(name, self.sels[name], keys, skip, frontier)

    def _parents_of(
        self,
        name: str,
        sel: _Selection,
        keys: Keys | None,
        skip: str | None,
        frontier: list[tuple[str, Keys, str | None]],
    ) -> None:
        for fk in self.graph.parents_of(name):
            parent = self.sels[fk.parent]
            if parent.whole or fk.name == skip:
                continue
            binder = Binder()
            if keys is None:
                where = sel.where(binder) or sql.SQL("true")
            else:
                where = key_in("_c", sel.table, keys, binder)
            query = parents_select(fk, parent.table, sel.table, where)
            new = self.add(parent, query, binder.params, f"following {fk.name} to parents")
            if len(new):
                frontier.append((fk.parent, new, None))

"""Row estimates for a plan, before anything is selected: the planner's numbers, not counts.

A table's size is ``pg_class.reltuples`` (EXPLAIN when never analyzed). Seeds are estimated by
EXPLAIN of their query with the bound parameters; children by the average fan-out of each edge
(child rows / parent rows) from the rows reached one level up; parents by the rows referencing
them. Every estimate is capped by its cap (children) and by the table's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from ladder.replica.subset.graph import ForeignKey, Table, load_order
from ladder.replica.subset.query import count_estimate_query, seed_select
from ladder.replica.subset.seeds import Seed, compile_condition
from ladder.replica.subset.snapshot import translate

if TYPE_CHECKING:
    from ladder.replica.subset.plan import SubsetPlan


def estimate_rows(
    conn: psycopg.Connection, plan: SubsetPlan, params: Mapping[str, object] | None
) -> dict[str, int]:
    """Estimated rows per table. Without ``params``, tables that depend on a seed needing
    parameters are left out (only whole tables are estimated)."""
    total = {t.name: _table_rows(conn, t.table) for t in plan.tables}
    whole = {t.name for t in plan.tables if t.whole}
    est: dict[str, float] = {t: total[t] for t in whole}
    by_depth: dict[tuple[str, int], float] = {}
    via: dict[tuple[str, str], float] = {}  # rows reaching a child table through one FK
    for s in plan.seeds:
        if s.table in whole:
            continue
        rows = _seed_rows(conn, plan.graph.tables[s.table], s, params)
        if rows is None:
            return {t: round(v) for t, v in est.items()}
        by_depth[(s.table, 0)] = by_depth.get((s.table, 0), 0) + rows
    children = [(t.name, r) for t in plan.tables for r in t.reasons if r.kind == "child"]
    for table, r in sorted(children, key=lambda tr: tr[1].depth):
        assert r.fk is not None
        fanout = total[table] * _not_null(conn, r.fk) / max(total[r.fk.parent], 1)
        rows = by_depth.get((r.fk.parent, r.depth - 1), 0) * fanout
        by_depth[(table, r.depth)] = by_depth.get((table, r.depth), 0) + rows
        via[(table, r.fk.name)] = via.get((table, r.fk.name), 0) + rows
    for (table, _), rows in by_depth.items():
        est[table] = est.get(table, 0) + rows
    for t in plan.tables:
        if t.cap is not None and t.name in est:
            est[t.name] = min(est[t.name], t.cap)
    reasons = {t.name: t.reasons for t in plan.tables}
    order, _ = load_order(reasons, plan.graph.fks)
    for name in reversed(order):  # children before the parents they add
        for r in reasons[name]:
            if r.kind == "parent" and r.fk is not None:
                child = r.fk.child
                # rows that came down this FK point at rows already counted
                fresh = max(est.get(child, 0) - via.get((child, r.fk.name), 0), 0)
                est[name] = est.get(name, 0) + fresh * _not_null(conn, r.fk)
    return {t: round(min(v, total[t])) for t, v in est.items()}


def _not_null(conn: psycopg.Connection, fk: ForeignKey) -> float:
    """Share of child rows whose FK is set (``pg_stats.null_frac`` of its first column)."""
    schema, table = fk.child.split(".", 1)
    with translate(f"reading statistics of {fk.child}"):
        row = conn.execute(
            "SELECT null_frac FROM pg_catalog.pg_stats "
            "WHERE schemaname = %s AND tablename = %s AND attname = %s",
            [schema, table, fk.child_columns[0]],
        ).fetchone()
    return 1.0 - float(row[0]) if row else 1.0


def _table_rows(conn: psycopg.Connection, table: Table) -> float:
    if table.reltuples >= 0:
        return table.reltuples
    return _explain_rows(conn, count_estimate_query(table), {}, what=table.name)


def _seed_rows(
    conn: psycopg.Connection, table: Table, seed: Seed, params: Mapping[str, object] | None
) -> float | None:
    cond = compile_condition(seed.condition)
    if params is None and cond.params:
        return None
    bound = cond.bind(params or {}, what=f"seed {seed}")
    return _explain_rows(conn, seed_select(table, cond.query), bound, what=f"seed {seed}")


def _explain_rows(
    conn: psycopg.Connection, query: sql.Composable, params: Mapping[str, object], *, what: str
) -> float:
    with translate(f"estimating {what}"):
        row = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query), params).fetchone()
    assert row is not None
    return float(row[0][0]["Plan"]["Plan Rows"])

"""The subset plan: which tables a subset copies, why, and roughly how many rows - before any copy.

Rules (the executor in ``execute.py`` applies the same rules to rows):

* **seed** rows match a seed condition.
* **child** rows reference a seed or child row, up to ``depth`` foreign-key hops from a seed
  (default 2: ``users -> orders -> order_items``). A row's children are followed only from the
  depth at which it was first reached. Tables listed in ``caps`` get at most that many child rows
  (lowest keys first); ``0`` means "never follow children into this table".
* **parent** rows are referenced by any copied row. They are always copied, transitively, to a
  fixpoint, and caps never apply to them: a capped table may end with more rows than its cap
  when other copied rows reference its rows. Children of parent rows are not followed.
* **whole** tables (lookups such as ``currencies``; ``all_tables`` makes every table of
  ``schemas`` whole) are copied entirely; their own references are still followed as parents,
  their children are not. A seed on a whole table adds nothing.

A table without a usable key (no primary key, no NOT NULL unique index) cannot be seeded or
capped; it can be a child, selected by its foreign-key columns, or whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import psycopg

from ladder.errors import ConfigError
from ladder.replica.subset.estimate import estimate_rows
from ladder.replica.subset.graph import ForeignKey, Graph, Table, load_graph, load_order
from ladder.replica.subset.seeds import Seed, coerce_seeds
from ladder.replica.subset.snapshot import read_only, translate
from ladder.replica.subset.virtual import VirtualReference, with_virtual

DEFAULT_DEPTH = 2

Kind = Literal["seed", "child", "parent", "whole"]


@dataclass(frozen=True)
class Reason:
    """Why a table is in the plan: a seed, a child/parent edge, or a whole-table rule."""

    kind: Kind
    fk: ForeignKey | None = None
    depth: int = 0
    condition: str | None = None

    def __str__(self) -> str:
        return self.label(str(self.depth))

    def label(self, depths: str) -> str:
        """The reason in words, with ``depths`` in place of a child edge's depth."""
        if self.kind == "seed":
            return f"seed ({self.condition})"
        if self.kind == "whole":
            return "whole table"
        assert self.fk is not None
        if self.kind == "child":
            return f"child-of {self.fk.parent} via {self.fk.name} (depth {depths})"
        return f"parent-of {self.fk.child} via {self.fk.name}"


@dataclass(frozen=True)
class TablePlan:
    table: Table
    reasons: tuple[Reason, ...]
    estimated_rows: int | None
    cap: int | None = None

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def whole(self) -> bool:
        return any(r.kind == "whole" for r in self.reasons)

    @property
    def selected_by(self) -> str:
        """The reasons, one per rule and foreign key (a child edge lists all its depths)."""
        groups: dict[tuple[object, ...], list[Reason]] = {}
        for r in self.reasons:
            groups.setdefault((r.kind, r.fk, r.condition), []).append(r)
        return "; ".join(rs[0].label(", ".join(str(r.depth) for r in rs)) for rs in groups.values())


@dataclass(frozen=True)
class SubsetPlan:
    """A printable, testable plan: tables in load order with how each is selected."""

    tables: tuple[TablePlan, ...]
    seeds: tuple[Seed, ...]
    depth: int
    schemas: tuple[str, ...]
    graph: Graph = field(repr=False)
    late_fks: tuple[ForeignKey, ...] = ()  # cycles: FKs whose parent loads after the child

    @property
    def params(self) -> tuple[str, ...]:
        """Every ``:name`` parameter the seeds need."""
        names: list[str] = []
        for s in self.seeds:
            names.extend(p for p in s.params if p not in names)
        return tuple(names)

    @property
    def order(self) -> list[str]:
        return [t.name for t in self.tables]

    def table(self, name: str) -> TablePlan:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"{name} is not in the subset plan (tables: {', '.join(self.order)})")

    def describe(self, counts: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
        """One dict per table, in load order; ``actual_rows`` once ``counts`` are known."""
        rows = []
        for i, t in enumerate(self.tables, 1):
            row: dict[str, Any] = {
                "order": i,
                "table": t.name,
                "selected_by": t.selected_by,
                "estimated_rows": t.estimated_rows,
                "cap": t.cap,
            }
            if counts is not None:
                row["actual_rows"] = counts.get(t.name)
            rows.append(row)
        return rows

    def render(self, counts: Mapping[str, int] | None = None) -> str:
        """Plain text: one line per table, then the foreign keys a cycle forces to load late."""
        rows = self.describe(counts)
        heads = (
            ["#", "table", "est. rows"] + (["rows"] if counts is not None else []) + ["selected by"]
        )
        cells = [
            [str(r["order"]), r["table"], _num(r["estimated_rows"])]
            + ([_num(r["actual_rows"])] if counts is not None else [])
            + [r["selected_by"] + (f" [cap {r['cap']}]" if r["cap"] is not None else "")]
            for r in rows
        ]
        widths = [max(len(x) for x in col) for col in zip(heads, *cells, strict=False)]
        lines = [f"subset plan: {len(rows)} tables, child depth {self.depth}"]
        for line in [heads, *cells]:
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=False))
                + "  "
                + line[-1]
            )
        for fk in self.late_fks:
            lines.append(f"cycle: load {fk.name} ({fk}) after the data, or defer it")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _num(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


def plan_subset(
    graph: Graph,
    seeds: Iterable[Seed | str] = (),
    *,
    schemas: Sequence[str] = ("public",),
    depth: int = DEFAULT_DEPTH,
    caps: Mapping[str, int] | None = None,
    whole_tables: Iterable[str] = (),
    all_tables: bool = False,
) -> SubsetPlan:
    """Apply the rules to ``graph`` (no database access); the plan has no row estimates yet.

    Names may be schema-qualified or are looked up in ``schemas`` in order.
    """
    if depth < 0:
        raise ConfigError(f"child depth must be 0 or more, not {depth}")
    if not schemas:
        raise ConfigError("a subset needs at least one schema")
    seed_list = [Seed(graph.resolve(s.table, schemas), s.condition) for s in coerce_seeds(seeds)]
    whole = {graph.resolve(t, schemas) for t in whole_tables}
    if all_tables:
        whole |= set(graph.in_schemas(schemas))
    cap_by = _caps(graph, schemas, caps or {})
    for s in seed_list:
        if not graph.tables[s.table].key and s.table not in whole:
            raise ConfigError(
                f"seed {s}: table {s.table} has no primary key or NOT NULL unique index to "
                "select rows by; copy it whole instead"
            )
    if not seed_list and not whole:
        raise ConfigError("a subset needs at least one seed, a whole table or all_tables")
    reasons = _reach(graph, seed_list, whole, depth, cap_by)
    order, late = load_order(reasons, graph.fks)
    return SubsetPlan(
        tables=tuple(
            TablePlan(graph.tables[t], tuple(reasons[t]), None, cap_by.get(t)) for t in order
        ),
        seeds=tuple(seed_list),
        depth=depth,
        schemas=tuple(schemas),
        graph=graph,
        late_fks=tuple(late),
    )


def build_plan(
    conn: psycopg.Connection,
    seeds: Iterable[Seed | str] = (),
    *,
    schemas: Sequence[str] = ("public",),
    depth: int = DEFAULT_DEPTH,
    caps: Mapping[str, int] | None = None,
    whole_tables: Iterable[str] = (),
    all_tables: bool = False,
    params: Mapping[str, object] | None = None,
    virtual_references: Sequence[VirtualReference] = (),
) -> SubsetPlan:
    """Read the FK graph behind ``conn``, apply the rules and estimate rows (reads only).

    Runs in a READ ONLY transaction that it rolls back (a savepoint if one is open). ``params``
    is optional here: when given, missing parameters fail now and seed rows are estimated with
    EXPLAIN; otherwise tables that depend on a seed show no estimate until execution.
    ``virtual_references`` are followed like foreign keys (:mod:`.virtual`).
    """
    with read_only(conn):
        with translate("reading the foreign-key graph from the catalog"):
            graph = with_virtual(load_graph(conn), virtual_references, schemas)
        plan = plan_subset(
            graph,
            seeds,
            schemas=schemas,
            depth=depth,
            caps=caps,
            whole_tables=whole_tables,
            all_tables=all_tables,
        )
        estimates = estimate_rows(conn, plan, params)
    return replace(
        plan,
        tables=tuple(replace(t, estimated_rows=estimates.get(t.name)) for t in plan.tables),
    )


def _caps(graph: Graph, schemas: Sequence[str], caps: Mapping[str, int]) -> dict[str, int]:
    out = {}
    for name, cap in caps.items():
        table = graph.resolve(name, schemas)
        if cap < 0:
            raise ConfigError(f"row cap for {table} must be 0 or more, not {cap}")
        if not graph.tables[table].key:
            raise ConfigError(
                f"row cap for {table}: the table has no primary key or NOT NULL unique index, "
                "so a capped selection could not be reproduced; drop the cap or copy it whole"
            )
        out[table] = cap
    return out


def _reach(
    graph: Graph, seeds: list[Seed], whole: set[str], depth: int, caps: Mapping[str, int]
) -> dict[str, list[Reason]]:
    """Which tables the rules can reach, and every reason why (static: no rows are read)."""
    reasons: dict[str, list[Reason]] = {t: [Reason("whole")] for t in sorted(whole)}
    level: set[str] = set()
    for s in seeds:
        if s.table not in whole:
            reasons.setdefault(s.table, []).append(Reason("seed", condition=s.condition))
            level.add(s.table)
    for d in range(1, depth + 1):
        nxt: set[str] = set()
        for parent in sorted(level):
            for fk in graph.children_of(parent):
                if fk.child in whole or caps.get(fk.child) == 0:
                    continue
                reasons.setdefault(fk.child, []).append(Reason("child", fk, d))
                if graph.tables[fk.child].key:  # keyless tables cannot be referenced
                    nxt.add(fk.child)
        level = nxt
    todo = list(reasons)
    seen_fk: set[tuple[str, str]] = set()
    while todo:
        child = todo.pop()
        for fk in graph.parents_of(child):
            if fk.parent in whole or (fk.name, fk.child) in seen_fk:
                continue
            seen_fk.add((fk.name, fk.child))
            if fk.parent not in reasons:
                todo.append(fk.parent)
            reasons.setdefault(fk.parent, []).append(Reason("parent", fk))
    return reasons

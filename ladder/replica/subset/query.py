"""Rendering subset steps to SQL with ``psycopg.sql`` (identifiers quoted, values bound or literal).

Key sets travel as arrays, one per key column, cast to the column's type and unnested:
``(t.a, t.b) IN (SELECT * FROM unnest(CAST($1 AS int8[]), CAST($2 AS int8[])))``. A semi-join on
``unnest`` lets PostgreSQL pick an index nested loop for a few keys and a hash join for millions.
While the executor computes the closure the arrays are bind parameters (:class:`Binder`); in a
copy query they are ``sql.Literal`` values, so the query runs on its own (``COPY (...) TO STDOUT``
takes no parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from psycopg import sql

from ladder.replica.subset.graph import ForeignKey, Table
from ladder.replica.subset.seeds import compile_condition


@dataclass
class Binder:
    """Collects arrays as named bind parameters; ``literal=True`` inlines them instead."""

    literal: bool = False
    params: dict[str, list[object]] = field(default_factory=dict)

    def array(self, values: Sequence[object]) -> sql.Composable:
        """``values`` (a list, or an int64 array of keys) as a parameter or an inline literal."""
        if self.literal:
            if isinstance(values, np.ndarray):
                return sql.Literal(_array_text(values))  # the query casts it to the key's type
            return sql.Literal(list(values))
        name = f"_k{len(self.params)}"
        self.params[name] = values.tolist() if isinstance(values, np.ndarray) else list(values)
        return sql.Placeholder(name)


def _array_text(keys: np.ndarray, chunk: int = 100_000) -> str:
    """``{1,2,3}``, made a chunk at a time: millions of keys never exist as Python ints at once."""
    parts = (",".join(map(str, keys[i : i + chunk].tolist())) for i in range(0, keys.size, chunk))
    return "{" + ",".join(parts) + "}"


def ident(table: Table) -> sql.Composable:
    """The table in a ``FROM``: ``ONLY`` its own rows when inheritance children hold theirs
    (they are tables of the plan too; a partitioned table's rows are all its own)."""
    name = sql.Identifier(table.schema, table.relname)
    return sql.SQL("ONLY {}").format(name) if table.inherited else name


def virtual_condition(fk: ForeignKey) -> sql.Composable | None:
    """A virtual reference's condition on its child rows (alias ``_c``), checked like a seed's."""
    if fk.where is None:
        return None
    return sql.SQL("({})").format(compile_condition(fk.where).query)


def _and(cond: sql.Composable, fk: ForeignKey) -> sql.Composable:
    extra = virtual_condition(fk)
    return cond if extra is None else sql.SQL("{} AND {}").format(cond, extra)


def cols(alias: str, names: Sequence[str]) -> sql.Composed:
    """``(alias.a, alias.b)``; a single column needs no row constructor but parentheses are fine."""
    return sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(alias, n) for n in names))


def key_in(alias: str, table: Table, keys: Sequence[object], binder: Binder) -> sql.Composed:
    """``alias``'s key is one of ``keys`` (scalars for one key column, tuples for several)."""
    return key_in_columns(alias, table.key, table, keys, binder)


def select_list(alias: str, names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)


def seed_select(table: Table, condition: sql.Composable) -> sql.Composed:
    """Keys of the rows matching a seed condition. No alias: the condition may name the table."""
    return sql.SQL("SELECT {} FROM {} WHERE ({})").format(
        sql.SQL(", ").join(sql.Identifier(k) for k in table.key), ident(table), condition
    )


def count_estimate_query(table: Table) -> sql.Composed:
    return sql.SQL("SELECT 1 FROM {}").format(ident(table))


def referenced_by(
    fk: ForeignKey, parent: Table, child: Table, child_filter: sql.Composable
) -> sql.Composed:
    """``_p``'s referenced columns are among those of ``_c`` rows passing ``child_filter``."""
    return sql.SQL("{} IN (SELECT {} FROM {} AS _c WHERE {})").format(
        cols("_p", fk.parent_columns),
        select_list("_c", fk.child_columns),
        ident(child),
        _and(child_filter, fk),
    )


def references(
    fk: ForeignKey, child: Table, parent: Table, parent_keys: Sequence[object], binder: Binder
) -> sql.Composed:
    """``_c`` references one of the ``parent_keys`` rows of ``parent`` through ``fk``."""
    if fk.parent_columns == parent.key:
        return _and(key_in_columns("_c", fk.child_columns, parent, parent_keys, binder), fk)
    return _and(
        sql.SQL("{} IN (SELECT {} FROM {} AS _p WHERE {})").format(
            cols("_c", fk.child_columns),
            select_list("_p", fk.parent_columns),
            ident(parent),
            key_in("_p", parent, parent_keys, binder),
        ),
        fk,
    )


def key_in_columns(
    alias: str, names: Sequence[str], keyed: Table, keys: Sequence[object], binder: Binder
) -> sql.Composed:
    """Like :func:`key_in`, but matching ``names`` of ``alias`` against ``keyed``'s key values."""
    if not len(keys):
        return sql.SQL("false").format()
    columns = keyed.key_columns
    if len(columns) == 1:
        arrays = [keys if isinstance(keys, np.ndarray) else list(keys)]
    else:
        arrays = [list(c) for c in zip(*keys, strict=True)]
    casts = sql.SQL(", ").join(
        sql.SQL("CAST({} AS {}[])").format(
            binder.array(values), sql.Identifier(c.type_schema, c.type_name)
        )
        for values, c in zip(arrays, columns, strict=True)
    )
    return sql.SQL("{} IN (SELECT * FROM unnest({}))").format(cols(alias, names), casts)


def children_select(
    fk: ForeignKey,
    child: Table,
    parent: Table,
    parent_keys: Sequence[object],
    binder: Binder,
    limit: int | None,
) -> sql.Composed:
    """Keys of ``child`` rows referencing the given parent rows; the lowest ``limit`` keys if capped."""
    query = sql.SQL("SELECT {} FROM {} AS _c WHERE {}").format(
        select_list("_c", child.key),
        ident(child),
        references(fk, child, parent, parent_keys, binder),
    )
    if limit is not None:
        query = sql.SQL("{} ORDER BY {} LIMIT {}").format(
            query, select_list("_c", child.key), sql.Literal(limit)
        )
    return query


def parents_select(
    fk: ForeignKey, parent: Table, child: Table, child_filter: sql.Composable
) -> sql.Composed:
    """Keys of ``parent`` rows that ``child`` rows passing ``child_filter`` (alias ``_c``) reference.

    A self-reference is climbed one level per call: the executor feeds the new rows back in,
    so each step is an indexed lookup whatever the planner thinks of a recursive CTE.
    """
    return sql.SQL("SELECT {} FROM {} AS _p WHERE {}").format(
        select_list("_p", parent.key), ident(parent), referenced_by(fk, parent, child, child_filter)
    )


def copy_select(
    table: Table, where: sql.Composable | None, columns: Sequence[str] | None = None
) -> sql.Composed:
    """``SELECT <columns in table order> FROM t [AS _c WHERE ...]`` for ``COPY (...) TO STDOUT``."""
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    query = sql.SQL("SELECT {} FROM {} AS _c").format(select_list("_c", names), ident(table))
    if where is None:
        return query
    return sql.SQL("{} WHERE {}").format(query, where)


def count_select(table: Table, where: sql.Composable | None) -> sql.Composed:
    query = sql.SQL("SELECT count(*) FROM {} AS _c").format(ident(table))
    return query if where is None else sql.SQL("{} WHERE {}").format(query, where)

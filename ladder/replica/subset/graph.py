"""The foreign-key graph of a database, read from the catalog, and the load order it implies.

Tables are ordinary and partitioned tables outside the system schemas. Partitions are reached
through their root: a foreign key declared on a partition (or onto one) is an edge of the root
table, with the partition's column names, and the same edge declared on several partitions is
one edge. Inheritance children are tables of their own, so a parent's rows are read ``ONLY``
from the parent (:attr:`Table.inherited`). Virtual references (:mod:`.virtual`) join the
graph as foreign keys with a condition on the referencing rows. Each table has a *key*: its
primary key, else the first unique index whose columns are all NOT NULL (no predicate, no
expressions), else none. Foreign keys keep their column pairs in declaration order, so composite
keys and keys onto non-primary unique columns work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import psycopg

from ladder.errors import ConfigError


@dataclass(frozen=True)
class Column:
    name: str
    type_schema: str
    type_name: str
    sql_type: str  # format_type(), for people
    not_null: bool
    generated: bool


@dataclass(frozen=True)
class Table:
    """One table: ``name`` is ``schema.relname``; ``key`` is empty when no usable key exists."""

    schema: str
    relname: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    reltuples: float  # -1 when never analyzed
    partitioned: bool = False  # rows live in its partitions; COPY into it cannot FREEZE
    inherited: bool = False  # an ordinary table with inheritance children: read it ONLY

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.relname}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def key_columns(self) -> tuple[Column, ...]:
        return tuple(self.column(k) for k in self.key)


@dataclass(frozen=True)
class ForeignKey:
    """``child.child_columns`` references ``parent.parent_columns`` (constraint ``name``)."""

    name: str
    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    nullable: bool  # some child column may be NULL: the row can be loaded before its parent
    where: str | None = None  # a virtual reference's condition on the child rows
    # Declared in config (a polymorphic association, a reference with no constraint), not in
    # the catalog: followed like a foreign key, never checked nor used for the load order.
    virtual: bool = False

    def __str__(self) -> str:
        return (
            f"{self.child}({', '.join(self.child_columns)}) -> "
            f"{self.parent}({', '.join(self.parent_columns)})"
        )

    @property
    def self_reference(self) -> bool:
        return self.child == self.parent


@dataclass(frozen=True)
class Graph:
    tables: dict[str, Table]
    fks: tuple[ForeignKey, ...]
    _parents: dict[str, list[ForeignKey]] = field(default_factory=dict, repr=False)
    _children: dict[str, list[ForeignKey]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for fk in self.fks:
            self._parents.setdefault(fk.child, []).append(fk)
            self._children.setdefault(fk.parent, []).append(fk)

    def parents_of(self, table: str) -> list[ForeignKey]:
        """Foreign keys of ``table`` (edges to the tables it references)."""
        return self._parents.get(table, [])

    def children_of(self, table: str) -> list[ForeignKey]:
        """Foreign keys that reference ``table``."""
        return self._children.get(table, [])

    def resolve(self, name: str, schemas: Sequence[str]) -> str:
        """``users`` or ``public.users`` -> the qualified name of a table, or a clear error."""
        if name in self.tables:
            return name
        if "." not in name:
            for schema in schemas:
                if f"{schema}.{name}" in self.tables:
                    return f"{schema}.{name}"
        near = sorted(t for t in self.tables if t.split(".", 1)[1] == name.split(".")[-1])
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise ConfigError(f"unknown table {name!r} in schemas {', '.join(schemas)}{hint}")

    def in_schemas(self, schemas: Iterable[str]) -> list[str]:
        wanted = set(schemas)
        return sorted(t for t, v in self.tables.items() if v.schema in wanted)


_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.reltuples, c.relkind = 'p',
       c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
"""
_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname, tn.nspname, t.typname,
       pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated <> ''
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_KEYS = """
SELECT i.indrelid, (i.indkey::int2[])[0:i.indnkeyatts - 1]
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = ANY(%s) AND i.indisunique AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY i.indrelid, i.indisprimary DESC, i.indnkeyatts, ic.relname
"""
# Foreign keys of tables and of partitions (whose edges belong to their root), onto tables or
# partitions; not the copies PostgreSQL makes on each partition of a key declared higher up.
_FKS = """
SELECT con.conname,
       COALESCE(pg_catalog.pg_partition_root(con.conrelid), con.conrelid)::oid,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
             ORDER BY k.i)::text[],
       COALESCE(pg_catalog.pg_partition_root(con.confrelid), con.confrelid)::oid,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
             ORDER BY k.i)::text[]
FROM pg_catalog.pg_constraint con
WHERE con.contype = 'f' AND con.conparentid = 0
ORDER BY 2, con.conname
"""


def load_graph(conn: psycopg.Connection) -> Graph:
    """Read tables, columns, keys and foreign keys of every non-system schema from the catalog."""
    rels = conn.execute(_TABLES).fetchall()
    oids = [r[0] for r in rels]
    cols: dict[int, dict[int, Column]] = {}
    for relid, attnum, name, tschema, tname, sqltype, notnull, generated in conn.execute(
        _COLUMNS, [oids]
    ):
        cols.setdefault(relid, {})[attnum] = Column(
            name, tschema, tname, sqltype, notnull, generated
        )
    keys: dict[int, tuple[str, ...]] = {}
    for relid, attnums in conn.execute(_KEYS, [oids]):
        if relid in keys or 0 in attnums:
            continue
        columns = [cols[relid][a] for a in attnums]
        if all(c.not_null for c in columns):
            keys[relid] = tuple(c.name for c in columns)
    names = {oid: f"{schema}.{rel}" for oid, schema, rel, *_ in rels}
    tables = {
        names[oid]: Table(
            schema,
            rel,
            tuple(cols.get(oid, {}).values()),
            keys.get(oid, ()),
            float(reltuples),
            partitioned=partitioned,
            inherited=inherited,
        )
        for oid, schema, rel, reltuples, partitioned, inherited in rels
    }
    fks: dict[tuple[object, ...], ForeignKey] = {}
    for conname, relid, child_cols, frelid, parent_cols in conn.execute(_FKS):
        if relid not in names or frelid not in names:
            continue
        child, parent = names[relid], names[frelid]
        edge = (child, tuple(child_cols), parent, tuple(parent_cols))
        if edge in fks:  # the same key declared on several partitions
            continue
        not_null = {c.name for c in cols.get(relid, {}).values() if c.not_null}
        fks[edge] = ForeignKey(
            conname,
            child,
            tuple(child_cols),
            parent,
            tuple(parent_cols),
            nullable=not set(child_cols) <= not_null,
        )
    return Graph(tables, tuple(fks.values()))


def load_order(
    tables: Iterable[str], fks: Iterable[ForeignKey]
) -> tuple[list[str], list[ForeignKey]]:
    """Tables ordered parents first, and the foreign keys that order cannot satisfy.

    Self-references need no order (a COPY checks its foreign keys at the end of the statement).
    Cycles between tables are broken at nullable foreign keys first; the FKs whose parent is
    loaded after their child are returned so the loader can defer them or add them after loading.
    """
    names = sorted(tables)
    inside = set(names)
    edges = [
        fk
        for fk in fks
        if fk.child in inside and fk.parent in inside and not fk.self_reference and not fk.virtual
    ]
    order: list[str] = []
    for component in _strongly_connected(names, edges):
        members = set(component)
        local = [fk for fk in edges if fk.child in members and fk.parent in members]
        strict = [fk for fk in local if not fk.nullable]
        order.extend(_topological(component, strict) or _topological(component, []) or [])
    position = {t: i for i, t in enumerate(order)}
    late = [fk for fk in edges if position[fk.parent] > position[fk.child]]
    return order, late


def _topological(nodes: list[str], edges: list[ForeignKey]) -> list[str] | None:
    """Kahn's algorithm, alphabetical among ready nodes; None when ``edges`` hold a cycle."""
    waiting = {n: {fk.parent for fk in edges if fk.child == n} for n in nodes}
    out: list[str] = []
    while waiting:
        ready = sorted(n for n, deps in waiting.items() if not deps - set(out))
        if not ready:
            return None
        out.append(ready[0])
        del waiting[ready[0]]
    return out


def _strongly_connected(nodes: list[str], edges: list[ForeignKey]) -> list[list[str]]:
    """Tarjan's SCCs, parents' components before their children's."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for fk in edges:
        succ[fk.child].append(fk.parent)  # child depends on parent
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for n in nodes:
        if n not in index:
            visit(n)
    return out  # Tarjan emits a component after everything it depends on

"""What a live PostgreSQL database holds: tables, columns, keys, and a sample of values.

Table names are ``schema.table`` strings (unquoted). Every query binds its parameters; identifiers
go through :mod:`psycopg.sql`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

DEFAULT_SCHEMA = "public"


@dataclass(frozen=True)
class Column:
    """One column. ``is_unique``: a single-column unique index or primary key covers it (partial
    indexes count); ``is_pk``: part of the primary key; ``category``: ``pg_type.typcategory`` of
    the (domain's base) type: ``S`` string, ``N`` numeric, ``I`` network, ``D`` date/time, ..."""

    name: str
    type: str
    nullable: bool
    is_unique: bool
    is_pk: bool
    category: str = ""


def qualify(table: str) -> str:
    """``users`` -> ``public.users``; a qualified name is returned as it is."""
    return table if "." in table else f"{DEFAULT_SCHEMA}.{table}"


def split(table: str) -> tuple[str, str]:
    schema, _, name = qualify(table).partition(".")
    return schema, name


_TABLES = """
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s)
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT n.nspname || '.' || c.relname AS tbl,
       a.attname,
       format_type(a.atttypid, a.atttypmod),
       NOT a.attnotnull,
       EXISTS (SELECT 1 FROM pg_index i
               WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
                 AND i.indkey[0] = a.attnum),
       EXISTS (SELECT 1 FROM pg_index i
               WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY(i.indkey)),
       COALESCE(bt.typcategory, t.typcategory)::text
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  AND n.nspname || '.' || c.relname = ANY(%s)
ORDER BY tbl, a.attnum
"""


def list_tables(conn: psycopg.Connection, schemas: Sequence[str] = (DEFAULT_SCHEMA,)) -> list[str]:
    """Ordinary and partitioned tables in ``schemas`` (not views, not partitions), sorted."""
    return [row[0] for row in conn.execute(_TABLES, [list(schemas)]).fetchall()]


def columns(conn: psycopg.Connection, tables: Iterable[str]) -> dict[str, list[Column]]:
    """The columns of each table, in table order. Generated columns are left out: the target
    computes them. A table that does not exist is absent from the result."""
    wanted = [qualify(t) for t in tables]
    out: dict[str, list[Column]] = {}
    for tbl, name, typ, nullable, unique, pk, category in conn.execute(_COLUMNS, [wanted]):
        out.setdefault(tbl, []).append(Column(name, typ, nullable, unique, pk, category))
    return out


def sample_values(
    conn: psycopg.Connection, table: str, names: Sequence[str], limit: int = 200
) -> dict[str, list[str]]:
    """Up to ``limit`` rows of ``names`` as text (NULLs dropped), for guessing what a column holds.

    The values are production data: use them to decide, never print or store them.
    """
    if not names:
        return {}
    query = sql.SQL("SELECT {} FROM {} LIMIT %s").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(n)) for n in names),
        sql.Identifier(*split(table)),
    )
    rows = conn.execute(query, [limit]).fetchall()
    return {n: [row[i] for row in rows if row[i] is not None] for i, n in enumerate(names)}

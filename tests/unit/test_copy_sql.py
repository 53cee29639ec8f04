"""The target side of a table copy: names enter the SQL only as quoted identifiers."""

from __future__ import annotations

from psycopg import sql

from ladder.replica.copy import TableCopy, _target_sql


def _copy(**kw: object) -> TableCopy:
    defaults: dict[str, object] = {
        "name": 'pub.we"ird; DROP TABLE users',
        "schema": "pub",
        "relname": 'we"ird; DROP TABLE users',
        "columns": ("id", "full name"),
        "query": sql.SQL("SELECT 1"),
    }
    return TableCopy(**{**defaults, **kw})  # type: ignore[arg-type]


def test_truncate_and_copy_freeze_quote_every_name() -> None:
    truncate, load = _target_sql(_copy(), csv=False)
    assert truncate == 'TRUNCATE ONLY "pub"."we""ird; DROP TABLE users"'
    assert load == 'COPY "pub"."we""ird; DROP TABLE users" ("id", "full name") FROM STDIN (FREEZE)'


def test_transformed_tables_load_csv() -> None:
    _, load = _target_sql(_copy(schema="public", relname="users"), csv=True)
    assert load == 'COPY "public"."users" ("id", "full name") FROM STDIN (FORMAT csv, FREEZE)'


def test_partitioned_tables_load_through_the_root_without_freeze() -> None:
    # PostgreSQL: "cannot perform COPY FREEZE on a partitioned table"; the root routes the rows.
    truncate, load = _target_sql(_copy(schema="b", relname="payments", partitioned=True), csv=False)
    assert truncate == 'TRUNCATE "b"."payments"'
    assert load == 'COPY "b"."payments" ("id", "full name") FROM STDIN'
    _, load = _target_sql(_copy(schema="b", relname="payments", partitioned=True), csv=True)
    assert load == 'COPY "b"."payments" ("id", "full name") FROM STDIN (FORMAT csv)'

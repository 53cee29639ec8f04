"""Loading a replica database's schema: pg_dump of the source, pg_restore, sequences, views.

The schema travels as a custom-format ``pg_dump --schema-only`` of the source database, taken
in the subset's snapshot; ``pg_restore --section=pre-data`` creates the tables before the
data, ``--section=post-data`` adds indexes and constraints after it (``-j`` jobs in parallel).

Putting the loaded database in the target's place is the next step, :mod:`ladder.replica.swap`.
"""

from __future__ import annotations

import graphlib
import re
from pathlib import Path

from psycopg import sql

from ladder.connectors.postgres import connect, find_bindir
from ladder.errors import PostgresError
from ladder.procs import run
from ladder.replica.copy import conninfo_env


def dump_schema(source_dsn: str, snapshot_id: str, out: Path) -> Path:
    """``pg_dump -Fc --schema-only`` of the whole source database in ``snapshot_id``.

    Every table comes (those the plan does not copy stay empty, so the app still finds them),
    with what tables need and ``pg_dump -t`` leaves out: extensions, enum and composite types,
    domains, functions behind defaults and triggers, standalone sequences, views. Publications,
    subscriptions, security labels and tablespaces stay behind: they belong to the source server.
    """
    conninfo, env = conninfo_env(source_dsn)
    argv = [
        str(find_bindir() / "pg_dump"),
        f"--dbname={conninfo}",
        "--schema-only",
        "--format=custom",
        f"--snapshot={snapshot_id}",
        "--no-publications",
        "--no-subscriptions",
        "--no-security-labels",
        "--no-tablespaces",
        f"--file={out}",
    ]
    res = run(argv, env=env, timeout=600)
    if not res.ok:
        raise PostgresError(f"pg_dump --schema-only failed: {res.tail(5)}")
    return out


# A TOC line of ``pg_restore -l``: "<id>; <catalog oid> <oid> <description> <schema> <name> ..."
_TOC_EXTENSION = re.compile(r"^\d+; \d+ \d+ (?:EXTENSION - |COMMENT - EXTENSION )(\S+)")


def leave_out_extensions(toc: str, available: set[str]) -> tuple[str, list[str]]:
    """``toc`` (``pg_restore -l`` output) with the extensions not in ``available`` commented
    out, and their names. The rest of the schema may not need them (a monitoring or cron
    extension of the production server); what does need one fails with its own message."""
    lines, left_out = [], []
    for line in toc.splitlines():
        m = _TOC_EXTENSION.match(line)
        if m and m[1] not in available:
            line = ";" + line
            if m[1] not in left_out:
                left_out.append(m[1])
        lines.append(line)
    return "\n".join(lines) + "\n", left_out


def restore_list(target_dsn: str, dump: Path, out: Path) -> list[str]:
    """Write the list of ``dump`` entries to restore on ``target_dsn`` to ``out`` (for
    :func:`restore_section`); returns the extensions left out because the server lacks them."""
    res = run([str(find_bindir() / "pg_restore"), "--list", str(dump)], timeout=120)
    if not res.ok:
        raise PostgresError(f"pg_restore --list failed: {res.tail(5)}")
    with connect(target_dsn, autocommit=True) as conn:
        available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
    toc, left_out = leave_out_extensions(res.stdout, available)
    out.write_text(toc)
    return left_out


def restore_section(
    target_dsn: str, dump: Path, section: str, jobs: int = 1, entries: Path | None = None
) -> None:
    """``pg_restore --section=SECTION`` of ``dump`` into ``target_dsn`` (no owners, no grants),
    only the ``entries`` of a :func:`restore_list` file when given."""
    conninfo, env = conninfo_env(target_dsn)
    argv = [
        str(find_bindir() / "pg_restore"),
        f"--dbname={conninfo}",
        f"--section={section}",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        f"--jobs={max(1, jobs)}",
        *([f"--use-list={entries}"] if entries else []),
        str(dump),
    ]
    res = run(argv, env=env, timeout=None)
    if not res.ok:
        raise PostgresError(f"pg_restore --section={section} failed: {res.tail(5)}")


# Every (sequence, table, column) pair where the column takes its values from the sequence: the
# column owns it (serial, deptype 'a'), is an identity column ('i'), or its default calls
# nextval('seq'::regclass) (pg_attrdef depends on the sequence, 'n': shared and non-owned
# sequences). Integer columns only (a text default like 'INV-' || nextval(...) has no max to
# set past); partitions are covered by their root, inheritance parents read their children too.
_SEQUENCE_COLUMNS = """
SELECT DISTINCT s.oid, sn.nspname, s.relname, tn.nspname, t.relname, a.attname
FROM pg_depend d
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
JOIN pg_class s ON s.relkind = 'S'
  AND s.oid = CASE WHEN ad.oid IS NULL THEN d.objid ELSE d.refobjid END
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = CASE WHEN ad.oid IS NULL THEN d.refobjid ELSE ad.adrelid END
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid
  AND a.attnum = CASE WHEN ad.oid IS NULL THEN d.refobjsubid ELSE ad.adnum END
WHERE d.refclassid = 'pg_class'::regclass
  AND ((d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
       OR (ad.oid IS NOT NULL AND d.deptype = 'n'))
  AND t.relkind IN ('r', 'p') AND NOT t.relispartition
  AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype)
ORDER BY 1, 4, 5, 6
"""


def set_sequences(target_dsn: str) -> int:
    """Every sequence a column takes its values from (owned, identity, or named in a column
    default: non-owned and shared sequences too) set past the largest value of all those
    columns, so the first insert into the replica gets a new id; returns how many were set.

    A sequence whose columns are all empty keeps its start; a descending one is left alone.
    """
    with connect(target_dsn, autocommit=True) as conn:
        users: dict[int, tuple[sql.Composable, list[sql.Composable]]] = {}
        for oid, sschema, seq, schema, table, column in conn.execute(_SEQUENCE_COLUMNS):
            users.setdefault(oid, (sql.Identifier(sschema, seq), []))[1].append(
                sql.SQL("(SELECT max({}) FROM {})").format(
                    sql.Identifier(column), sql.Identifier(schema, table)
                )
            )
        done = 0
        for oid, (seq, maxima) in users.items():
            row = conn.execute(
                sql.SQL(
                    "SELECT pg_catalog.setval({s}::regclass, m::bigint, true)"
                    " FROM (SELECT greatest({ms}) AS m) AS v, pg_catalog.pg_sequence ps"
                    " WHERE ps.seqrelid = %s AND ps.seqincrement > 0 AND m IS NOT NULL"
                    " AND m >= ps.seqmin AND m <= ps.seqmax"
                ).format(s=sql.Literal(seq.as_string(conn)), ms=sql.SQL(", ").join(maxima)),
                [oid],
            ).fetchone()
            done += row is not None
        return done


_MATERIALIZED_VIEWS = """
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm'
"""
_VIEW_DEPENDENCIES = """
SELECT DISTINCT r.ev_class, d.refobjid
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
JOIN pg_class dep ON dep.oid = d.refobjid AND dep.relkind = 'm'
WHERE d.refobjid <> r.ev_class
"""


def refresh_materialized_views(target_dsn: str) -> int:
    """Populate every materialized view (a schema-only restore leaves them empty and unreadable),
    each after the ones it reads; returns how many. They are computed from the replica's rows."""
    with connect(target_dsn, autocommit=True) as conn:
        names = {oid: (schema, rel) for oid, schema, rel in conn.execute(_MATERIALIZED_VIEWS)}
        needs: dict[int, set[int]] = {oid: set() for oid in names}
        for view, dep in conn.execute(_VIEW_DEPENDENCIES).fetchall():
            if view in needs:
                needs[view].add(dep)
        for oid in graphlib.TopologicalSorter(needs).static_order():
            view = sql.Identifier(*names[oid])
            conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(view))
        return len(names)


def analyze(target_dsn: str) -> None:
    with connect(target_dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")

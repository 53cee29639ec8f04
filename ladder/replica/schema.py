"""Loading a replica database: schema from pg_dump, sequences, and the atomic swap into place.

The schema travels as a custom-format ``pg_dump --schema-only`` of the source database, taken
in the subset's snapshot; ``pg_restore --section=pre-data`` creates the tables before the
data, ``--section=post-data`` adds indexes and constraints after it (``-j`` jobs in parallel).

The swap renames the old target aside and the new database into its place in ONE transaction,
so a reader sees either the old target or the new one; previous copies beyond ``keep_previous``
are dropped.
"""

from __future__ import annotations

import graphlib
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ladder.connectors.postgres import connect, find_bindir, with_dbname
from ladder.errors import ConfigError, PostgresError
from ladder.procs import run
from ladder.replica.copy import conninfo_env

MAX_NAME = 63  # PostgreSQL's identifier limit (bytes)
NEW_MARK = "__ladder_"
PREV_MARK = "__prev_"


def target_dbname(target_dsn: str) -> str:
    name = conninfo_to_dict(target_dsn).get("dbname")
    if not name:
        raise ConfigError("the target DSN must name a database (dbname=...)")
    if name in ("postgres", "template0", "template1"):
        raise ConfigError(f"refusing to replace the system database {name!r}; name another target")
    return str(name)


def _with_suffix(base: str, suffix: str) -> str:
    room = MAX_NAME - len(suffix.encode())
    cut = base.encode()[:room].decode(errors="ignore")
    return cut + suffix


def new_database_name(target: str) -> str:
    """``<target>__ladder_<shortid>``, shortened to PostgreSQL's 63-byte limit."""
    return _with_suffix(target, f"{NEW_MARK}{secrets.token_hex(4)}")


def _previous_name(target: str) -> str:
    return _with_suffix(target, f"{PREV_MARK}{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}")


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


_OWNED_SEQUENCES = """
SELECT quote_ident(sn.nspname) || '.' || quote_ident(s.relname), tn.nspname, t.relname, a.attname
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i')
"""


def set_sequences(target_dsn: str) -> int:
    """Every sequence owned by a column set past the column's largest value; returns how many."""
    with connect(target_dsn, autocommit=True) as conn:
        owned = conn.execute(_OWNED_SEQUENCES).fetchall()
        for seq, schema, table, column in owned:
            conn.execute(
                sql.SQL(
                    "SELECT pg_catalog.setval(%s::regclass, coalesce(max({c}), 1)::bigint,"
                    " max({c}) IS NOT NULL) FROM {t}"
                ).format(c=sql.Identifier(column), t=sql.Identifier(schema, table)),
                [seq],
            )
        return len(owned)


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


def swap(server_dsn: str, new: str, target: str, keep_previous: int = 0) -> list[str]:
    """Put database ``new`` in the place of ``target`` atomically; returns the previous copies kept.

    The old target (if any) becomes ``<target>__prev_<utc time>``; copies beyond the newest
    ``keep_previous`` are dropped. Connections to the old target are closed first.
    """
    if keep_previous < 0:
        raise ConfigError(f"keep_previous must be 0 or more, not {keep_previous}")
    admin = with_dbname(server_dsn, "postgres")
    with connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [target]).fetchone()
        prev = _previous_name(target)
        if exists:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                    sql.Identifier(target)
                )
            )
            _terminate(conn, target)
        try:
            with conn.transaction():
                if exists:
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(target), sql.Identifier(prev)
                        )
                    )
                _terminate(conn, new)
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(new), sql.Identifier(target)
                    )
                )
        except Exception:
            if exists:  # the rename rolled back: let people in again
                conn.execute(
                    sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(
                        sql.Identifier(target)
                    )
                )
            raise
        if exists:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(
                    sql.Identifier(prev)
                )
            )
        return _prune(conn, target, keep_previous)


def _terminate(conn: psycopg.Connection, dbname: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        [dbname],
    )


def previous_copies(server_dsn: str, target: str) -> list[str]:
    """Names of the kept previous copies of ``target``, newest first."""
    with connect(with_dbname(server_dsn, "postgres"), autocommit=True) as conn:
        return _previous(conn, target)


def _previous(conn: psycopg.Connection, target: str) -> list[str]:
    prefix = _with_suffix(target, PREV_MARK + "0" * 20)[:-20]
    rows = conn.execute("SELECT datname FROM pg_database").fetchall()
    return sorted((r[0] for r in rows if r[0].startswith(prefix)), reverse=True)


def _prune(conn: psycopg.Connection, target: str, keep: int) -> list[str]:
    copies = _previous(conn, target)
    for name in copies[keep:]:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    return copies[:keep]

"""The last step of a replica: naming the new database and swapping it into the target's place.

A replica is loaded into ``<target>__ladder_<id>`` (:func:`new_database_name`), never into the
target itself. The swap renames the old target aside (``<target>__prev_<utc time>``) and the new
database into its place in ONE transaction, so a reader sees either the old target or the new
one; previous copies beyond ``keep_previous`` are dropped.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ladder.connectors.postgres import connect, with_dbname
from ladder.errors import ConfigError
from ladder.replica.guard import MARK, is_marked

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


def swap(
    server_dsn: str, new: str, target: str, keep_previous: int = 0, *, replace: bool = False
) -> list[str]:
    """Put database ``new`` in the place of ``target`` atomically; returns the previous copies kept.

    The old target (if any) becomes ``<target>__prev_<utc time>``; copies beyond the newest
    ``keep_previous`` are dropped. Connections to the old target are closed first. An old
    target without Ladder's mark (one made since :func:`~ladder.replica.guard.check_target`
    looked) is refused unless ``replace``.
    """
    if keep_previous < 0:
        raise ConfigError(f"keep_previous must be 0 or more, not {keep_previous}")
    admin = with_dbname(server_dsn, "postgres")
    with connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [target],
        ).fetchone()
        if exists and not replace and not is_marked(exists[0]):
            raise ConfigError(
                f"the target database {target!r} appeared during the copy and Ladder did not"
                f" make it (no '{MARK}' comment on it): pass --replace to replace it anyway"
            )
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

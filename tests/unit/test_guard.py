"""The source guard's pure parts: identities compared, read-only DSNs, plain same-text DSNs."""

from __future__ import annotations

import pytest

from ladder.errors import ConfigError
from ladder.replica.guard import Identity, is_marked, is_read_only, read_only_dsn, refuse_same_text


def ident(sysid: str | None, port: str = "5432", started: str = "t0", ddir: str | None = None):
    return Identity(sysid, port, started, ddir, "shop", 16384)


def test_clusters_are_told_apart_by_system_identifier_else_port_and_start_time() -> None:
    assert ident("1").same_cluster(ident("1", port="6543", started="t9"))  # a clone or standby
    assert not ident("1").same_cluster(ident("2"))
    assert ident(None).same_cluster(ident("1"))  # one side cannot read it: port + start
    assert not ident(None).same_cluster(ident(None, started="t1"))
    assert not ident(None, ddir="/a").same_cluster(ident(None, ddir="/b"))
    assert "system identifier 1" in ident("1").method
    assert "pg_monitor" in ident(None).method and "port 5432" in ident(None).method


def test_read_only_dsn_wins_over_what_the_dsn_said() -> None:
    dsn = "host=db port=5432 dbname=shop options='-c default_transaction_read_only=off -c x=1'"
    assert not is_read_only(dsn)
    ro = read_only_dsn(dsn)
    assert is_read_only(ro) and "x=1" in ro
    assert is_read_only(read_only_dsn("postgresql://u@db/shop?application_name=a"))


@pytest.mark.parametrize(
    "target",
    [
        "host=127.0.0.1 port=5432 dbname=shop",
        "host=localhost dbname=shop application_name=x connect_timeout=3",
        "postgresql://u@localhost:5432/shop?sslmode=disable",
    ],
)
def test_the_same_database_spelled_differently_is_refused_without_connecting(target: str) -> None:
    with pytest.raises(ConfigError, match="the source and the target name the same database"):
        refuse_same_text("postgresql://u:pw@127.0.0.1/shop", target)


def test_other_databases_pass_the_text_check_and_the_mark_is_read() -> None:
    refuse_same_text("host=127.0.0.1 dbname=shop", "host=127.0.0.1 dbname=shop_dev")
    refuse_same_text("host=db1 dbname=shop", "host=db2 dbname=shop")
    assert is_marked("ladder replica: copy of db:5432/shop, made 2026-01-01 00:00:00 UTC")
    assert not is_marked(None) and not is_marked("the accounting database")

"""The ``postgres_database`` lease kind against real PostgreSQL, with the ledger on SQLite and on
PostgreSQL (what a team runs)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict

from ladder.connectors.postgres import create_database, database_exists, drop_database
from ladder.leases import LeaseLedger, LeaseState, leased
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)
REPO = Path(__file__).resolve().parents[2]


def _sqlalchemy_url(dsn: str) -> str:
    p = conninfo_to_dict(dsn)
    return sa.URL.create(
        "postgresql+psycopg",
        username=p["user"],
        host=p["host"],
        port=int(p["port"]),
        database=p["dbname"],
    ).render_as_string()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'leases.db'}"
    else:
        url = _sqlalchemy_url(request.getfixturevalue("pg_db"))
    monkeypatch.setenv("LADDER_LEDGER_URL", url)
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[LeaseLedger]:
    led = LeaseLedger()
    yield led
    led.close()


@pytest.fixture
def dbname(pg_cluster: Cluster) -> Iterator[str]:
    name = f"leased_{uuid.uuid4().hex[:10]}"
    yield name
    drop_database(pg_cluster.dsn(), name)


def test_ledger_url_picks_the_backend(ledger: LeaseLedger, ledger_url: str) -> None:
    assert ledger.engine.url.get_backend_name() == ledger_url.split(":")[0].split("+")[0]
    if ledger_url.startswith("postgresql"):
        dsn = ledger.engine.url.render_as_string().replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT to_regclass('ladder_leases')").fetchone()
        assert row is not None and row[0] == "ladder_leases"


def test_database_lease_is_dropped_on_revert_and_revert_again_is_a_no_op(
    ledger: LeaseLedger, pg_cluster: Cluster, dbname: str
) -> None:
    server = pg_cluster.dsn()
    undo = {"server": server, "dbname": dbname}
    with leased(ledger, "postgres_database", f"database {dbname}", "run-1", HOUR, undo) as lease:
        create_database(server, dbname)
    assert ledger.get(lease.id).state is LeaseState.ACTIVE
    assert database_exists(server, dbname)

    done = ledger.revert(lease.id)
    assert done.state is LeaseState.REVERTED
    assert done.outcome == f"dropped database {dbname} on 127.0.0.1:{pg_cluster.port}"
    assert not database_exists(server, dbname)

    assert ledger.revert(lease.id) == done


def test_database_already_gone_is_a_successful_revert(
    ledger: LeaseLedger, pg_cluster: Cluster, dbname: str
) -> None:
    server = pg_cluster.dsn()
    lease = ledger.take(
        "postgres_database",
        f"database {dbname}",
        owner="run-1",
        ttl=HOUR,
        undo={"server": server, "dbname": dbname},
    )
    create_database(server, dbname)
    ledger.activate(lease.id)
    drop_database(server, dbname)  # someone cleaned up by hand

    done = ledger.revert(lease.id)
    assert done.state is LeaseState.REVERTED
    assert done.outcome == f"database {dbname} on 127.0.0.1:{pg_cluster.port} was already gone"


def test_server_secret_ref_is_resolved_at_revert_time_and_a_failure_can_be_retried(
    ledger: LeaseLedger, pg_cluster: Cluster, dbname: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = pg_cluster.dsn()
    monkeypatch.delenv("LADDER_TEST_DEBUG_DSN", raising=False)
    undo = {"server": {"env": "LADDER_TEST_DEBUG_DSN"}, "dbname": dbname}
    with leased(ledger, "postgres_database", f"database {dbname}", "run-1", HOUR, undo) as lease:
        create_database(server, dbname)

    failed = ledger.revert(lease.id)
    assert failed.state is LeaseState.REVERT_FAILED
    assert failed.outcome == "SecretError: environment variable LADDER_TEST_DEBUG_DSN is not set"
    assert database_exists(server, dbname)

    monkeypatch.setenv("LADDER_TEST_DEBUG_DSN", server)
    done = ledger.revert(lease.id)
    assert done.state is LeaseState.REVERTED
    assert done.attempts == 2
    assert (
        done.outcome == f"dropped database {dbname} on environment variable LADDER_TEST_DEBUG_DSN"
    )
    assert not database_exists(server, dbname)


def test_unreachable_server_is_a_failed_revert_without_the_password(
    ledger: LeaseLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_TEST_DEAD_DSN", "host=127.0.0.1 port=1 user=app password=hunter2")
    lease = ledger.take(
        "postgres_database",
        "database gone_server",
        owner="run-1",
        ttl=HOUR,
        undo={"server": {"env": "LADDER_TEST_DEAD_DSN"}, "dbname": "x"},
    )
    failed = ledger.revert(lease.id)
    assert failed.state is LeaseState.REVERT_FAILED
    assert (failed.outcome or "").startswith("PostgresError: cannot connect to")
    assert "hunter2" not in (failed.outcome or "")


def test_expired_and_owned_leases_are_selected_the_same_on_every_backend(
    ledger: LeaseLedger, pg_cluster: Cluster, dbname: str
) -> None:
    server = pg_cluster.dsn()
    undo = {"server": server, "dbname": dbname}
    short = ledger.take(
        "postgres_database", "short", owner="a", ttl=timedelta(minutes=5), undo=undo
    )
    long = ledger.take("postgres_database", "long", owner="b", ttl=timedelta(hours=3), undo=undo)

    now = datetime.now(UTC)
    assert ledger.revert_expired(now=now) == []
    assert [x.id for x in ledger.revert_expired(now=now + HOUR)] == [short.id]
    assert [x.id for x in ledger.revert_owner("b")] == [long.id]
    assert {x.state for x in ledger.list()} == {LeaseState.REVERTED}


def test_cli_lists_leases_as_a_real_process(
    ledger: LeaseLedger, ledger_url: str, pg_cluster: Cluster, dbname: str
) -> None:
    lease = ledger.take(
        "postgres_database",
        f"database {dbname}",
        owner="cli:root",
        ttl=HOUR,
        undo={"server": pg_cluster.dsn(), "dbname": dbname},
    )
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ladder"), "leases", "list", "--json", "--owner", "cli:root"],
        env={**os.environ, "LADDER_LEDGER_URL": ledger_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [row["id"] for row in json.loads(proc.stdout)] == [lease.id]


def test_a_failed_statement_says_what_failed_without_the_row_values(pg_db: str) -> None:
    from ladder.connectors.postgres import connect
    from ladder.errors import PostgresError

    with connect(pg_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE people (email text UNIQUE, card bigint)")
        conn.execute("INSERT INTO people VALUES ('ann.real@corp.com', 1)")
    with pytest.raises(PostgresError) as dup, connect(pg_db) as conn:
        conn.execute("INSERT INTO people VALUES ('ann.real@corp.com', 2)")
    assert "duplicate key value violates unique constraint" in str(dup.value)
    assert "ann.real" not in str(dup.value)  # the DETAIL line quotes the key
    with pytest.raises(PostgresError) as bad, connect(pg_db) as conn:
        conn.execute("INSERT INTO people VALUES ('x@example.org', '4111 1111 1111 1111')")
    assert "invalid input syntax for type bigint" in str(bad.value)
    assert "4111" not in str(bad.value)

"""Fixtures of the replica tests: the pseudonymization key, a lease ledger, a target database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ladder.connectors.postgres import connect, drop_database
from ladder.leases import LeaseLedger
from ladder.sandbox.cluster import Cluster

PSEUDONYM_KEY = "test-pseudonym-key-0123456789abcdef"


@pytest.fixture
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The key the shipped policies name (``LADDER_PSEUDONYM_KEY``), set for one test."""
    monkeypatch.setenv("LADDER_PSEUDONYM_KEY", PSEUDONYM_KEY)
    return PSEUDONYM_KEY


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LeaseLedger]:
    """A lease ledger of this test's own (SQLite)."""
    led = LeaseLedger(f"sqlite:///{tmp_path / 'leases.db'}")
    yield led
    led.close()


@pytest.fixture
def target(pg_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A target DSN whose database does not exist yet; it and its copies are dropped after."""
    name = "tgt_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    dsn = pg_cluster.dsn()
    yield pg_cluster.dsn(name)
    with connect(dsn, autocommit=True) as conn:
        dbs = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
    for db in dbs:
        if db.startswith(name):
            drop_database(dsn, db)

"""Fixtures shared by every test: real services on loopback, in temporary directories."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.flipper import flipper_api, flipper_tables  # noqa: F401 - fixtures
from servers.kubeapi import kubeapi  # noqa: F401 - fixture
from servers.nginx import front  # noqa: F401 - fixture
from servers.puma import (  # noqa: F401 - fixtures
    puma,
    puma_as_nobody,
    puma_cluster,
    puma_plain,
    shop_dsn,
)
from servers.sshd import sshd, sshd_module  # noqa: F401 - fixtures for every test module
from servers.standby import pg_standby  # noqa: F401 - a fixture for every test module

from ladder.sandbox.cluster import Cluster

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def server_dir(prefix: str) -> Path:
    """A directory for a PostgreSQL cluster, outside pytest's tmp_path: pytest chmods
    /tmp/pytest-of-<user> back to 0700 whenever a test asks for tmp_path, and the postgres user
    (the server never runs as root) must keep walking down to its data directory, or it PANICs."""
    return Path(tempfile.mkdtemp(prefix=f"ladder-test-{prefix}-"))


@pytest.fixture(scope="module")
def sandbox_dir() -> Iterator[Path]:
    """A directory for a real sandbox shared by a module's tests; `ladder sandbox down` and
    removed afterwards."""
    from ladder import sandbox

    parent = server_dir("sandbox")
    try:
        yield parent / "sandbox"
    finally:
        sandbox.down(parent / "sandbox")
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def session_ladder_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Ladder's state directory for session-scoped fixtures: never the user's own."""
    home = tmp_path_factory.mktemp("ladder-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LADDER_HOME", str(home))
        # a developer's own ledger, sandbox or databases are never the tests'
        for name in ("LEDGER_URL", "SANDBOX_DIR", "SOURCE_DSN", "TARGET_DSN"):
            mp.delenv(f"LADDER_{name}", raising=False)
        yield home


@pytest.fixture(autouse=True)
def ladder_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory of its own for every test (ledger, reports, sandbox), so no test
    touches ``~/.local/state/ladder`` or sees another test's leases."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LADDER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One real PostgreSQL cluster for the whole test session, on a free loopback port."""
    directory = server_dir("pg")
    cluster = Cluster(directory)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def pg_db(pg_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh empty database for one test; yields its DSN and drops it afterwards."""
    from ladder.connectors.postgres import create_database, drop_database

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    dsn = pg_cluster.dsn()
    drop_database(dsn, name)
    create_database(dsn, name)
    try:
        yield pg_cluster.dsn(name)
    finally:
        drop_database(dsn, name)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One real Prefect server (SQLite) for the whole test session; yields its API URL.

    Flow heartbeats are switched off: they add ~1 s to every flow run and test nothing here.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def auto_approve() -> Iterator[str]:
    """Every checkpoint of a flow run in this process approves itself, labelled ``tests``.

    Injected in code on purpose: no environment variable a worker could carry does this.
    """
    from tasks.checkpoints import automatic_approvals

    with automatic_approvals("tests"):
        yield "tests"

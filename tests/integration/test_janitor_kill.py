"""A run killed with SIGKILL leaves its lease behind; the janitor flow reverts it once expired."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ladder.connectors.postgres import create_database, database_exists, drop_database
from ladder.errors import LeaseError
from ladder.leases import LeaseLedger, LeaseState
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.integration

HOLDER = Path(__file__).with_name("_lease_holder.py")


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'leases.db'}"
    monkeypatch.setenv("LADDER_LEDGER_URL", url)
    return url


@pytest.fixture
def dbname(pg_cluster: Cluster) -> Iterator[str]:
    name = f"killed_{uuid.uuid4().hex[:10]}"
    yield name
    drop_database(pg_cluster.dsn(), name)


def _wait_until_expired(ledger: LeaseLedger, lease_id: str) -> None:
    while not ledger.get(lease_id).is_expired():
        time.sleep(0.1)


def _start_holder(
    server: str, dbname: str, ledger_url: str, api_url: str, tmp_path: Path
) -> tuple[subprocess.Popen[str], str]:
    """Start the holder flow in its own process; returns it and its lease id once READY."""
    with (tmp_path / "holder.err").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(HOLDER), server, dbname, "2"],
            env={**os.environ, "LADDER_LEDGER_URL": ledger_url, "PREFECT_API_URL": api_url},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("READY "):
            return proc, line.split()[1]
    proc.wait()
    raise AssertionError(
        f"holder exited {proc.returncode}:\n{(tmp_path / 'holder.err').read_text()}"
    )


def test_janitor_reverts_the_lease_of_a_killed_run(
    prefect_server: str, pg_cluster: Cluster, ledger_url: str, dbname: str, tmp_path: Path
) -> None:
    from flows.janitor import janitor

    server = pg_cluster.dsn()
    proc, lease_id = _start_holder(server, dbname, ledger_url, prefect_server, tmp_path)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    ledger = LeaseLedger()
    lease = ledger.get(lease_id)
    assert lease.state is LeaseState.ACTIVE
    assert lease.kind == "postgres_database" and lease.undo["dbname"] == dbname
    assert database_exists(server, dbname)

    _wait_until_expired(ledger, lease_id)
    summary = janitor()

    assert summary["reverted_ids"] == [lease_id]
    assert summary["failed"] == 0
    assert not database_exists(server, dbname)
    lease = ledger.get(lease_id)
    assert lease.state is LeaseState.REVERTED
    assert lease.outcome == f"dropped database {dbname} on 127.0.0.1:{pg_cluster.port}"
    assert _artifact_markdown().count(lease_id) == 1
    ledger.close()


def test_janitor_tries_every_lease_and_fails_when_one_cannot_be_reverted(
    prefect_server: str,
    pg_cluster: Cluster,
    ledger_url: str,
    dbname: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.janitor import janitor

    server = pg_cluster.dsn()
    monkeypatch.delenv("LADDER_TEST_UNSET_DSN", raising=False)
    ledger = LeaseLedger()
    broken = ledger.take(
        "postgres_database",
        "database elsewhere",
        owner="run-x",
        ttl=timedelta(milliseconds=1),
        undo={"server": {"env": "LADDER_TEST_UNSET_DSN"}, "dbname": "elsewhere"},
    )
    good = ledger.take(
        "postgres_database",
        f"database {dbname}",
        owner="run-x",
        ttl=timedelta(milliseconds=1),
        undo={"server": server, "dbname": dbname},
    )
    create_database(server, dbname)
    ledger.activate(good.id)
    _wait_until_expired(ledger, good.id)

    state = janitor(return_state=True)

    assert state.is_failed()
    with pytest.raises(
        LeaseError, match=f"1 expired lease\\(s\\) could not be reverted: {broken.id}"
    ):
        state.result()
    assert ledger.get(good.id).state is LeaseState.REVERTED
    assert not database_exists(server, dbname)
    assert ledger.get(broken.id).state is LeaseState.REVERT_FAILED
    markdown = _artifact_markdown()
    assert broken.id in markdown and "LADDER_TEST_UNSET_DSN is not set" in markdown
    ledger.close()


def _artifact_markdown() -> str:
    """The latest 'janitor-reverts' artifact on the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["janitor-reverts"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert artifacts, "the janitor published no 'janitor-reverts' artifact"
    return str(artifacts[0].data)

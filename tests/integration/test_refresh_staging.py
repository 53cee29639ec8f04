"""refresh-staging on a real Prefect server: production copied whole into staging, swapped in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ladder.connectors.postgres import connect, create_database, drop_database
from ladder.errors import ConfigError
from ladder.replica.swap import previous_copies
from ladder.sandbox.cluster import Cluster
from ladder.sandbox.seed import seed_shop

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "runbooks" / "policies" / "shop.yaml"


@pytest.fixture
def production(pg_cluster: Cluster) -> Iterator[str]:
    dsn = pg_cluster.dsn()
    drop_database(dsn, "refresh_prod")
    create_database(dsn, "refresh_prod")
    seed_shop(pg_cluster.dsn("refresh_prod"), users=120, seed=3)
    yield pg_cluster.dsn("refresh_prod")
    drop_database(dsn, "refresh_prod")


def _runbook(tmp_path: Path, env: dict, policy: str | None = str(POLICY)) -> Path:
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env))
    replica = {"seeds": ["users: id = ANY(:user_ids)"]}
    if policy:
        replica["policy"] = policy
    book = {"name": "refresh-test", "environment": "env.yaml", "rungs": {"local_replica": replica}}
    path = tmp_path / "runbook.yaml"
    path.write_text(yaml.safe_dump(book))
    return path


def _dbs(dsn: str) -> list[str]:
    with connect(dsn, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database")]


def test_refresh_staging_swaps_keeps_previous_and_reports_throughput(
    prefect_server: str,
    pg_cluster: Cluster,
    production: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.refresh_staging import refresh_staging

    monkeypatch.setenv("LADDER_PSEUDONYM_KEY", "refresh-test-key-0123456789")
    monkeypatch.setenv("LADDER_HOME", str(tmp_path))
    staging = pg_cluster.dsn("refresh_staging_db")
    runbook = _runbook(
        tmp_path,
        {
            "name": "refresh-env",
            "production_db": {"dsn": production},
            "staging": {"database": {"dsn": staging}},
        },
    )
    try:
        first = refresh_staging(runbook=str(runbook), keep_previous=1)
        with connect(staging) as conn:
            assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 120
            conn.execute("CREATE TABLE marker (x int)")
        second = refresh_staging(runbook=str(runbook), keep_previous=1)
        assert first["rows"] == second["rows"] and second["rows"]["public.order_items"] > 0
        with connect(staging) as conn:
            assert conn.execute("SELECT to_regclass('public.marker')").fetchone()[0] is None
        assert second["previous"] == previous_copies(staging, "refresh_staging_db")
        assert len(second["previous"]) == 1
        with get_client(sync_client=True) as client:
            arts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["refresh-staging-refresh-env"])
                )
            )
        assert arts and "rows_per_s" in str(arts[0].data)
        assert not [d for d in _dbs(pg_cluster.dsn()) if "__ladder_" in d]
    finally:
        for db in _dbs(pg_cluster.dsn()):
            if db.startswith("refresh_staging_db"):
                drop_database(pg_cluster.dsn(), db)


def test_a_staging_database_ladder_did_not_make_is_replaced_only_with_replace(
    prefect_server: str,
    pg_cluster: Cluster,
    production: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.refresh_staging import refresh_staging

    monkeypatch.setenv("LADDER_PSEUDONYM_KEY", "refresh-test-key-0123456789")
    monkeypatch.setenv("LADDER_HOME", str(tmp_path))
    create_database(pg_cluster.dsn(), "refresh_foreign")
    staging = pg_cluster.dsn("refresh_foreign")
    with connect(staging) as conn:
        conn.execute("CREATE TABLE hand_made (x int)")
    env = {
        "name": "e",
        "production_db": {"dsn": production},
        "staging": {"database": {"dsn": staging}},
    }
    runbook = str(_runbook(tmp_path, env))
    try:
        with pytest.raises(ConfigError, match=r"exists and Ladder did not make it.*--replace"):
            refresh_staging(runbook=runbook)
        with connect(staging) as conn:
            assert (
                conn.execute("SELECT to_regclass('public.hand_made')").fetchone()[0] == "hand_made"
            )
        refresh_staging(runbook=runbook, replace=True, keep_previous=0)
        refresh_staging(runbook=runbook, keep_previous=0)  # Ladder's now: no replace needed
        with connect(staging) as conn:
            assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 120
        # staging that is production is refused whatever replace says
        same = {**env, "staging": {"database": {"dsn": production}}}
        with pytest.raises(ConfigError, match="same database"):
            refresh_staging(runbook=str(_runbook(tmp_path, same)), replace=True)
    finally:
        for db in _dbs(pg_cluster.dsn()):
            if db.startswith("refresh_foreign"):
                drop_database(pg_cluster.dsn(), db)


def test_refresh_staging_fails_clearly_without_staging_or_policy(
    prefect_server: str, production: str, tmp_path: Path
) -> None:
    from flows.refresh_staging import refresh_staging

    no_staging = _runbook(tmp_path, {"name": "bare", "production_db": {"dsn": production}})
    with pytest.raises(ConfigError, match="has no staging"):
        refresh_staging(runbook=str(no_staging))
    env = {
        "name": "bare",
        "production_db": {"dsn": production},
        "staging": {"database": {"dsn": production}},
    }
    with pytest.raises(ConfigError, match="policy"):
        refresh_staging(runbook=str(_runbook(tmp_path, env, policy=None)))


def test_local_replica_rung_leases_the_replica_to_the_run(
    prefect_server: str,
    pg_cluster: Cluster,
    production: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from ladder.config import DatabaseConfig, Environment
    from ladder.incident import Incident
    from ladder.leases import LeaseLedger
    from ladder.rungs import ClimbState
    from ladder.rungs.local_replica import LocalReplicaResult, LocalReplicaSettings, run
    from tasks.publish import PrefectPublisher

    monkeypatch.setenv("LADDER_PSEUDONYM_KEY", "task-test-key-0123456789abcdef")
    monkeypatch.setenv("LADDER_HOME", str(tmp_path))
    env = Environment(name="prod", production_db=DatabaseConfig(dsn=production))
    incident = Incident(
        id="INC-7", title="checkout 500s", started_at=datetime.now(UTC), params={"user_ids": [1, 2]}
    )
    settings = LocalReplicaSettings(
        policy=str(POLICY),
        seeds=["users: id = ANY(:user_ids)"],
        whole_tables=["flipper_features", "flipper_gates"],
    )
    owner = "run-under-test"

    @flow
    def climb() -> LocalReplicaResult:
        state = ClimbState(
            incident, env, tmp_path / "rb.yaml", owner, publish=PrefectPublisher(incident.id)
        )
        return run(state, settings)

    result = climb()
    assert result.status == "done", result.reason
    assert result.rows["public.users"] == 2 and result.validation and result.validation.passed
    assert "password" not in result.dsn
    (held,) = result.held
    assert held.lease_id and result.dsn in held.use
    with connect(result.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2
    with get_client(sync_client=True) as client:
        keys = ["incident-inc-7-replica-plan", "incident-inc-7-replica-validation"]
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
        )
        assert {a.key for a in arts} == set(keys)
    assert result.database in _dbs(pg_cluster.dsn())
    # the run reverts its leases at its end: the replica database goes away
    LeaseLedger().revert_owner(owner)
    assert result.database not in _dbs(pg_cluster.dsn())
    assert not [d for d in _dbs(pg_cluster.dsn()) if "__ladder_" in d]

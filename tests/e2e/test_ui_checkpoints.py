"""The Prefect UI path, end to end: a real server, `ladder serve` as the runner, a run created
through the API the way the UI creates it, and its checkpoint answered through the API."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.flow_runs import resume_flow_run
from uiruns import Runs

from ladder.connectors.postgres import create_database, database_exists
from ladder.leases import Lease, LeaseLedger
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.e2e


def _lease_a_database(ledger: LeaseLedger, run_id: UUID, cluster: Cluster, name: str) -> Lease:
    """Create a database the way a rung does: leased to the run before it exists."""
    lease = ledger.take(
        "postgres_database",
        name,
        owner=str(run_id),
        ttl=timedelta(hours=1),
        undo={"server": cluster.dsn(), "dbname": name},
    )
    create_database(cluster.dsn(), name)
    ledger.activate(lease.id)
    return lease


def test_approval_from_the_api_completes_the_run(
    served: dict[str, str], runbook_file: Path, runs: Runs
) -> None:
    run_id = runs.start(runbook_file)
    assert runs.wait_state(run_id, {"PAUSED"}) == "PAUSED"
    # an input without the decision is refused by the server and the run stays paused
    with pytest.raises(RuntimeError):
        resume_flow_run(run_id, run_input={"approver": "ana"})
    resume_flow_run(
        run_id,
        run_input={
            "decision": "approve",
            "approver": "ana",
            "reason": "logs are safe to read",
            "baseline_minutes": 45,
            "samples": 1,
        },
    )
    assert runs.wait_state(run_id, {"COMPLETED"}) == "COMPLETED"
    report = runs.report(served["LADDER_HOME"])
    (decision,) = report["decisions"]
    assert decision["decision"] == "approve" and decision["approver"] == "ana"
    assert decision["reason"] == "logs are safe to read"
    assert decision["settings"]["baseline_minutes"] == 45
    evidence = report["rungs"][0]
    assert evidence["status"] == "done"
    assert "NoMethodError" in evidence["summary"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["incident-e2e-checkout-report"])
            ),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
        )
    assert len(artifacts) == 1
    assert "| evidence | approve | ana |" in artifacts[0].data


def test_stop_at_a_checkpoint_reverts_the_runs_leases(
    served: dict[str, str], runbook_file: Path, pg_cluster: Cluster, runs: Runs
) -> None:
    run_id = runs.start(runbook_file)
    runs.wait_state(run_id, {"PAUSED"})
    # what an earlier rung of this run changed: a database, leased to the run
    ledger = LeaseLedger(served["LADDER_LEDGER_URL"])
    lease = _lease_a_database(ledger, run_id, pg_cluster, "e2e_replica")
    resume_flow_run(run_id, run_input={"decision": "stop", "approver": "bo", "reason": "enough"})
    assert runs.wait_state(run_id, {"COMPLETED"}) == "COMPLETED"
    assert not database_exists(pg_cluster.dsn(), "e2e_replica")
    assert ledger.get(lease.id).state == "reverted"
    report = runs.report(served["LADDER_HOME"])
    assert report["outcome"] == "stopped"
    assert report["decisions"][0]["decision"] == "stop"
    assert report["rungs"][0]["status"] == "skipped"
    assert "stopped by bo" in report["rungs"][0]["reason"]
    assert [lease["state"] for lease in report["leases"]] == ["reverted"]


def test_cancelling_a_paused_run_reverts_its_leases(
    served: dict[str, str], runbook_file: Path, pg_cluster: Cluster, runs: Runs
) -> None:
    from prefect.states import Cancelling

    run_id = runs.start(runbook_file)
    runs.wait_state(run_id, {"PAUSED"})
    ledger = LeaseLedger(served["LADDER_LEDGER_URL"])
    lease = _lease_a_database(ledger, run_id, pg_cluster, "e2e_cancelled")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelling(), force=True)
    deadline = time.monotonic() + 60
    while ledger.get(lease.id).state != "reverted" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ledger.get(lease.id).state == "reverted"
    assert not database_exists(pg_cluster.dsn(), "e2e_cancelled")
    report = runs.report(served["LADDER_HOME"])
    assert report["outcome"] == "cancelled"
    assert [lease["target"] for lease in report["leases"]] == ["e2e_cancelled"]

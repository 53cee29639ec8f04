"""The Prefect UI path, end to end: a real server, `ladder serve` as the runner, a run created
through the API the way the UI creates it, and its checkpoint answered through the API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
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
from prefect_runs import Runs

from ladder.connectors.postgres import create_database, database_exists
from ladder.leases import Lease, LeaseLedger
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.e2e

WINDOW_END = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
WINDOW_START = WINDOW_END - timedelta(minutes=15)


def _lograge_line(t: datetime, status: int, user: int, **extra: object) -> str:
    row = {
        "time": t.isoformat().replace("+00:00", "Z"),
        "method": "POST",
        "path": "/checkout",
        "format": "json",
        "controller": "CheckoutController",
        "action": "create",
        "status": status,
        "duration": 120.0 if status == 200 else 480.0,
        "view": 1.0,
        "db": 3.0,
        "request_id": f"req-{t.timestamp():.0f}-{user}",
        "user_id": user,
        "remote_ip": "203.0.113.9",
        "params": {"order": {"email": f"user{user}@example.org"}},
        **extra,
    }
    return json.dumps(row)


@pytest.fixture
def runbook_file(tmp_path: Path) -> Path:
    """A runbook whose evidence rung needs approval, over a small lograge log with an incident."""
    lines = []
    for minute in range(0, 75, 3):
        t = WINDOW_START - timedelta(minutes=60) + timedelta(minutes=minute)
        lines.append(_lograge_line(t, 200, 7))
    for minute in range(0, 15, 2):
        t = WINDOW_START + timedelta(minutes=minute)
        lines.append(
            _lograge_line(
                t,
                500,
                42,
                exception=["NoMethodError", "undefined method `amount_cents' for nil"],
                exception_backtrace=["app/models/payment.rb:42:in `capture!'"],
            )
        )
    log = tmp_path / "logs" / "production.log"
    log.parent.mkdir()
    log.write_text("\n".join(lines) + "\n")
    (tmp_path / "env.yaml").write_text(f"name: e2e\nlogs:\n  - path: {log}\n")
    path = tmp_path / "runbook.yaml"
    path.write_text(
        "name: e2e\nenvironment: env.yaml\ncheckpoint_timeout_minutes: 5\n"
        "rungs:\n  evidence:\n    approval: true\n    samples: 1\n"
    )
    return path


def _start_run(runs: Runs, runbook_file: Path) -> UUID:
    incident = {
        "id": "e2e-checkout",
        "title": "Checkout 500s",
        "started_at": WINDOW_START.isoformat(),
        "ended_at": WINDOW_END.isoformat(),
    }
    return runs.start(runbook=str(runbook_file), incident=incident)


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


def _report(env: dict[str, str]) -> dict:
    (path,) = (Path(env["LADDER_HOME"]) / "reports").glob("e2e-checkout-*.json")
    return json.loads(path.read_text())


def test_approval_from_the_api_completes_the_run(
    served: dict[str, str], runs: Runs, runbook_file: Path
) -> None:
    run_id = _start_run(runs, runbook_file)
    assert runs.wait(run_id, {"PAUSED"}) == "PAUSED"
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
    assert runs.wait(run_id, {"COMPLETED"}) == "COMPLETED"
    report = _report(served)
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
    served: dict[str, str], runs: Runs, runbook_file: Path, pg_cluster: Cluster
) -> None:
    run_id = _start_run(runs, runbook_file)
    runs.wait(run_id, {"PAUSED"})
    # what an earlier rung of this run changed: a database, leased to the run
    ledger = LeaseLedger(served["LADDER_LEDGER_URL"])
    lease = _lease_a_database(ledger, run_id, pg_cluster, "e2e_replica")
    resume_flow_run(run_id, run_input={"decision": "stop", "approver": "bo", "reason": "enough"})
    assert runs.wait(run_id, {"COMPLETED"}) == "COMPLETED"
    assert not database_exists(pg_cluster.dsn(), "e2e_replica")
    assert ledger.get(lease.id).state == "reverted"
    report = _report(served)
    assert report["outcome"] == "stopped"
    assert report["decisions"][0]["decision"] == "stop"
    assert report["rungs"][0]["status"] == "skipped"
    assert "stopped by bo" in report["rungs"][0]["reason"]
    assert [lease["state"] for lease in report["leases"]] == ["reverted"]


def test_cancelling_a_paused_run_reverts_its_leases(
    served: dict[str, str], runs: Runs, runbook_file: Path, pg_cluster: Cluster
) -> None:
    from prefect.states import Cancelling

    run_id = _start_run(runs, runbook_file)
    runs.wait(run_id, {"PAUSED"})
    ledger = LeaseLedger(served["LADDER_LEDGER_URL"])
    lease = _lease_a_database(ledger, run_id, pg_cluster, "e2e_cancelled")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelling(), force=True)
    deadline = time.monotonic() + 60
    while ledger.get(lease.id).state != "reverted" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ledger.get(lease.id).state == "reverted"
    assert not database_exists(pg_cluster.dsn(), "e2e_cancelled")
    report = _report(served)
    assert report["outcome"] == "cancelled"
    assert [lease["target"] for lease in report["leases"]] == ["e2e_cancelled"]

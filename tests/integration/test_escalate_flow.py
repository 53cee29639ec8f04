"""The escalate flow in-process against a real Prefect server: rung order, statuses, timeouts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from prefect import get_client

from ladder.errors import CheckpointError
from ladder.incident import Incident
from ladder.sandbox.cluster import Cluster

WINDOW_END = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
WINDOW_START = WINDOW_END - timedelta(minutes=10)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LADDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LADDER_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("LADDER_CHECKPOINT_POLL_SECONDS", "1")
    return tmp_path


def _runbook(
    tmp: Path,
    rungs: str,
    *,
    timeout_minutes: float = 5,
    until: str = "",
    flipper_dsn: str = "host=127.0.0.1 dbname=nowhere",
) -> Path:
    log = tmp / "production.log"
    rows = []
    for i in range(20):
        t = WINDOW_START - timedelta(minutes=30) + timedelta(minutes=i)
        rows.append(
            {
                "time": t.isoformat(),
                "method": "GET",
                "path": "/orders",
                "controller": "OrdersController",
                "action": "index",
                "status": 200,
                "duration": 50.0,
                "request_id": f"b{i}",
                "user_id": 1,
                "params": {},
            }
        )
    for i in range(6):
        t = WINDOW_START + timedelta(minutes=i)
        rows.append(
            {
                "time": t.isoformat(),
                "method": "POST",
                "path": "/checkout",
                "controller": "CheckoutController",
                "action": "create",
                "status": 500,
                "duration": 300.0,
                "request_id": f"e{i}",
                "user_id": 42,
                "params": {"email": "victim@example.org"},
                "exception": ["NoMethodError", f"undefined method `x' for nil (id {i})"],
                "exception_backtrace": ["app/models/payment.rb:42:in `capture!'"],
            }
        )
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp / "env.yaml").write_text(
        f"name: flowtest\nlogs:\n  - path: {log}\n"
        f"flipper:\n  database:\n    dsn: {flipper_dsn}\n"
    )
    path = tmp / "rb.yaml"
    path.write_text(
        f"name: flowtest\nenvironment: env.yaml\ncheckpoint_timeout_minutes: {timeout_minutes}\n"
        + (f"until: {until}\n" if until else "")
        + "rungs:\n"
        + rungs
    )
    return path


INCIDENT = Incident(
    id="flow-1", title="Checkout 500s", started_at=WINDOW_START, ended_at=WINDOW_END
)


def test_climbs_in_order_and_reports_every_rung(
    prefect_server: str, home: Path, auto_approve: str, pg_db: str
) -> None:
    from flows.escalate import escalate
    from ladder.connectors.postgres import connect
    from ladder.sandbox.shop_schema import create_tables

    with connect(pg_db) as conn:
        create_tables(conn)
    flags = "  production_flags: {collect_seconds: 0}\n"
    rb = _runbook(home, "  evidence: {}\n" + flags, flipper_dsn=pg_db)
    result = escalate(runbook=str(rb), incident=INCIDENT)
    report = result["report"]
    statuses = {r["name"]: r["status"] for r in report["rungs"]}
    assert statuses == {
        "evidence": "done",
        "local_replica": "skipped",
        "tunnel": "skipped",
        "staging_trace": "skipped",
        "production_flags": "done",
        "replica_app": "skipped",
    }
    flags = report["rungs"][4]["data"]["gates"]  # for rung 1's affected user, reverted at the end
    assert [(g["feature"], g["actor"]) for g in flags] == [("debug_mode", "User;42")]
    assert [(lease["kind"], lease["state"]) for lease in report["leases"]] == [
        ("flipper_actor_gate", "reverted")
    ]
    assert [r["number"] for r in report["rungs"]] == [1, 2, 3, 4, 5, 6]
    assert report["approvals"] == "automatic (tests)"
    assert report["rungs"][0]["data"]["affected_users"] == ["42"]
    md = Path(result["report_path"]).read_text()
    assert "victim@example.org" not in md
    assert "NoMethodError" in md


def test_until_and_absent_rungs_are_skipped_with_reasons(prefect_server: str, home: Path) -> None:
    from flows.escalate import escalate

    rb = _runbook(home, "  evidence: {}\n  production_flags: {}\n", until="evidence")
    report = escalate(runbook=str(rb), incident=INCIDENT)["report"]
    reasons = {r["name"]: r["reason"] for r in report["rungs"]}
    assert reasons["local_replica"] == "not in the runbook"
    assert reasons["production_flags"] == "above until=evidence"


def test_approve_all_is_refused_outside_the_sandbox_whatever_the_environment_says(
    prefect_server: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.escalate import escalate

    # the variable that used to switch approvals off on any worker carrying it does nothing now
    monkeypatch.setenv("LADDER_TEST_MODE", "1")
    rb = _runbook(home, "  evidence: {}\n")
    with pytest.raises(CheckpointError, match="approve_all is allowed only on the sandbox"):
        escalate(runbook=str(rb), incident=INCIDENT, approve_all=True)


def test_a_checkpoint_that_times_out_stops_the_run(prefect_server: str, home: Path) -> None:
    from flows.escalate import escalate

    rb = _runbook(home, "  evidence:\n    approval: true\n", timeout_minutes=0.05)
    result = escalate(runbook=str(rb), incident=INCIDENT)
    report = result["report"]
    assert report["outcome"] == "stopped"
    (decision,) = report["decisions"]
    assert decision["decision"] == "stop" and decision["timed_out"]
    assert report["rungs"][0]["status"] == "skipped"
    assert "no answer within 3 s" in report["rungs"][0]["reason"]
    # a stop is an answer: the run ends Completed, not Failed for want of a resume
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(report["flow_run_id"])).state
    assert state is not None and state.type.value == "COMPLETED", state


@pytest.mark.parametrize("hook", ["on_cancellation", "on_crashed"])
def test_the_runner_s_hooks_revert_a_killed_run_s_leases_and_leave_a_report(
    prefect_server: str, home: Path, pg_cluster: Cluster, hook: str
) -> None:
    """A run that does not stop on SIGTERM is SIGKILLed: then only the runner's hooks, called
    the way Prefect's runner calls them, are left to give back what the run held."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.runner._hook_runner import _run_hooks
    from prefect.states import Cancelling, Crashed

    from flows.escalate import escalate
    from ladder.connectors.postgres import create_database, database_exists
    from ladder.leases import LeaseLedger, LeaseState
    from tasks.report import report_stem

    run_id = uuid4()
    server, dbname = pg_cluster.dsn(), f"hooked_{run_id.hex[:10]}"
    ledger = LeaseLedger()
    lease = ledger.take(
        "postgres_database", f"database {dbname}", owner=str(run_id), ttl=timedelta(hours=1),
        undo={"server": server, "dbname": dbname},
    )  # fmt: skip
    create_database(server, dbname)
    ledger.activate(lease.id)
    rb = _runbook(home, "  evidence: {}\n")
    params = {"runbook": str(rb), "incident": INCIDENT.model_dump(mode="json")}
    run = FlowRun(id=run_id, flow_id=uuid4(), name="killed-run", parameters=params)
    hooks = getattr(escalate, f"{hook}_hooks")
    state = Cancelling() if hook == "on_cancellation" else Crashed(message="worker died")

    asyncio.run(_run_hooks(hooks, run, escalate, state))

    assert ledger.get(lease.id).state is LeaseState.REVERTED
    assert not database_exists(server, dbname)
    report = json.loads(report_stem(INCIDENT.id, str(run_id)).with_suffix(".json").read_text())
    assert report["outcome"] == ("cancelled" if hook == "on_cancellation" else "failed")
    assert [(x["kind"], x["state"]) for x in report["leases"]] == [
        ("postgres_database", "reverted")
    ]

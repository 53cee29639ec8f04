"""The hold, end to end: `escalate-incident` with `runbooks/demo-approvals.yaml` on the real
sandbox, served by `ladder serve`, rung 2 approved through the API (rung 3, the tunnel, skipped or
approved), then what they made held for the engineer until they release it, its TTL passes, or
the run is cancelled."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run
from uiruns import Runs

from cli.entrypoints import PROJECT_ROOT
from ladder.leases import Lease, LeaseLedger

pytestmark = pytest.mark.e2e

RUNBOOK = str(PROJECT_ROOT / "runbooks" / "demo-approvals.yaml")


@pytest.fixture(scope="module")
def sandbox(sandbox_dir: Path) -> Path:
    """A small real sandbox (its own PostgreSQL cluster), shared by this module's runs."""
    up = [sys.executable, "-m", "cli", "sandbox", "up", "--dir", str(sandbox_dir), "--users", "300"]
    subprocess.run(up, check=True, capture_output=True, timeout=300)
    return sandbox_dir


@pytest.fixture
def serve_env_extra(sandbox: Path) -> dict[str, str]:
    return {"LADDER_SANDBOX_DIR": str(sandbox)}


def _wait_pause(runs: Runs, run_id: UUID, key: str, timeout: float = 180) -> None:
    """Wait until the run is paused at a pause whose key starts with ``key``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs.wait_state(run_id, {"PAUSED"})
        if runs.pause_key(run_id).startswith(key):
            return
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} never paused at {key}")


def _approve_replica(runs: Runs, run_id: UUID, tunnel: str = "skip", **settings: Any) -> None:
    """Approve rung 2 (with ``settings``), then answer rung 3's checkpoint with ``tunnel``."""
    runs.wait_state(run_id, {"PAUSED"})
    assert runs.pause_key(run_id) == "checkpoint-local-replica"
    resume_flow_run(
        run_id,
        run_input={
            "decision": "approve",
            "approver": "ana",
            "reason": "need the rows behind the 500s",
            **settings,
        },
    )
    _wait_pause(runs, run_id, "checkpoint-tunnel")
    resume_flow_run(run_id, run_input={"decision": tunnel, "approver": "ana"})


def _skip_to_hold(runs: Runs, run_id: UUID, timeout: float = 300) -> None:
    """Skip the checkpoints of the rungs above 3 (4, 5 and 6 wait for approval too) until the
    run pauses at the hold."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs.wait_state(run_id, {"PAUSED"})
        key = runs.pause_key(run_id)
        if key.startswith("hold-"):
            return
        if key.startswith("checkpoint-") and key != "checkpoint-tunnel":
            resume_flow_run(run_id, run_input={"decision": "skip", "approver": "ana"})
            while time.monotonic() < deadline and runs.paused_at(run_id) == key:
                time.sleep(0.5)  # until the run has left this checkpoint
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} never paused at the hold")


def _held(runs: Runs, run_id: UUID, served: dict[str, str]) -> dict[str, Lease]:
    """Wait for the hold (skipping rungs 4 to 6); the run's open leases by kind."""
    _skip_to_hold(runs, run_id)
    ledger = LeaseLedger(served["LADDER_LEDGER_URL"])
    return {x.kind: x for x in ledger.list(owner=str(run_id)) if x.is_open}


def _held_replica(runs: Runs, run_id: UUID, served: dict[str, str]) -> Lease:
    """Wait for the hold; the run's one open lease: the replica database it holds."""
    held = _held(runs, run_id, served)
    assert list(held) == ["postgres_database"], held
    return held["postgres_database"]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _replica_dsn(lease: Lease) -> str:
    info = psycopg.conninfo.conninfo_to_dict(lease.undo["server"])
    info["dbname"] = lease.undo["dbname"]
    return psycopg.conninfo.make_conninfo(**info)


def _exists(lease: Lease) -> bool:
    with psycopg.connect(lease.undo["server"], autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (lease.undo["dbname"],)
        ).fetchone()
    return row is not None


def _report(served: dict[str, str]) -> dict[str, Any]:
    (path,) = (Path(served["LADDER_HOME"]) / "reports").glob("*.json")
    return json.loads(path.read_text())


#: the checkpoints of rungs 4 and 6, which these tests skip (see _skip_to_hold)
SKIPPED = [
    ("staging_trace", "skip", "ana"),
    ("production_flags", "skip", "ana"),
    ("replica_app", "skip", "ana"),
]


def _decisions(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(d["rung"], d["decision"], d["approver"]) for d in report["decisions"]]


def test_the_replica_is_held_until_the_engineer_releases_it(
    served: dict[str, str], runs: Runs
) -> None:
    run_id = runs.start(RUNBOOK, incident=None)
    _approve_replica(runs, run_id, tunnel="approve", child_depth=1)
    held = _held(runs, run_id, served)
    lease, tunnel = held["postgres_database"], held["ssh_tunnel"]
    # while the run holds it, the tunnel reaches the sandbox's standby, read-only
    port = tunnel.undo["local_port"]
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=shop_production") as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    # while the run holds it, the replica is there and answers queries, sanitized
    with psycopg.connect(_replica_dsn(lease)) as conn:
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        emails = [r[0] for r in conn.execute("SELECT email FROM users LIMIT 20")]
    assert users > 0
    assert all(
        e.endswith((".example", ".test", "example.com", "example.org", "example.net"))
        for e in emails
    ), emails
    runs.wait_log(run_id, "waiting for approval at local_replica until ")
    runs.wait_log(run_id, "holding 2 item(s) for the engineer until ")
    # the form asks for what the issue names, and refuses a TTL beyond the runbook's maximum
    with pytest.raises(RuntimeError):
        resume_flow_run(
            run_id,
            run_input={"decision": "extend", "approver": "ana", "ttl_minutes": 100_000},
        )
    assert runs.pause_key(run_id) == "hold-1"
    resume_flow_run(
        run_id, run_input={"decision": "release", "approver": "ana", "reason": "found it"}
    )
    assert runs.wait_state(run_id, {"COMPLETED"}) == "COMPLETED"
    assert not _exists(lease)
    assert not _accepts(port)
    report = _report(served)
    assert report["approvals"] == "manual"
    assert _decisions(report) == [
        ("local_replica", "approve", "ana"),
        ("tunnel", "approve", "ana"),
        *SKIPPED,
        ("hold", "release", "ana"),
    ]
    assert report["decisions"][0]["settings"]["child_depth"] == 1
    assert report["decisions"][-1]["reason"] == "found it"  # the hold's release
    assert report["hold"].startswith("released at ") and "ana released it" in report["hold"]
    assert {x["state"] for x in report["leases"]} == {"reverted"}


def test_an_extended_hold_releases_when_its_new_ttl_passes(
    served: dict[str, str], runs: Runs
) -> None:
    run_id = runs.start(RUNBOOK, incident=None)
    _approve_replica(runs, run_id)
    lease = _held_replica(runs, run_id, served)
    resume_flow_run(
        run_id,
        run_input={
            "decision": "extend",
            "approver": "bo",
            "reason": "one more query",
            "ttl_minutes": 1,
        },
    )
    # the ledger knows the new expiry, so the janitor leaves the replica alone until then
    ledger = LeaseLedger(served["LADDER_LEDGER_URL"])
    deadline = time.monotonic() + 60
    while ledger.get(lease.id).expires_at >= lease.expires_at and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ledger.get(lease.id).expires_at < lease.expires_at
    assert _exists(lease)
    # nobody answers the second hold: it times out at the new TTL and releases
    assert runs.wait_state(run_id, {"COMPLETED"}, timeout=240) == "COMPLETED"
    assert not _exists(lease)
    report = _report(served)
    assert _decisions(report) == [
        ("local_replica", "approve", "ana"),
        ("tunnel", "skip", "ana"),
        *SKIPPED,
        ("hold", "extend", "bo"),
        ("hold", "release", "nobody"),
    ]
    assert report["decisions"][-2]["settings"] == {"ttl_minutes": 1}
    assert report["decisions"][-1]["timed_out"] is True
    assert "its TTL passed" in report["hold"]


def test_cancelling_the_run_during_the_hold_releases_the_replica_and_the_tunnel(
    served: dict[str, str], runs: Runs
) -> None:
    from prefect.states import Cancelling

    run_id = runs.start(RUNBOOK, incident=None)
    _approve_replica(runs, run_id, tunnel="approve")
    held = _held(runs, run_id, served)
    lease, tunnel = held["postgres_database"], held["ssh_tunnel"]
    port = tunnel.undo["local_port"]
    # the held tunnel reaches the sandbox's standby, read-only
    dsn = f"host=127.0.0.1 port={port} user=postgres dbname=shop_production"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelling(), force=True)
    ledger = LeaseLedger(served["LADDER_LEDGER_URL"])
    # the runner notices within its poll interval, gives the run 30 s to stop on SIGTERM, then
    # SIGKILLs it and runs the flow's cancellation hook itself
    deadline = time.monotonic() + 150
    while {ledger.get(x.id).state for x in held.values()} != {"reverted"}:
        assert time.monotonic() < deadline, [ledger.get(x.id) for x in held.values()]
        time.sleep(0.5)
    assert not _exists(lease)
    assert not _accepts(port)
    report = _report(served)
    assert report["outcome"] == "cancelled"


def test_leases_revert_run_releases_the_held_replica_from_a_terminal(
    served: dict[str, str], runs: Runs
) -> None:
    run_id = runs.start(RUNBOOK, incident=None)
    _approve_replica(runs, run_id)
    lease = _held_replica(runs, run_id, served)
    revert = subprocess.run(
        [sys.executable, "-m", "cli", "leases", "revert", "--run", str(run_id)],
        env={**os.environ, **served},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revert.returncode == 0, revert.stderr
    assert not _exists(lease)
    assert LeaseLedger(served["LADDER_LEDGER_URL"]).get(lease.id).state == "reverted"
    # the hold learns nothing is live any more only when it wakes; releasing ends the run cleanly
    resume_flow_run(run_id, run_input={"decision": "release", "approver": "ana"})
    assert runs.wait_state(run_id, {"COMPLETED"}) == "COMPLETED"
    assert {x["state"] for x in _report(served)["leases"]} == {"reverted"}

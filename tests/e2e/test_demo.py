"""`ladder demo` as a person runs it: a real subprocess, the sandbox, the report, no leases left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.entrypoints import PROJECT_ROOT
from ladder.procs import pid_alive
from ladder.sandbox import shop

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_env(prefect_server: str, tmp_path: Path, sandbox_dir: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "LADDER_HOME": str(tmp_path / "home"),
        "LADDER_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "LADDER_SANDBOX_DIR": str(sandbox_dir),
    }
    env.pop("LADDER_TEST_MODE", None)
    yield env
    subprocess.run(
        [sys.executable, "-m", "cli", "sandbox", "down"], env=env, check=False, timeout=60
    )


def _ladder(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_climbs_the_sandbox_incident_and_leaves_no_lease(demo_env: dict[str, str]) -> None:
    done = _ladder(demo_env, "demo", "--json", "--users", "400")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    statuses = {r["name"]: r["status"] for r in report["rungs"]}
    assert statuses["evidence"] == "done"
    assert statuses["local_replica"] == "done"
    assert all(s in {"done", "not_built", "unavailable"} for s in statuses.values()), statuses
    assert report["approvals"] == "automatic (sandbox)"
    assert report["outcome"] == "completed"
    assert report["hold"].startswith("skipped: approvals are automatic (sandbox)")
    # the replica database was leased to the run and dropped when it ended
    assert report["leases"] and all(lease["state"] == "reverted" for lease in report["leases"])
    replica = next(r for r in report["rungs"] if r["name"] == "local_replica")
    assert replica["data"]["validation"]["passed"] is True
    assert replica["data"]["rows"]["public.users"] >= 1
    assert Path(report["report_path"]).exists()
    evidence = next(r for r in report["rungs"] if r["name"] == "evidence")
    assert evidence["data"]["affected_users"], "the sandbox incident has affected customers"
    trace = next(r for r in report["rungs"] if r["name"] == "staging_trace")
    missing = shop.available()
    if missing:
        assert trace["status"] == "unavailable"
        assert f"Debian package {missing}" in trace["reason"]
    else:  # rung 4 for real: the replayed checkouts fail in Payment#capture! on staging
        assert trace["status"] == "done", trace
        raised = {(e["exception"], e["raised in"]) for e in trace["data"]["exceptions"]}
        assert ("NoMethodError", "Shop::Payment#capture!") in raised
        assert {lease["kind"] for lease in report["leases"]} >= {"rbtrace_tracer", "rbtrace_probe"}
        assert pid_alive(trace["data"]["target_pid"])  # the staging app outlives the run
    # rung 3 for real where the machine has sshd and pg_basebackup, else it names the package
    from ladder.sandbox.remote import missing

    tunnel = next(r for r in report["rungs"] if r["name"] == "tunnel")
    if missing():
        assert tunnel["status"] == "unavailable"
        assert any(package in tunnel["reason"] for package in missing().values()), tunnel
    else:
        assert tunnel["status"] == "done", tunnel
        assert "standby" in tunnel["data"]["read_only"]
        [closed] = [x for x in report["leases"] if x["kind"] == "ssh_tunnel"]
        assert closed["outcome"].startswith(f"closed the tunnel on 127.0.0.1:{tunnel['data']['local_port']}")
    flags = next(r for r in report["rungs"] if r["name"] == "production_flags")
    if flags["status"] == "unavailable":  # names the Debian package the sandbox's app lacks
        assert "Debian package" in flags["reason"], flags["reason"]
    else:
        assert flags["status"] == "done", flags
        (gate,) = flags["data"]["gates"]
        assert gate["actor"] == f"User;{evidence['data']['affected_users'][0]}"
        user = gate["actor"].split(";")[1]  # the shop logs only for the flagged customer
        assert all(f"user_id={user} " in line for line in flags["data"]["log_lines"])
        lease = next(x for x in report["leases"] if x["kind"] == "flipper_actor_gate")
        assert lease["state"] == "reverted" and "read back: off" in lease["outcome"]
    _replica_app_climbed_or_says_why(report)

    # the second run reuses the sandbox and prints the human summary
    again = _ladder(demo_env, "demo")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "1. evidence" in again.stdout
    assert "none left" in again.stdout
    assert "report:" in again.stdout
    # with automatic approvals nothing is held, and the console says the replica is gone
    assert "hold: skipped: approvals are automatic (sandbox)" in " ".join(again.stdout.split())
    if not missing:  # `sandbox down` stops the staging app too
        assert _ladder(demo_env, "sandbox", "down").returncode == 0
        assert not pid_alive(trace["data"]["target_pid"])


def _replica_app_climbed_or_says_why(report: dict[str, object]) -> None:
    """Rung 6 ran for real behind the sandbox's nginx, or names the package it lacks."""
    from ladder.sandbox import nginx, shop

    rung = next(r for r in report["rungs"] if r["name"] == "replica_app")  # type: ignore[attr-defined]
    missing = shop.available() or nginx.available()
    if missing:
        assert rung["status"] == "unavailable" and missing in rung["reason"], rung
        return
    assert rung["status"] == "done", rung
    data = rung["data"]
    assert data["checks"][0].startswith("a request tagged by header reached the replica")
    assert data["checks"][-1].startswith("an untagged request reached the app, not the replica")
    assert data["curl"].startswith(f"curl -H 'X-Debug-Replica: {data['token']}' http://127.0.0.1:")
    kinds = {lease["kind"] for lease in report["leases"]}  # type: ignore[attr-defined]
    assert {"replica_process", "nginx_route"} <= kinds

"""Rung 3 inside Prefect: the escalate flow climbs it and closes the tunnel when the run ends;
a run SIGKILLed while its tunnel is up leaves nothing listening once the janitor has passed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from servers.sshd import KEY_ENV, Sshd

from ladder.incident import Incident
from ladder.leases import LeaseLedger, LeaseState
from ladder.procs import pid_alive
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.integration

HOLDER = Path(__file__).with_name("_tunnel_holder.py")
NOW = datetime.now(UTC).replace(microsecond=0)
INCIDENT = Incident(
    id="tunnel-1", title="Checkout 500s", started_at=NOW - timedelta(minutes=15), ended_at=NOW
)


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'leases.db'}"
    monkeypatch.setenv("LADDER_LEDGER_URL", url)
    return url


@pytest.fixture
def key_env(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, sshd.private_key_text)
    return KEY_ENV


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _runbook(tmp: Path, sshd: Sshd, target: str) -> Path:
    (tmp / "env.yaml").write_text(
        f"name: tunneltest\n{sshd.ssh_yaml()}tunnel_db:\n  dsn: '{target}'\n"
    )
    path = tmp / "rb.yaml"
    path.write_text("name: tunneltest\nenvironment: env.yaml\nrungs:\n  tunnel:\n    ttl_minutes: 5\n")
    return path


def _artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)


def test_the_flow_hands_over_the_dsn_and_closes_the_tunnel_when_the_run_ends(
    prefect_server: str, sshd: Sshd, key_env: str, pg_standby: Cluster, ledger_url: str,
    auto_approve: str, tmp_path: Path,
) -> None:  # fmt: skip
    from flows.escalate import escalate

    rb = _runbook(tmp_path, sshd, pg_standby.dsn())
    report = escalate(runbook=str(rb), incident=INCIDENT)["report"]

    [rung] = [r for r in report["rungs"] if r["name"] == "tunnel"]
    assert rung["status"] == "done", rung
    dsn, port, pid = rung["data"]["dsn"], rung["data"]["local_port"], rung["data"]["keeper_pid"]
    assert dsn.startswith(f"postgresql://postgres@127.0.0.1:{port}/postgres?options=")
    [held] = rung["held"]
    assert held["use"] == f"psql '{dsn}'"
    assert dsn in _artifact("incident-tunnel-1-tunnel")
    [lease] = report["leases"]
    assert lease["kind"] == "ssh_tunnel" and lease["state"] == "reverted"
    assert lease["outcome"] == f"closed the tunnel on 127.0.0.1:{port} (keeper pid {pid})"
    assert not pid_alive(pid) and not accepts(port)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=3)


def test_a_killed_run_leaves_nothing_listening_after_the_janitor(
    prefect_server: str, sshd: Sshd, key_env: str, pg_standby: Cluster, ledger_url: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    from flows.janitor import janitor

    ssh = sshd.config().model_dump_json()
    with (tmp_path / "holder.err").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(HOLDER), ssh, pg_standby.dsn()],
            env={**os.environ, "PREFECT_API_URL": prefect_server},
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert proc.stdout is not None
    line = next((x for x in proc.stdout if x.startswith("READY ")), "")
    assert line, (tmp_path / "holder.err").read_text()
    lease_id, port, pid = line.split()[1], int(line.split()[2]), int(line.split()[3])

    try:
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        # the tunnel outlives the run that opened it: it is its own process, held by the lease
        assert pid_alive(pid) and accepts(port)
        # a keeper that hangs cannot close itself at its TTL: only the janitor's kill by PID ends it
        os.kill(pid, signal.SIGSTOP)
        ledger = LeaseLedger()
        ledger.extend(lease_id, datetime.now(UTC))

        summary = janitor()

        assert summary["reverted_ids"] == [lease_id]
        lease = ledger.get(lease_id)
        assert lease.state is LeaseState.REVERTED and lease.outcome.startswith("closed the tunnel")
        deadline = time.monotonic() + 30
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(pid) and not accepts(port)
        ledger.close()
    finally:
        if pid_alive(pid):  # a failed test leaves no stopped keeper behind
            os.kill(pid, signal.SIGKILL)

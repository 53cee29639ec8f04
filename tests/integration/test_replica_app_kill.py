"""A run killed with SIGKILL after rung 6 routed tagged requests to a debug replica leaves the
route and the replica behind; the janitor flow reverts both once they expire."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from servers.nginx import Front

from ladder.leases import LeaseLedger, LeaseState
from ladder.procs import pid_alive

pytestmark = pytest.mark.integration

HOLDER = Path(__file__).with_name("_route_holder.py")


def _pid_serving(front: Front, token: str) -> int:
    res = httpx.get(f"{front.url}/health", headers={"X-Debug-Replica": token}, timeout=10)
    return int(res.headers["x-shop-pid"])


def test_janitor_reverts_the_route_and_the_replica_of_a_killed_run(
    prefect_server: str, front: Front, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'leases.db'}"
    monkeypatch.setenv("LADDER_LEDGER_URL", url)
    before = front.nginx.include.read_bytes()
    with (tmp_path / "holder.err").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(HOLDER), front.lb().model_dump_json(), "3"],
            env={**os.environ, "LADDER_LEDGER_URL": url, "PREFECT_API_URL": prefect_server},
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert proc.stdout is not None
    ready = next((line.split() for line in proc.stdout if line.startswith("READY ")), None)
    if ready is None:
        proc.wait()
        raise AssertionError(f"holder exited {proc.returncode}: {(tmp_path / 'holder.err').read_text()}")
    route_id, process_id, token, pid = ready[1], ready[2], ready[3], int(ready[4])
    try:
        _kill_and_let_the_janitor_revert(proc, front, before, route_id, process_id, token, pid)
    finally:  # a failed assertion leaves no replica behind
        proc.kill()
        ledger = LeaseLedger()
        for lease in ledger.list():
            ledger.revert(lease.id)
        ledger.close()


def _kill_and_let_the_janitor_revert(
    proc: subprocess.Popen[str], front: Front, before: bytes, route_id: str, process_id: str,
    token: str, pid: int,
) -> None:  # fmt: skip
    from flows.janitor import janitor

    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    ledger = LeaseLedger()
    assert _pid_serving(front, token) == pid  # the killed run's route is still live
    assert ledger.get(route_id).state is LeaseState.ACTIVE
    while not ledger.get(route_id).is_expired() or not ledger.get(process_id).is_expired():
        time.sleep(0.1)

    summary = janitor()

    assert sorted(summary["reverted_ids"]) == sorted([route_id, process_id])
    assert ledger.get(route_id).state is LeaseState.REVERTED
    assert ledger.get(process_id).state is LeaseState.REVERTED
    assert front.nginx.include.read_bytes() == before
    assert _pid_serving(front, token) == front.app.pid()
    assert not pid_alive(pid)
    ledger.close()

"""A run killed with SIGKILL after rung 5 enabled a flag leaves the gate on; the janitor flow
turns it off once the lease expires, and real Flipper agrees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers.flipper import ruby_enabled

from ladder.leases import LeaseLedger, LeaseState

pytestmark = pytest.mark.integration

HOLDER = Path(__file__).with_name("_flag_holder.py")


def test_janitor_turns_off_the_flag_of_a_killed_run(
    prefect_server: str, flipper_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.janitor import janitor

    ledger_url = f"sqlite:///{tmp_path / 'leases.db'}"
    monkeypatch.setenv("LADDER_LEDGER_URL", ledger_url)
    (tmp_path / "rb").mkdir()
    env = {**os.environ, "LADDER_LEDGER_URL": ledger_url, "PREFECT_API_URL": prefect_server,
           "PYTHONPATH": os.pathsep.join([str(HOLDER.parent), str(HOLDER.parents[1])])}  # fmt: skip
    with (tmp_path / "holder.err").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(HOLDER), flipper_tables, str(tmp_path / "rb"), "2"],
            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert proc.stdout is not None
    lease_id = next((line.split()[1] for line in proc.stdout if line.startswith("READY ")), None)
    if lease_id is None:
        proc.wait()
        raise AssertionError((tmp_path / "holder.err").read_text()[-3000:])
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    ledger = LeaseLedger()
    assert ledger.get(lease_id).state is LeaseState.ACTIVE
    assert ruby_enabled(flipper_tables, "debug_mode", "User;42") == {"User;42": True}
    while not ledger.get(lease_id).is_expired():
        time.sleep(0.1)

    summary = janitor()

    assert summary["reverted_ids"] == [lease_id]
    lease = ledger.get(lease_id)
    assert lease.state is LeaseState.REVERTED and "read back: off" in (lease.outcome or "")
    assert ruby_enabled(flipper_tables, "debug_mode", "User;42") == {"User;42": False}
    ledger.close()

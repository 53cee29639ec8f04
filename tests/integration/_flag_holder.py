"""Run as a separate process by test_flags_janitor: a Prefect flow that climbs rung 5 (a Flipper
actor gate in the tables at DSN), shortens its lease to TTL_SECONDS, prints ``READY <lease id>``
and hangs until it is killed.

    python _flag_holder.py DSN DIRECTORY TTL_SECONDS

The ledger is whatever ``LADDER_LEDGER_URL`` names; the Prefect API is ``PREFECT_API_URL``.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flags_helpers import climb_state, write_runbook
from prefect import flow
from prefect.runtime import flow_run

from ladder.leases import LeaseLedger
from ladder.rungs.production_flags import run


@flow(name="flag-holder")
def hold(dsn: str, directory: str, ttl_seconds: float) -> None:
    runbook = write_runbook(Path(directory), {"database": {"dsn": dsn}})
    state, settings = climb_state(runbook, owner=str(flow_run.get_id()))
    result = run(state, settings)
    (held,) = result.held
    LeaseLedger().extend(held.lease_id, datetime.now(UTC) + timedelta(seconds=ttl_seconds))
    print(f"READY {held.lease_id}", flush=True)
    time.sleep(600)  # a worker that hangs: only SIGKILL ends it


if __name__ == "__main__":
    hold(sys.argv[1], sys.argv[2], float(sys.argv[3]))

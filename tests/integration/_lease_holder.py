"""Run as a separate process by test_janitor_kill: a Prefect flow that leases a database, creates
it, prints ``READY <lease id>`` and hangs until it is killed.

    python _lease_holder.py SERVER_DSN DBNAME TTL_SECONDS

The ledger is whatever ``LADDER_LEDGER_URL`` names; the Prefect API is ``PREFECT_API_URL``.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from prefect import flow
from prefect.runtime import flow_run

from ladder.connectors.postgres import create_database
from ladder.leases import LeaseLedger, leased


@flow(name="lease-holder")
def hold(server: str, dbname: str, ttl_seconds: float) -> None:
    ledger = LeaseLedger()
    undo = {"server": server, "dbname": dbname}
    ttl = timedelta(seconds=ttl_seconds)
    owner = str(flow_run.get_id())
    with leased(ledger, "postgres_database", f"database {dbname}", owner, ttl, undo) as lease:
        create_database(server, dbname)
    print(f"READY {lease.id}", flush=True)
    time.sleep(600)  # a worker that hangs: only SIGKILL ends it


if __name__ == "__main__":
    hold(sys.argv[1], sys.argv[2], float(sys.argv[3]))

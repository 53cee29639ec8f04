"""Run as a separate process by test_replica_app_kill: a Prefect flow that opens rung 6's route
(starts the debug replica, adds the nginx route), prints ``READY <route lease> <process lease>
<token> <pid>`` and hangs until it is killed.

    python _route_holder.py LOAD_BALANCER_JSON TTL_SECONDS

The ledger is whatever ``LADDER_LEDGER_URL`` names; the Prefect API is ``PREFECT_API_URL``.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from prefect import flow
from prefect.runtime import flow_run

from ladder.config_hosts import LoadBalancerConfig
from ladder.leases import LeaseLedger
from ladder.replica_app.vm import open_route, plan_from


@flow(name="route-holder")
def hold(lb_json: str, ttl_seconds: float) -> None:
    plan = plan_from(LoadBalancerConfig.model_validate_json(lb_json), "killed-run", {}, 60)
    opened = open_route(plan, LeaseLedger(), str(flow_run.get_id()), timedelta(seconds=ttl_seconds))
    print(
        f"READY {opened.route_lease.id} {opened.process_lease.id} {opened.token} {opened.pid}",
        flush=True,
    )
    time.sleep(600)  # a worker that hangs: only SIGKILL ends it


if __name__ == "__main__":
    hold(sys.argv[1], float(sys.argv[2]))

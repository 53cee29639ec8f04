"""Run as a separate process by test_tunnel_flow: a Prefect flow that opens a read-only tunnel,
prints ``READY <lease id> <local port> <keeper pid>`` and hangs until it is killed.

    python _tunnel_holder.py SSH_CONFIG_JSON TARGET_DSN

The ledger is whatever ``LADDER_LEDGER_URL`` names; the key is in ``LADDER_TEST_SSH_KEY``.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from prefect import flow
from prefect.runtime import flow_run

from ladder.config import DatabaseConfig, Environment, SSHConfig
from ladder.tunnel import open_read_only_tunnel


@flow(name="tunnel-holder")
def hold(ssh_json: str, target: str) -> None:
    env = Environment(
        name="holder", ssh=SSHConfig.model_validate_json(ssh_json), tunnel_db=DatabaseConfig(dsn=target)
    )
    owner = str(flow_run.get_id())
    tunnel = open_read_only_tunnel(env, owner=owner, ttl=timedelta(minutes=10))
    print(f"READY {tunnel.lease.id} {tunnel.local_port} {tunnel.keeper.pid}", flush=True)
    time.sleep(600)  # a worker that hangs: only SIGKILL ends it


if __name__ == "__main__":
    hold(sys.argv[1], sys.argv[2])

"""Rung 3, tunnel: an SSH port forward (fabric) to a read-only production replica, for a while.

The tunnel goes through the environment's bastion to its ``tunnel_db`` (else ``production_db``)
and listens on 127.0.0.1 only. Before the engineer gets a DSN, the server at its end must be a
standby or the role must only be able to read; otherwise the rung fails and the tunnel closes.
The tunnel is a lease held by the run (see :mod:`ladder.tunnel`): it stays up during the hold and
closes at release, at its TTL, when the run ends, or by the janitor if the run died.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from ladder.rungs.base import (
    ClimbState,
    Finding,
    Held,
    Minutes,
    Need,
    Rung,
    RungResult,
    RungSettings,
    Where,
)

if TYPE_CHECKING:
    from ladder.config import LoadedRunbook


class TunnelSettings(RungSettings):
    ttl_minutes: Minutes = Field(30, description="how long the tunnel stays open")
    local_port: int | None = Field(
        None, ge=1024, le=65535, description="local port to listen on (default: a free one)"
    )


class TunnelResult(RungResult):
    dsn: str = Field("", description="the DSN through the tunnel: 127.0.0.1, no password, read-only")
    local_port: int = 0
    target: str = Field("", description="the replica, host:port/db as the SSH host sees it")
    via: str = Field("", description="the SSH connection, user@host:port [via the bastion]")
    read_only: str = Field("", description="why the target counts as read-only")
    keeper_pid: int = 0


def run(state: ClimbState, settings: TunnelSettings) -> RungResult:
    """Open the tunnel, check the replica is read-only through it, and hand over its DSN."""
    from ladder.errors import ConfigError
    from ladder.tunnel import open_read_only_tunnel, tunnel_target

    env = state.environment
    try:
        tunnel_target(env)
    except ConfigError as exc:
        return RUNG.result("unavailable", reason=str(exc))
    tunnel = open_read_only_tunnel(
        env,
        owner=state.owner,
        ttl=timedelta(minutes=settings.ttl_minutes),
        local_port=settings.local_port,
    )
    expires = tunnel.lease.expires_at
    details = (
        f"**Read-only tunnel** to `{tunnel.target}` via `{tunnel.via}`, held for you until "
        f"{expires:%Y-%m-%d %H:%M} UTC or until you release it at the hold checkpoint.\n\n"
        f"```sh\npsql '{tunnel.dsn}'\n```\n\n"
        f"- listens on 127.0.0.1:{tunnel.local_port} only\n"
        f"- read-only: {tunnel.read_only}; every session through this DSN also starts with "
        "`default_transaction_read_only=on`\n"
        f"- a dropped SSH connection is reconnected (lease `{tunnel.lease.id}`, keeper pid "
        f"{tunnel.keeper.pid})\n"
    )
    state.publish.markdown("tunnel", details, f"Read-only tunnel for {state.incident.id}")
    return TunnelResult(
        summary=f"read-only tunnel 127.0.0.1:{tunnel.local_port} → {tunnel.target} "
        f"via {tunnel.via}",
        details_markdown=details,
        held=[
            Held(
                lease_id=tunnel.lease.id,
                what=f"read-only tunnel to {tunnel.target}",
                use=f"psql '{tunnel.dsn}'",
                expires_at=expires,
            )
        ],
        dsn=tunnel.dsn,
        local_port=tunnel.local_port,
        target=tunnel.target,
        via=tunnel.via,
        read_only=tunnel.read_only,
        keeper_pid=tunnel.keeper.pid,
    )


def check(settings: TunnelSettings, loaded: LoadedRunbook, where: Where) -> list[Finding]:
    """The pinned known_hosts should be there (a warning: a worker may have it where this
    machine does not); without it every connection is refused."""
    ssh = loaded.environment.ssh
    if ssh is None or Path(ssh.known_hosts).is_file():
        return []
    return [("warning", f"{where()}: ssh.known_hosts {ssh.known_hosts} is not a file here: "
             "every connection will be refused until the host keys are pinned in it")]  # fmt: skip


RUNG = Rung(
    number=3,
    name="tunnel",
    title="SSH tunnel to a read-only replica",
    touches="reads only",
    approval_by_default=True,
    settings=TunnelSettings,
    needs=(Need("ssh and production_db", lambda env: env.ssh and (env.tunnel_db or env.production_db)),),
    run=run,
    hands_over=True,
    check=check,
)

"""Open a read-only tunnel to an environment's replica: what rung 3 and ``ladder tunnel open`` do.

1. The target is the environment's ``tunnel_db`` (else ``production_db``): its host and port as
   the SSH host sees them. The SSH connection is the environment's ``ssh`` section.
2. A keeper process is started, leased (``ssh_tunnel``) and told to forward a free (or the given)
   port on 127.0.0.1; this waits until the port really accepts.
3. Through the tunnel, the server is asked whether it is read-only
   (:func:`~ladder.tunnel.readonly.check_read_only`). If not, the lease is reverted — the tunnel
   closes — and :class:`~ladder.errors.NotReadOnlyError` says why.
4. The engineer gets a DSN on 127.0.0.1 without password, with
   ``options=-c default_transaction_read_only=on``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from ladder.config import Environment
from ladder.connectors.ssh import SSHConnection, private_key_text
from ladder.errors import ConfigError
from ladder.leases import Lease, LeaseLedger
from ladder.procs import free_port
from ladder.secrets import describe_server, resolve_dsn, without_password
from ladder.tunnel.process import Keeper, KeeperSpec, start_tunnel
from ladder.tunnel.readonly import check_read_only, read_only_dsn


@dataclass(frozen=True)
class OpenedTunnel:
    """A tunnel that is up, read-only checked, and leased."""

    lease: Lease
    keeper: Keeper
    local_port: int
    dsn: str
    target: str
    via: str
    read_only: str


def _missing(env: Environment, part: str, what: str) -> ConfigError:
    package = env.sandbox_missing.get(part)
    hint = f" (this machine lacks it: install the Debian package {package})" if package else ""
    return ConfigError(f"the environment {env.name!r} has no {what}{hint}")


def tunnel_target(env: Environment) -> tuple[str, str, int]:
    """The replica's resolved DSN and its ``(host, port)`` as the SSH host reaches it."""
    if env.ssh is None:
        raise _missing(env, "ssh", "ssh section")
    db = env.tunnel_db or env.production_db
    if db is None:
        raise _missing(env, "tunnel_db", "tunnel_db or production_db to tunnel to")
    dsn = resolve_dsn(db.dsn)
    params = conninfo_to_dict(dsn)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    if host.startswith("/") or "," in host:
        raise ConfigError(
            f"the tunnel needs one TCP host for the replica, not {host!r}: set the environment's "
            "tunnel_db to host=... port=... as the SSH host reaches it"
        )
    return dsn, host, int(params.get("port") or 5432)


def open_read_only_tunnel(
    env: Environment,
    *,
    owner: str,
    ttl: timedelta,
    local_port: int | None = None,
    ledger: LeaseLedger | None = None,
    max_reconnects: int = 5,
) -> OpenedTunnel:
    """Open, lease and check a tunnel to ``env``'s replica (see the module docstring)."""
    dsn, remote_host, remote_port = tunnel_target(env)
    assert env.ssh is not None
    ledger = ledger or LeaseLedger()
    key, _ = private_key_text(env.ssh)  # resolved here: the keeper needs no Prefect or env var
    known_hosts = str(Path(env.ssh.known_hosts).expanduser().absolute())
    ssh = env.ssh.model_copy(update={"key": None, "private_key": None, "known_hosts": known_hosts})
    via = SSHConnection(env.ssh).address
    port = local_port or free_port()
    spec = KeeperSpec(
        ssh=ssh,
        private_key=SecretStr(key) if key else None,
        remote_host=remote_host,
        remote_port=remote_port,
        local_port=port,
        lease_id="",
        ledger_url=SecretStr(ledger.engine.url.render_as_string(hide_password=False)),
        max_reconnects=max_reconnects,
    )
    target = describe_server(dsn)
    lease, keeper = start_tunnel(
        ledger,
        spec,
        owner=owner,
        ttl=ttl,
        target=f"127.0.0.1:{port} -> {target} via {via}",
        description=f"read-only SSH tunnel to {target}",
    )
    local = _through(dsn, port)
    try:
        how = check_read_only(make_conninfo(local, connect_timeout=10))
    except BaseException:
        ledger.revert(lease.id)
        raise
    return OpenedTunnel(
        lease=lease,
        keeper=keeper,
        local_port=port,
        dsn=read_only_dsn(without_password(local)),
        target=target,
        via=via,
        read_only=how,
    )


def _through(dsn: str, port: int) -> str:
    """``dsn`` pointed at the tunnel's end on 127.0.0.1:``port``."""
    params = conninfo_to_dict(dsn)
    params.pop("hostaddr", None)
    params.update(host="127.0.0.1", port=str(port))
    return make_conninfo(**params)

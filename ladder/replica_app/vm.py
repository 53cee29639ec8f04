"""Rung 6 on VMs: a debug replica of the app, and nginx routing only tagged requests to it.

:func:`open_route` does the work, each change a lease taken *before* it is made:

1. ``replica_process``: the replica started on its host (``load_balancer.replica``) with the
   runbook's extra environment (e.g. ``LOG_LEVEL=debug``);
2. ``nginx_route``: a block of entries added to nginx's map include for a fresh token (the
   header ``X-Debug-Replica: <token>`` or the cookie ``debug_replica=<token>``), the
   configuration tested and nginx reloaded by SIGHUP to its master;
3. probes through the load balancer until a tagged request reaches the replica, then once more:
   tagged by header and by cookie reach it, an untagged request does not.

On any failure both leases are reverted before the error goes up. On success both stay active
(the run holds them) until released, expired, or reverted by the janitor.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from ladder.config_hosts import LoadBalancerConfig, ReplicaProcessConfig
from ladder.connectors import app_process, nginx
from ladder.connectors.hosts import HostRef, alive
from ladder.connectors.replica_app_leases import (
    NginxRouteUndo,
    ProbeSpec,
    ReplicaProcessUndo,
    b64,
)
from ladder.errors import ConfigError, RoutingError
from ladder.leases import Lease, LeaseLedger, leased

__all__ = ["OpenedRoute", "RoutePlan", "open_route", "plan_from"]


@dataclass(frozen=True)
class RoutePlan:
    """Everything :func:`open_route` needs, checked."""

    route_id: str
    lb_host: HostRef
    replica_host: HostRef
    replica: ReplicaProcessConfig
    include: str
    pid_file: str
    test_command: list[str] | None
    url: str
    probe_path: str
    header: str
    cookie: str
    extra_env: Mapping[str, str] = field(default_factory=dict)
    ready_seconds: float = 60


@dataclass
class OpenedRoute:
    token: str
    upstream: str
    pid: int
    run_dir: str
    process_lease: Lease
    route_lease: Lease
    checks: list[str]

    def curl(self, plan: RoutePlan) -> str:
        """The command line that sends one tagged request to the replica."""
        header = f"{plan.header}: {self.token}"
        return f"curl -H {shlex.quote(header)} {shlex.quote(plan.url.rstrip('/') + '/')}"

    def cookie(self, plan: RoutePlan) -> str:
        """The cookie to set in the browser for the site behind the load balancer."""
        return f"{plan.cookie}={self.token}"


def _host(ssh: object, local: bool, what: str) -> HostRef:
    if ssh is not None:
        return HostRef(ssh=ssh)  # type: ignore[arg-type]
    if local:
        return HostRef(local=True)
    raise ConfigError(f"{what}: set ssh (how to reach its host) or local: true")


def plan_from(
    lb: LoadBalancerConfig, route_id: str, extra_env: Mapping[str, str], ready_seconds: float
) -> RoutePlan:
    """The plan for an nginx load balancer; ConfigError naming the first missing setting."""
    missing = [
        name
        for name in ("map_include", "pid_file", "url", "replica")
        if getattr(lb, name) in (None, "")
    ]
    if missing:
        raise ConfigError(
            f"load_balancer (nginx) needs {', '.join(missing)} for rung 6 (replica_app)"
        )
    assert lb.replica is not None and lb.map_include and lb.pid_file and lb.url
    return RoutePlan(
        route_id=route_id,
        lb_host=_host(lb.ssh, lb.local, "load_balancer"),
        replica_host=_host(lb.replica.ssh, lb.replica.local, "load_balancer.replica"),
        replica=lb.replica,
        include=lb.map_include,
        pid_file=lb.pid_file,
        test_command=lb.test_command,
        url=lb.url,
        probe_path=lb.probe_path,
        header=lb.header,
        cookie=lb.cookie,
        extra_env=dict(extra_env),
        ready_seconds=ready_seconds,
    )


def open_route(
    plan: RoutePlan,
    ledger: LeaseLedger,
    owner: str,
    ttl: timedelta,
    say: Callable[[str], None] = lambda line: None,
) -> OpenedRoute:
    """Start the replica and route tagged requests to it (see the module docstring)."""
    token, marker = nginx.make_token(), secrets.token_hex(8)
    upstream = plan.replica.upstream()
    block = nginx.route_block(plan.route_id, token, upstream)  # checks token and upstream first
    directory = app_process.run_dir(plan.replica.work_dir, marker)
    process_undo = ReplicaProcessUndo(host=plan.replica_host, run_dir=directory, marker=marker)
    taken: list[Lease] = []
    try:
        replica_host = plan.replica_host.open()
        try:
            with leased(
                ledger, "replica_process", f"debug replica {upstream}", owner, ttl,
                process_undo.model_dump(mode="json"),
                description=f"run dir {directory}",
            ) as process_lease:  # fmt: skip
                taken.append(process_lease)
                pid = app_process.start(replica_host, plan.replica, plan.extra_env, marker)
            say(f"started the debug replica (pid {pid}) at {upstream}")
            route_lease = _route(plan, ledger, owner, ttl, token, block, taken)
            say(f"nginx routes requests tagged {plan.header} or cookie {plan.cookie} to it")
            try:
                nginx.wait_routed(
                    _probe(plan), token, upstream, timeout=plan.ready_seconds,
                    still_worth_it=lambda: alive(replica_host, pid),
                )  # fmt: skip
            except RoutingError as exc:
                if not alive(replica_host, pid):
                    tail = app_process.log_tail(replica_host, directory)
                    raise RoutingError(f"the debug replica exited: {tail}") from None
                raise exc from None
            checks = nginx.probe(_probe(plan), token, upstream)
        finally:
            replica_host.close()
    except BaseException:
        for lease in reversed(taken):
            ledger.revert(lease.id)
        raise
    return OpenedRoute(token, upstream, pid, directory, taken[0], route_lease, checks)


def _probe(plan: RoutePlan) -> nginx.Probe:
    return nginx.Probe(plan.url, plan.probe_path, plan.header, plan.cookie)


def _route(
    plan: RoutePlan,
    ledger: LeaseLedger,
    owner: str,
    ttl: timedelta,
    token: str,
    block: bytes,
    taken: list[Lease],
) -> Lease:
    lb_host = plan.lb_host.open()
    try:
        previous = nginx.read_bytes(lb_host, plan.include)
        written = nginx.with_block(previous, block)
        undo = NginxRouteUndo(
            host=plan.lb_host,
            route_id=plan.route_id,
            include=plan.include,
            previous=b64(previous),
            written=b64(written) or "",
            pid_file=plan.pid_file,
            test_command=plan.test_command,
            probe=ProbeSpec(url=plan.url, path=plan.probe_path, header=plan.header,
                            cookie=plan.cookie, token=token),
        )  # fmt: skip
        with leased(
            ledger, "nginx_route", f"nginx route {plan.route_id} in {plan.include}", owner, ttl,
            undo.model_dump(mode="json"), description=f"tagged requests to {plan.replica.upstream()}",
        ) as lease:  # fmt: skip
            taken.append(lease)
            nginx.write_bytes(lb_host, plan.include, written)
            nginx.reload(lb_host, plan.pid_file, plan.test_command)
    finally:
        lb_host.close()
    return lease

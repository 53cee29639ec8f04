"""Rung 6, replica app: a debug replica of the app that the load balancer sends only tagged requests.

On VMs behind nginx (``load_balancer: {kind: nginx, ...}`` in the environment) the replica is
started on its host with the runbook's extra environment (e.g. ``LOG_LEVEL=debug``) and nginx
routes to it only requests carrying a fresh token in the header (``X-Debug-Replica: <token>``)
or the cookie (``debug_replica=<token>``); see :mod:`ladder.replica_app.vm`. Both are leases held
by the run: the hold form and the report give the curl line and the cookie to reach it.
Other load balancers, and Kubernetes, are reported ``unavailable`` with the reason.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from ladder.errors import GuardrailError
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
    from ladder.config import Environment, LoadedRunbook
    from ladder.config_hosts import LoadBalancerConfig
    from ladder.replica_app.vm import RoutePlan

_ENV_VALUE = re.compile(r"^[^\x00\n\r]{0,1024}$")


class ReplicaAppSettings(RungSettings):
    header: str = Field(
        "X-Debug-Replica",
        pattern=r"^[A-Za-z0-9\-]{1,64}$",
        description="request header that routes a request to the replica",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="extra environment of the replica, e.g. {LOG_LEVEL: debug}",
    )
    ready_seconds: int = Field(
        60, ge=5, le=900, description="how long the replica may take to answer through the LB"
    )
    ttl_minutes: Minutes = Field(60, description="how long the replica and its route live")

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        problems = _env_problems(env)
        if problems:
            raise ValueError(problems[0])
        return env


class ReplicaAppResult(RungResult):
    backend: str = ""
    url: str = Field("", description="the load balancer")
    header: str = ""
    cookie: str = ""
    token: str = Field("", description="the value that routes a request to the replica")
    curl: str = ""
    upstream: str = ""
    pid: int | None = None
    checks: list[str] = Field(default_factory=list)


def _env_problems(env: dict[str, str]) -> list[str]:
    from ladder.config_hosts import ENV_NAME

    out = [f"{k!r} is not an environment variable name" for k in env if not re.match(ENV_NAME, k)]
    out += [f"the value of {k} holds a newline or NUL" for k, v in env.items()
            if not _ENV_VALUE.match(v)]  # fmt: skip
    return out


def _lb_problem(lb: LoadBalancerConfig, settings: ReplicaAppSettings) -> str | None:
    if settings.header.lower() != lb.header.lower():
        return (
            f"refused header {settings.header!r}: the environment's nginx map reads "
            f"{lb.header!r} (load_balancer.header)"
        )
    return None


def plan_route(state: ClimbState, settings: ReplicaAppSettings) -> RoutePlan | str:
    """The checked plan, or why the rung is unavailable; GuardrailError/ConfigError to refuse."""
    from ladder.replica_app.vm import plan_from

    env: Environment = state.environment
    lb = env.load_balancer
    if lb is None:
        if env.sandbox:
            why = env.staging.unavailable if env.staging is not None else None
            return f"the sandbox runs no load balancer in front of its shop: {why or 'no shop'}"
        return "the environment has no load_balancer"
    if lb.unavailable:
        return lb.unavailable
    if lb.kind != "nginx":
        return f"load_balancer.kind {lb.kind}: only nginx is built so far"
    problems = _env_problems(settings.env)
    if problems:
        raise GuardrailError(f"refused rungs.replica_app.env: {problems[0]}")
    problem = _lb_problem(lb, settings)
    if problem:
        raise GuardrailError(problem)
    slug = re.sub(r"[^a-z0-9]+", "-", state.incident.id.lower()).strip("-")[:30]
    run = re.sub(r"[^a-z0-9]+", "", state.owner.lower())[:8]
    return plan_from(lb, f"{slug}-{run}", settings.env, settings.ready_seconds)


def run(state: ClimbState, settings: ReplicaAppSettings) -> RungResult:
    """Start the debug replica and route tagged requests to it, held by the run."""
    from ladder.leases import LeaseLedger
    from ladder.replica_app.vm import open_route

    if state.environment.load_balancer is None and state.environment.kubernetes is not None:
        return _run_kubernetes(state, settings)
    plan = plan_route(state, settings)
    if isinstance(plan, str):
        return RUNG.result("unavailable", reason=plan)
    notes: list[str] = []
    ttl = timedelta(minutes=settings.ttl_minutes)
    opened = open_route(plan, LeaseLedger(), state.owner, ttl, notes.append)
    curl, cookie = opened.curl(plan), opened.cookie(plan)
    expires = opened.route_lease.expires_at
    use = f"{curl}   or, in a browser on {plan.url}, the cookie {cookie}"
    details = (
        f"A debug replica of the app runs at **{opened.upstream}** (pid {opened.pid}, extra "
        f"environment: {', '.join(f'{k}={v}' for k, v in plan.extra_env.items()) or 'none'}). "
        f"The load balancer at {plan.url} sends it **only** requests tagged with the token.\n\n"
        f"- from a terminal: `{curl}`\n"
        f"- in a browser: set the cookie `{cookie}` for {plan.url} (e.g. in the console: "
        f"`document.cookie = \"{cookie}; path=/\"`)\n\n"
        "Checked before handing over:\n\n" + "\n".join(f"- {c}" for c in opened.checks)
    )
    state.publish.markdown("replica-app", details, f"Debug replica for {state.incident.id}")
    return ReplicaAppResult(
        summary=f"debug replica at {opened.upstream} behind nginx: a request tagged "
        f"{plan.header} (or cookie {plan.cookie}) reached it, an untagged one reached the app",
        details_markdown=details,
        held=[
            Held(
                lease_id=opened.route_lease.id,
                what=f"route of tagged requests ({plan.header} or cookie {plan.cookie}) "
                "to the debug replica",
                use=use,
                expires_at=expires,
            ),
            Held(
                lease_id=opened.process_lease.id,
                what=f"debug replica of the app at {opened.upstream} (pid {opened.pid})",
                use=curl,
                expires_at=expires,
            ),
        ],
        backend="nginx",
        url=plan.url,
        header=plan.header,
        cookie=plan.cookie,
        token=opened.token,
        curl=curl,
        upstream=opened.upstream,
        pid=opened.pid,
        checks=opened.checks,
    )


def _run_kubernetes(state: ClimbState, settings: ReplicaAppSettings) -> RungResult:
    """The debug Deployment, its Service and the tagged-only route, held as one lease."""
    from ladder.connectors.nginx import make_token
    from ladder.leases import LeaseLedger
    from ladder.replica_app.kubernetes import open_k8s_route
    from ladder.settings import settings as ladder_settings

    kube = state.environment.kubernetes
    assert kube is not None
    token, cookie = make_token(), "debug_replica"
    opened = open_k8s_route(
        kube, state.incident.id, settings.env, settings.header, cookie, token, LeaseLedger(),
        state.owner, timedelta(minutes=settings.ttl_minutes), ladder_settings().reports_dir,
        ready_seconds=settings.ready_seconds,
    )  # fmt: skip
    hosts = opened.objects[-1]["spec"].get("hostnames") or [
        r.get("host") for r in opened.objects[-1]["spec"].get("rules", []) if r.get("host")
    ]
    url = f"https://{hosts[0]}" if hosts else "https://<the app's address>"
    curl = f"curl -H '{settings.header}: {token}' {url}/"
    details = (
        f"Deployment, Service and {opened.route_kind} **{opened.name}** in namespace "
        f"{kube.namespace}: only requests tagged with the token reach the debug copy.\n\n"
        f"- from a terminal: `{curl}`\n- in a browser: the cookie `{cookie}={token}`"
        + (" (HTTPRoute only)" if opened.route_kind == "HTTPRoute" else " (not with the "
           "ingress-nginx fallback: use the header)")
        + f"\n\nManifests: {opened.manifest_file}"
    )  # fmt: skip
    state.publish.markdown("replica-app", details, f"Debug replica for {state.incident.id}")
    return ReplicaAppResult(
        summary=f"debug copy {opened.name} ready in {kube.namespace}; {opened.route_kind} sends "
        f"it only requests tagged {settings.header}",
        details_markdown=details,
        held=[Held(lease_id=opened.lease.id, what=f"debug Deployment, Service and "
                   f"{opened.route_kind} {opened.name}", use=curl,
                   expires_at=opened.lease.expires_at)],
        backend="kubernetes", url=url, header=settings.header, cookie=cookie, token=token,
        curl=curl, upstream=f"Service {opened.name}",
        checks=[f"Deployment {opened.name} ready", f"manifests in {opened.manifest_file}"],
    )  # fmt: skip


def check(settings: ReplicaAppSettings, loaded: LoadedRunbook, where: Where) -> list[Finding]:
    """What ``ladder runbook check`` can say without touching a host."""
    from ladder.errors import ConfigError
    from ladder.replica_app.vm import plan_from

    out: list[Finding] = [("error", f"{where('env')}: {p}") for p in _env_problems(settings.env)]
    lb, kube = loaded.environment.load_balancer, loaded.environment.kubernetes
    if lb is None and kube is not None and not (kube.gateway or kube.ingress):
        out.append(("error", f"{loaded.environment_path}: kubernetes needs gateway (the app's "
                    "HTTPRoute) or ingress (its Ingress) for rung 6 to route tagged requests"))  # fmt: skip
    if lb is None or lb.kind != "nginx" or loaded.environment.sandbox:
        return out
    problem = _lb_problem(lb, settings)
    if problem:
        out.append(("error", f"{where('header')}: {problem}"))
    try:
        plan_from(lb, "check", settings.env, settings.ready_seconds)
    except ConfigError as exc:
        out.append(("error", f"{loaded.environment_path}: {exc.findings[0]}"))
    return out


RUNG = Rung(
    number=6,
    name="replica_app",
    title="Debug replica behind the load balancer",
    touches="yes, tagged requests",
    approval_by_default=True,
    settings=ReplicaAppSettings,
    needs=(Need("kubernetes or load_balancer", lambda env: env.kubernetes or env.load_balancer),),
    run=run,
    check=check,
    hands_over=True,
)

"""Rung 6 without services: the include's route blocks, the plan's checks and the guardrails,
which refuse before anything is started (the hosts named here do not exist)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ladder.config import load_runbook
from ladder.config_hosts import LoadBalancerConfig
from ladder.connectors import app_process, nginx
from ladder.connectors.replica_app_leases import NginxRouteUndo, ReplicaProcessUndo
from ladder.errors import ConfigError, ConnectorError, GuardrailError, LeaseError, RoutingError
from ladder.incident import Incident
from ladder.leases import LeaseLedger
from ladder.replica_app.vm import plan_from
from ladder.rungs import ClimbState
from ladder.rungs.replica_app import ReplicaAppSettings, run

TOKEN = "0123456789abcdef" * 2
NGINX = {
    "kind": "nginx",
    "ssh": {"host": "lb-1.invalid", "user": "deploy", "known_hosts": "/nonexistent"},
    "url": "https://shop.invalid",
    "map_include": "/etc/nginx/ladder-routes.map",
    "pid_file": "/run/nginx.pid",
    "test_command": ["nginx", "-t"],
    "replica": {
        "ssh": {"host": "app-1.invalid", "user": "deploy", "known_hosts": "/nonexistent"},
        "command": ["/srv/shop/bin/debug-replica", "{port}"],
        "port": 9300,
    },
}


def test_a_route_block_sends_the_header_or_the_cookie_to_the_replica() -> None:
    block = nginx.route_block("inc-1", TOKEN, "10.0.0.5:9300").decode()
    assert f'"~^{TOKEN}:" "10.0.0.5:9300";' in block  # header, with or without the cookie
    assert f'"~:{TOKEN}$" "10.0.0.5:9300";' in block  # cookie only
    assert block.startswith("# ladder route inc-1 begin\n")
    assert block.endswith("# ladder route inc-1 end\n")


@pytest.mark.parametrize(
    ("route_id", "token", "upstream", "why"),
    [
        ("r", "x; include /etc/passwd", "10.0.0.5:9300", "routing token"),
        ("r", TOKEN, "10.0.0.5:9300; return 200", "is not host:port"),
        ("r", TOKEN, "10.0.0.5", "is not host:port"),
        ("r\n# x", TOKEN, "10.0.0.5:9300", "not a plain name"),
    ],
)
def test_nothing_but_checked_tokens_and_addresses_reach_nginx_syntax(
    route_id: str, token: str, upstream: str, why: str
) -> None:
    with pytest.raises(RoutingError, match=why):
        nginx.route_block(route_id, token, upstream)


@pytest.mark.parametrize("before", [None, b"", b"# mine", b"# mine\n", b"a\r\nb\xe9"])
def test_a_block_added_then_taken_out_gives_the_include_back(before: bytes | None) -> None:
    block = nginx.route_block("inc-1", TOKEN, "10.0.0.5:9300")
    written = nginx.with_block(before, block)
    assert written.endswith(block)
    rest = nginx.without_block(written, "inc-1")
    assert rest == (before or b"") + (b"\n" if before and not before.endswith(b"\n") else b"")
    assert nginx.without_block(rest, "inc-1") == rest  # nothing left to take out


def test_only_the_named_route_is_taken_out() -> None:
    one = nginx.route_block("one", TOKEN, "10.0.0.5:9300")
    two = nginx.route_block("two", "f" * 32, "10.0.0.6:9300")
    assert nginx.without_block(one + two, "one") == two


def test_a_plan_names_every_missing_setting_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_from(LoadBalancerConfig(kind="nginx", local=True), "r", {}, 60)
    assert str(caught.value.findings[0]) == (
        "load_balancer (nginx) needs map_include, pid_file, url, replica for rung 6 (replica_app)"
    )


def test_the_replica_starts_with_a_clean_environment_plus_the_runbooks() -> None:
    lb = LoadBalancerConfig.model_validate(NGINX)
    plan = plan_from(lb, "r", {"LOG_LEVEL": "debug"}, 60)
    assert plan.replica.upstream() == "app-1.invalid:9300"
    argv = app_process._argv(plan.replica, plan.extra_env, "ab" * 8)
    assert argv[:2] == ["env", "-i"]
    assert "LOG_LEVEL=debug" in argv and f"{app_process.MARKER_ENV}={'ab' * 8}" in argv
    assert argv[-2:] == ["/srv/shop/bin/debug-replica", "9300"]


def test_stop_refuses_a_directory_that_is_not_a_replica_run_dir() -> None:
    with pytest.raises(ConnectorError, match="is not a replica run directory"):
        app_process.stop(None, "/", "ab" * 8)  # type: ignore[arg-type]  # refused before use


def test_undo_payloads_are_checked_when_the_lease_is_taken(tmp_path: Path) -> None:
    ledger = LeaseLedger(f"sqlite:///{tmp_path / 'l.db'}")
    with pytest.raises(LeaseError, match="marker"):
        ledger.take("replica_process", "x", owner="o", ttl=_ttl(),
                    undo={"host": {"local": True}, "run_dir": "/tmp/x", "marker": "nothex"})  # fmt: skip
    with pytest.raises(LeaseError, match="written"):
        ledger.take("nginx_route", "x", owner="o", ttl=_ttl(),
                    undo={"host": {"local": True}, "route_id": "r", "include": "/i",
                          "previous": None, "pid_file": "/p"})  # fmt: skip
    assert ReplicaProcessUndo.model_fields and NginxRouteUndo.model_fields
    ledger.close()


def _ttl():  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(minutes=1)


def _state(
    tmp_path: Path, lb: dict[str, object] | None, rung: dict[str, object], **env: object
) -> tuple[ClimbState, ReplicaAppSettings]:
    environment = {"name": "prod", **({"load_balancer": lb} if lb else {}), **env}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(environment))
    runbook = {"name": "t", "environment": "env.yaml", "rungs": {"replica_app": rung}}
    (tmp_path / "runbook.yaml").write_text(yaml.safe_dump(runbook))
    loaded = load_runbook(tmp_path / "runbook.yaml")
    incident = Incident(id="inc-1", title="t", started_at="2026-01-01T00:00:00Z",
                        ended_at="2026-01-01T01:00:00Z")  # fmt: skip
    state = ClimbState(incident, loaded.environment, loaded.path, owner="unit")
    chosen = loaded.runbook.rungs.settings("replica_app")
    assert isinstance(chosen, ReplicaAppSettings)
    return state, chosen


def test_a_header_nginx_does_not_read_is_refused_in_one_line(tmp_path: Path) -> None:
    state, settings = _state(tmp_path, NGINX, {})
    edited = settings.model_copy(update={"header": "X-Other"})  # as a checkpoint form may
    with pytest.raises(GuardrailError) as caught:
        run(state, edited)
    assert str(caught.value) == (
        "refused header 'X-Other': the environment's nginx map reads 'X-Debug-Replica' "
        "(load_balancer.header)"
    )


@pytest.mark.parametrize(
    ("lb", "env", "why"),
    [
        ({**NGINX, "kind": "haproxy"}, {}, "load_balancer.kind haproxy: only nginx is built"),
    ],
)
def test_what_is_not_built_is_unavailable_with_the_reason(
    tmp_path: Path, lb: dict[str, object] | None, env: dict[str, object], why: str
) -> None:
    state, settings = _state(tmp_path, lb, {}, **env)
    result = run(state, settings)
    assert result.status == "unavailable" and (result.reason or "").startswith(why)


def test_runbook_check_names_the_header_and_the_missing_settings(tmp_path: Path) -> None:
    from ladder.config import check_runbook

    lb = {k: v for k, v in NGINX.items() if k != "pid_file"}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"name": "prod", "load_balancer": lb}))
    runbook = {"name": "t", "environment": "env.yaml",
               "rungs": {"replica_app": {"header": "X-Other"}}}  # fmt: skip
    (tmp_path / "runbook.yaml").write_text(yaml.safe_dump(runbook))
    errors, _ = check_runbook(tmp_path / "runbook.yaml")
    assert any("rungs.replica_app.header: refused header 'X-Other'" in e for e in errors)
    assert any("load_balancer (nginx) needs pid_file" in e for e in errors)


def test_runbook_check_wants_a_route_to_attach_to_on_kubernetes(tmp_path: Path) -> None:
    from ladder.config import check_runbook

    kube = {"api_url": "https://k8s.invalid", "namespace": "shop", "deployment": "web",
            "token": {"env": "K8S_TOKEN"}}  # fmt: skip
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"name": "prod", "kubernetes": kube}))
    runbook = {"name": "t", "environment": "env.yaml", "rungs": {"replica_app": {}}}
    (tmp_path / "runbook.yaml").write_text(yaml.safe_dump(runbook))
    errors, _ = check_runbook(tmp_path / "runbook.yaml")
    assert errors == [f"{tmp_path / 'env.yaml'}: kubernetes needs gateway (the app's HTTPRoute) "
                      "or ingress (its Ingress) for rung 6 to route tagged requests"]  # fmt: skip


def test_a_sandbox_without_nginx_names_the_debian_package() -> None:
    from ladder.config import Environment
    from ladder.sandbox import nginx as sandbox_nginx

    why = "the sandbox has no load balancer: this machine lacks Debian package nginx-light"
    env = Environment(name="sandbox", sandbox=True).model_copy(
        update={"load_balancer": sandbox_nginx.load_balancer({"unavailable": why})}
    )
    incident = Incident(id="inc-1", title="t", started_at="2026-01-01T00:00:00Z",
                        ended_at="2026-01-01T01:00:00Z")  # fmt: skip
    result = run(ClimbState(incident, env, Path("rb.yaml"), owner="unit"), ReplicaAppSettings())
    assert (result.status, result.reason) == ("unavailable", why)

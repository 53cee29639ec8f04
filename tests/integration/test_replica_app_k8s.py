"""Rung 6 on Kubernetes against a local server that follows the Kubernetes API (the only stand-in
rung 6's tests use: no API server is installable here). The server validates every applied
object (kubernetes-validate; the Gateway API schema for HTTPRoutes) as the API would."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from servers.kubeapi import KubeAPI, validate_manifest

from ladder.config import KubernetesConfig
from ladder.errors import KubernetesError
from ladder.leases import LeaseLedger, LeaseState
from ladder.replica_app.kubernetes import open_k8s_route

pytestmark = pytest.mark.integration

TOKEN = "ab" * 16
NS = "shop"
APP = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "shop-web", "namespace": NS, "labels": {"app": "shop"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "shop"}}, "template": {
        "metadata": {"labels": {"app": "shop"}, "annotations": {"checksum": "x"}},
        "spec": {"containers": [{"name": "web", "image": "shop:1.2",
                                 "ports": [{"containerPort": 3000}],
                                 "env": [{"name": "LOG_LEVEL", "value": "info"}]}]}}},
}  # fmt: skip
ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    "metadata": {"name": "shop", "namespace": NS},
    "spec": {"parentRefs": [{"name": "public", "namespace": "gateways"}],
             "hostnames": ["shop.example.com"],
             "rules": [{"backendRefs": [{"name": "shop-web", "port": 80}]}]},
}  # fmt: skip
INGRESS = {
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    "metadata": {"name": "shop", "namespace": NS},
    "spec": {"ingressClassName": "nginx", "rules": [{"host": "shop.example.com", "http": {
        "paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": "shop-web", "port": {"number": 80}}}}]}}]},
}  # fmt: skip


@pytest.fixture
def cluster(kubeapi: KubeAPI, monkeypatch: pytest.MonkeyPatch) -> KubeAPI:
    monkeypatch.setenv("LADDER_TEST_KUBE_TOKEN", kubeapi.token)
    kubeapi.put(APP)
    kubeapi.put(ROUTE)
    kubeapi.put(INGRESS)
    return kubeapi


def _config(api: KubeAPI, **overrides: object) -> KubernetesConfig:
    fields = {"api_url": api.url, "namespace": NS, "deployment": "shop-web",
              "token": {"env": "LADDER_TEST_KUBE_TOKEN"}, "gateway": "shop"}  # fmt: skip
    return KubernetesConfig.model_validate({**fields, **overrides})


def _open(api: KubeAPI, ledger: LeaseLedger, tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    return open_k8s_route(
        _config(api, **overrides), "inc-7", {"LOG_LEVEL": "debug"}, "X-Debug-Replica",
        "debug_replica", TOKEN, ledger, "run-1", timedelta(minutes=5), tmp_path / "reports",
        ready_seconds=5,
    )  # fmt: skip


def test_apply_wait_ready_and_delete_on_revert(
    cluster: KubeAPI, ledger: LeaseLedger, tmp_path: Path
) -> None:
    opened = _open(cluster, ledger, tmp_path)

    name = "shop-web-debug-inc-7"
    deployment = cluster.get("Deployment", NS, name)
    service = cluster.get("Service", NS, name)
    route = cluster.get("HTTPRoute", NS, name)
    assert deployment and service and route
    assert deployment["status"]["readyReplicas"] == 1
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["replicas"] == 1 and pod["metadata"]["labels"]["version"] == "debug"
    assert "app" not in pod["metadata"]["labels"]  # the app's own Service never selects it
    assert pod["spec"]["containers"][0]["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == 3000
    assert route["spec"]["parentRefs"] == ROUTE["spec"]["parentRefs"]
    assert route["spec"]["hostnames"] == ["shop.example.com"]
    header, cookie = (rule["matches"][0]["headers"][0] for rule in route["spec"]["rules"])
    assert header == {"type": "Exact", "name": "X-Debug-Replica", "value": TOKEN}
    assert cookie["name"] == "Cookie" and f"debug_replica={TOKEN}" in cookie["value"]
    assert all(r["backendRefs"] == [{"name": name, "port": 80}] for r in route["spec"]["rules"])
    applies = [(p, q) for m, p, c, q in cluster.requests if m == "PATCH"]
    assert len(applies) == 3
    assert all("fieldManager=ladder" in q and "force=true" in q for _, q in applies)
    assert {c for m, _, c, _ in cluster.requests if m == "PATCH"} == {"application/apply-patch+yaml"}
    written = list(yaml.safe_load_all(opened.manifest_file.read_text()))
    assert [m["kind"] for m in written] == ["Deployment", "Service", "HTTPRoute"]
    for manifest in written:
        validate_manifest(manifest)
    assert ledger.get(opened.lease.id).state is LeaseState.ACTIVE

    lease = ledger.revert(opened.lease.id)

    assert lease.state is LeaseState.REVERTED
    assert lease.outcome == f"deleted HTTPRoute {name}, Service {name}, Deployment {name}"
    assert not any(cluster.get(k, NS, name) for k in ("Deployment", "Service", "HTTPRoute"))
    assert cluster.get("Deployment", NS, "shop-web") is not None  # the app is untouched
    assert ledger.revert(opened.lease.id).state is LeaseState.REVERTED  # idempotent


def test_the_ingress_nginx_fallback_is_a_canary_by_header(
    cluster: KubeAPI, ledger: LeaseLedger, tmp_path: Path
) -> None:
    opened = _open(cluster, ledger, tmp_path, gateway=None, ingress="shop")

    ingress = cluster.get("Ingress", NS, "shop-web-debug-inc-7")
    assert ingress is not None and opened.route_kind == "Ingress"
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/canary"] == "true"
    assert notes["nginx.ingress.kubernetes.io/canary-by-header"] == "X-Debug-Replica"
    assert notes["nginx.ingress.kubernetes.io/canary-by-header-value"] == TOKEN
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "shop-web-debug-inc-7", "port": {"number": 80}}
    ledger.revert(opened.lease.id)
    assert cluster.get("Ingress", NS, "shop-web-debug-inc-7") is None


def test_a_copy_that_never_gets_ready_is_deleted_and_said_in_one_line(
    cluster: KubeAPI, ledger: LeaseLedger, tmp_path: Path
) -> None:
    cluster.never_ready.add("shop-web-debug-inc-7")
    with pytest.raises(KubernetesError) as caught:
        _open(cluster, ledger, tmp_path)
    assert str(caught.value) == "Deployment shop/shop-web-debug-inc-7 is not ready after 5 s " \
        "(ready replicas: 0)"  # fmt: skip
    assert cluster.get("Deployment", NS, "shop-web-debug-inc-7") is None
    assert [lease.state for lease in ledger.list()] == [LeaseState.REVERTED]


def test_a_refused_token_creates_nothing_and_never_shows_the_token(
    cluster: KubeAPI, ledger: LeaseLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_TEST_KUBE_TOKEN", "wrong-token-value")
    with pytest.raises(KubernetesError) as caught:
        _open(cluster, ledger, tmp_path)
    assert str(caught.value) == "reading Deployment shop/shop-web: the API answered 401: Unauthorized"
    assert "wrong-token-value" not in str(caught.value)
    assert ledger.list() == [] and len(cluster.objects) == 3


def test_an_app_without_its_route_is_refused_before_anything_is_applied(
    cluster: KubeAPI, ledger: LeaseLedger, tmp_path: Path
) -> None:
    with pytest.raises(KubernetesError, match="HTTPRoute shop/nope not found"):
        _open(cluster, ledger, tmp_path, gateway="nope")
    assert not [r for r in cluster.requests if r[0] == "PATCH"] and ledger.list() == []


def test_the_rung_hands_over_the_copy_with_a_curl_line(
    cluster: KubeAPI, tmp_path: Path, ladder_home: Path
) -> None:
    """The rung's own runner, from a runbook: held as one lease, reverted by the run's end."""
    from ladder.config import load_runbook
    from ladder.incident import Incident
    from ladder.rungs import ClimbState
    from ladder.rungs.replica_app import ReplicaAppResult, ReplicaAppSettings, run

    env = {"name": "prod", "kubernetes": _config(cluster).model_dump(mode="json", exclude_none=True)}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env))
    runbook = {"name": "t", "environment": "env.yaml",
               "rungs": {"replica_app": {"env": {"LOG_LEVEL": "debug"}, "ready_seconds": 5}}}  # fmt: skip
    (tmp_path / "runbook.yaml").write_text(yaml.safe_dump(runbook))
    loaded = load_runbook(tmp_path / "runbook.yaml")
    incident = Incident(id="inc-9", title="t", started_at="2026-01-01T00:00:00Z",
                        ended_at="2026-01-01T01:00:00Z")  # fmt: skip
    settings = loaded.runbook.rungs.settings("replica_app")
    assert isinstance(settings, ReplicaAppSettings)

    result = run(ClimbState(incident, loaded.environment, loaded.path, owner="run-9"), settings)

    assert isinstance(result, ReplicaAppResult) and result.status == "done", result.reason
    assert result.curl == f"curl -H 'X-Debug-Replica: {result.token}' https://shop.example.com/"
    assert [h.use for h in result.held] == [result.curl]
    assert (ladder_home / "reports" / "shop-web-debug-inc-9.yaml").exists()
    assert cluster.get("HTTPRoute", NS, "shop-web-debug-inc-9") is not None
    ledger = LeaseLedger()
    assert [lease.state for lease in ledger.revert_owner("run-9")] == [LeaseState.REVERTED]
    assert cluster.get("Deployment", NS, "shop-web-debug-inc-9") is None
    ledger.close()


def test_an_expired_copy_is_deleted_by_the_janitors_revert(
    cluster: KubeAPI, ledger: LeaseLedger, tmp_path: Path
) -> None:
    """What the janitor does for a run that died holding the copy: revert the expired lease."""
    import time

    opened = open_k8s_route(
        _config(cluster), "inc-7", {}, "X-Debug-Replica", "debug_replica", TOKEN, ledger,
        "dead-run", timedelta(seconds=1), tmp_path, ready_seconds=5,
    )  # fmt: skip
    while not ledger.get(opened.lease.id).is_expired():
        time.sleep(0.1)

    [lease] = ledger.revert_expired()

    assert lease.id == opened.lease.id and lease.state is LeaseState.REVERTED
    assert not any(cluster.get(k, NS, opened.name) for k in ("Deployment", "Service", "HTTPRoute"))

"""Rung 6's Kubernetes manifests, validated offline: kubernetes-validate (strict) for the built-in
kinds, and the Gateway API HTTPRoute schema in tests/fixtures/kubernetes (kubernetes-validate
ships none for Gateway API)."""

from __future__ import annotations

import copy

import pytest
from servers.kubeapi import validate_manifest

from ladder.errors import KubernetesError
from ladder.replica_app.manifests import debug_name, debug_objects

TOKEN = "cd" * 16
APP = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "shop-web", "namespace": "shop", "labels": {"app": "shop"}},
    "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "shop"}}, "template": {
        "metadata": {"labels": {"app": "shop", "tier": "web"}},
        "spec": {"containers": [
            {"name": "web", "image": "shop:9", "ports": [{"containerPort": 3000}],
             "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "RAILS_ENV", "value": "production"}]},
            {"name": "sidecar", "image": "proxy:1"}]}}},
}  # fmt: skip
ROUTE = {"metadata": {"name": "shop"}, "spec": {
    "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
    "hostnames": ["shop.example.com"]}}  # fmt: skip
INGRESS = {"metadata": {"name": "shop"}, "spec": {"ingressClassName": "nginx", "rules": [
    {"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
     "backend": {"service": {"name": "shop-web", "port": {"number": 80}}}}]}}]}}  # fmt: skip


@pytest.mark.parametrize("route", ["gateway", "ingress"])
def test_every_manifest_validates(route: str) -> None:
    objects = debug_objects(APP, "Checkout 500s #7", {"LOG_LEVEL": "debug"}, "X-Debug-Replica",
                            "debug_replica", TOKEN, ROUTE if route == "gateway" else None,
                            INGRESS if route == "ingress" else None)  # fmt: skip
    assert [o["kind"] for o in objects] == [
        "Deployment", "Service", "HTTPRoute" if route == "gateway" else "Ingress"
    ]
    for manifest in objects:
        validate_manifest(manifest)
    env = objects[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "RAILS_ENV", "value": "production"},
                   {"name": "LOG_LEVEL", "value": "debug"}]  # fmt: skip
    assert APP["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "info"


@pytest.mark.parametrize(
    ("kind", "spoil"),
    [
        ("Deployment", lambda m: m["spec"].update(replicas="one")),
        ("Service", lambda m: m["spec"].update(selectr={"app": "x"})),  # a typo: strict refuses it
        ("HTTPRoute", lambda m: m["spec"]["rules"][0]["matches"][0]["headers"][0].update(type="Prefix")),
        ("HTTPRoute", lambda m: m["spec"].update(backend="x")),
    ],
)
def test_the_validators_refuse_a_spoiled_manifest(kind: str, spoil) -> None:  # type: ignore[no-untyped-def]
    objects = debug_objects(APP, "i", {}, "X-Debug-Replica", "debug_replica", TOKEN, ROUTE)
    manifest = copy.deepcopy(next(o for o in objects if o["kind"] == kind))
    spoil(manifest)
    with pytest.raises(ValueError, match=kind):
        validate_manifest(manifest)


def test_names_are_dns_labels_and_tokens_hex() -> None:
    assert debug_name("shop-web", "x" * 80) == ("shop-web-debug-" + "x" * 80)[:63]
    with pytest.raises(KubernetesError, match="routing token"):
        debug_objects(APP, "i", {}, "X-Debug-Replica", "debug_replica", "not hex!", ROUTE)
    with pytest.raises(KubernetesError, match=r"gateway .* or ingress"):
        debug_objects(APP, "i", {}, "X-Debug-Replica", "debug_replica", TOKEN)


def test_the_tagged_route_repeats_every_match_of_the_apps_route_plus_the_token() -> None:
    """Gateway API prefers a longer path first: a tagged '/' would lose to the app's
    '/checkout', so each of the app's matches is repeated with one more header match."""
    app_route = {"metadata": {"name": "shop"}, "spec": {"parentRefs": [{"name": "public"}], "rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/checkout"}},
                     {"path": {"type": "Exact", "value": "/health"}, "method": "GET"}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                      "headers": [{"type": "Exact", "name": "X-Api", "value": "2"}]}]},
        {"backendRefs": [{"name": "shop-web", "port": 80}]},  # no matches: every path
    ]}}  # fmt: skip
    objects = debug_objects(APP, "i", {}, "X-Debug-Replica", "debug_replica", TOKEN, app_route)
    route = objects[-1]
    validate_manifest(route)
    by_header, by_cookie = route["spec"]["rules"]
    paths = [(m["path"]["type"], m["path"]["value"]) for m in by_header["matches"]]
    assert paths == [("PathPrefix", "/checkout"), ("Exact", "/health"), ("PathPrefix", "/api"),
                     ("PathPrefix", "/")]  # fmt: skip
    for rule, name in ((by_header, "X-Debug-Replica"), (by_cookie, "Cookie")):
        for match, app_match in zip(rule["matches"], [
            {"headers": []}, {"headers": [], "method": "GET"},
            {"headers": [{"type": "Exact", "name": "X-Api", "value": "2"}]}, {"headers": []},
        ], strict=True):  # fmt: skip
            assert match["headers"][:-1] == app_match["headers"]
            assert match["headers"][-1]["name"] == name and TOKEN in match["headers"][-1]["value"]
            assert match.get("method") == app_match.get("method")

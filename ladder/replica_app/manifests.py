"""Rung 6 on Kubernetes as manifests: values built from the app's own objects, no I/O.

From the app's Deployment, :func:`debug_objects` makes

- a Deployment ``<app>-debug-<incident>``: the app's pod template with **its own labels only**
  (``app.kubernetes.io/name: <name>``, ``version: debug``, ``ladder.dev/incident``), so the app's
  Service never selects it; one replica; the runbook's extra env added to every container;
- a Service of the same name selecting exactly those labels, on the first container port;
- a Gateway API ``HTTPRoute`` of the same name, attached to the app route's parents and
  hostnames, whose rules repeat every match of the app's route plus ``<header>: <token>``
  (Exact, core) or the cookie ``<cookie>=<token>`` (a RegularExpression on ``Cookie``, extended
  support): for the same path, the match with more header matches takes precedence across
  routes, so tagged requests reach the copy on every path the app serves, others never;
- or, as a fallback without Gateway API (ingress-nginx is retired), a canary ``Ingress`` copying
  the app's rules with ``canary-by-header`` / ``canary-by-header-value`` annotations.

Names are DNS labels (at most 63 characters, checked); tokens are hex.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from ladder.errors import KubernetesError

__all__ = ["Manifest", "canary_ingress", "debug_deployment", "debug_name", "debug_objects",
           "debug_route", "debug_service", "kind_path"]  # fmt: skip

Manifest = dict[str, Any]
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "Service": "/api/v1/namespaces/{ns}/services/{name}",
    "HTTPRoute": "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/{name}",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}",
}


def kind_path(kind: str, namespace: str, name: str) -> str:
    """The API path of one object (the kinds rung 6 touches)."""
    if kind not in PATHS:
        raise KubernetesError(f"rung 6 does not touch {kind} objects")
    return PATHS[kind].format(ns=namespace, name=name)


def debug_name(app: str, incident: str) -> str:
    """``<app>-debug-<incident>`` as a DNS label (incident slugged, the whole cut to 63).

    >>> debug_name("shop-web", "Sandbox Checkout/500")
    'shop-web-debug-sandbox-checkout-500'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", incident.lower()).strip("-")
    name = f"{app}-debug-{slug}"[:63].rstrip("-")
    if not _LABEL.match(name):
        raise KubernetesError(f"{name!r} is not a valid Kubernetes name")
    return name


def _labels(name: str, incident: str) -> dict[str, str]:
    slug = re.sub(r"[^a-z0-9]+", "-", incident.lower()).strip("-")[:63].strip("-") or "incident"
    return {"app.kubernetes.io/name": name, "version": "debug", "ladder.dev/incident": slug}


def debug_deployment(
    app: Manifest, name: str, incident: str, extra_env: Mapping[str, str]
) -> Manifest:
    """The debug copy of the app's Deployment ``app`` (as the API returned it)."""
    labels = _labels(name, incident)
    template = copy.deepcopy(app["spec"]["template"])
    template.setdefault("metadata", {})["labels"] = dict(labels)
    template["metadata"].pop("annotations", None)
    for container in template["spec"].get("containers", []):
        env = [e for e in container.get("env", []) if e.get("name") not in extra_env]
        container["env"] = env + [{"name": k, "value": v} for k, v in extra_env.items()]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": app["metadata"]["namespace"], "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)}, "template": template},
    }


def _first_port(deployment: Manifest) -> int:
    for container in deployment["spec"]["template"]["spec"].get("containers", []):
        for port in container.get("ports", []):
            return int(port["containerPort"])
    raise KubernetesError(
        f"Deployment {deployment['metadata']['name']} declares no container port to route to"
    )


def debug_service(deployment: Manifest, port: int = 80) -> Manifest:
    """A Service selecting exactly the debug Deployment's pods."""
    meta = deployment["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta["labels"]),
        },
        "spec": {
            "selector": dict(deployment["spec"]["selector"]["matchLabels"]),
            "ports": [{"name": "http", "port": port, "targetPort": _first_port(deployment)}],
        },
    }


def _check_token(token: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{16,64}", token):
        raise KubernetesError("a routing token must be 16-64 lowercase hex characters")


def _app_matches(app_route: Manifest) -> list[dict[str, Any]]:
    """Every match of the app route's rules (at most 64), so that each tagged match is the same
    one plus a header: Gateway API prefers, for the same path, the match with more header
    matches, so a more specific path of the app's (``/checkout``) cannot win over a tagged
    ``/`` prefix."""
    found = [copy.deepcopy(m) for rule in app_route["spec"].get("rules", [])
             for m in rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]]
    unique = [m for i, m in enumerate(found) if m not in found[:i]]
    if len(unique) > 64:
        raise KubernetesError(
            f"HTTPRoute {app_route['metadata']['name']} has {len(unique)} matches: at most 64 "
            "can be copied into one tagged rule"
        )
    return unique or [{"path": {"type": "PathPrefix", "value": "/"}}]


def debug_route(
    app_route: Manifest, service: Manifest, header: str, cookie: str, token: str
) -> Manifest:
    """An HTTPRoute on the app route's parents/hostnames sending only tagged requests to
    ``service``: each of the app's matches, plus the token's header (one rule) or cookie (the
    other)."""
    _check_token(token)
    meta = service["metadata"]
    backend = [{"name": meta["name"], "port": service["spec"]["ports"][0]["port"]}]
    by_header = {"type": "Exact", "name": header, "value": token}
    by_cookie = {"type": "RegularExpression", "name": "Cookie",
                 "value": f"(^|.*; ?){re.escape(cookie)}={token}(;.*|$)"}  # fmt: skip
    tagged = [
        {"matches": [{**m, "headers": [*m.get("headers", []), extra]} for m in _app_matches(app_route)],
         "backendRefs": backend}
        for extra in (by_header, by_cookie)
    ]  # fmt: skip
    spec: dict[str, Any] = {
        "parentRefs": copy.deepcopy(app_route["spec"].get("parentRefs", [])),
        "rules": tagged,
    }
    if app_route["spec"].get("hostnames"):
        spec["hostnames"] = list(app_route["spec"]["hostnames"])
    if not spec["parentRefs"]:
        raise KubernetesError(f"HTTPRoute {app_route['metadata']['name']} has no parentRefs")
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "labels": dict(meta["labels"])},
            "spec": spec}  # fmt: skip


def canary_ingress(app_ingress: Manifest, service: Manifest, header: str, token: str) -> Manifest:
    """The ingress-nginx fallback: the app's Ingress rules as a canary by header value."""
    _check_token(token)
    meta = service["metadata"]
    port = service["spec"]["ports"][0]["port"]
    rules = copy.deepcopy(app_ingress["spec"].get("rules", []))
    for rule in rules:
        for path in rule.get("http", {}).get("paths", []):
            path["backend"] = {"service": {"name": meta["name"], "port": {"number": port}}}
    spec: dict[str, Any] = {"rules": rules}
    if app_ingress["spec"].get("ingressClassName"):
        spec["ingressClassName"] = app_ingress["spec"]["ingressClassName"]
    annotations = {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-by-header": header,
        "nginx.ingress.kubernetes.io/canary-by-header-value": token,
    }
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "labels": dict(meta["labels"]), "annotations": annotations},
            "spec": spec}  # fmt: skip


def debug_objects(
    app: Manifest,
    incident: str,
    extra_env: Mapping[str, str],
    header: str,
    cookie: str,
    token: str,
    app_route: Manifest | None = None,
    app_ingress: Manifest | None = None,
) -> list[Manifest]:
    """Deployment, Service, then the HTTPRoute (or the canary Ingress without one)."""
    if app_route is None and app_ingress is None:
        raise KubernetesError(
            "kubernetes needs gateway (the app's HTTPRoute) or ingress to route tagged requests"
        )
    deployment = debug_deployment(app, debug_name(app["metadata"]["name"], incident), incident,
                                  extra_env)  # fmt: skip
    service = debug_service(deployment)
    route = (
        debug_route(app_route, service, header, cookie, token)
        if app_route is not None
        else canary_ingress(app_ingress, service, header, token)  # type: ignore[arg-type]
    )
    return [deployment, service, route]

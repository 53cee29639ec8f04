"""Rung 6 on Kubernetes: a debug copy of the app's Deployment, its Service, and a route for
tagged requests only (Gateway API HTTPRoute, or an ingress-nginx canary as a fallback).

:func:`open_k8s_route` reads the app's Deployment (and its HTTPRoute or Ingress), builds the
manifests (:mod:`ladder.replica_app.manifests`), writes them to the report directory, takes one
``kubernetes_objects`` lease naming all of them *before* the first apply, applies them with
server-side apply, and waits until the debug Deployment is ready. On any failure the lease is
reverted (every object deleted) before the error goes up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ladder.connectors.kubernetes import KubeConnection
from ladder.connectors.kubernetes_leases import KubeObject, KubeObjectsUndo
from ladder.errors import KubernetesError
from ladder.leases import Lease, LeaseLedger, leased
from ladder.replica_app.manifests import Manifest, debug_objects

if TYPE_CHECKING:
    from ladder.config import KubernetesConfig

__all__ = ["OpenedK8sRoute", "open_k8s_route"]


@dataclass
class OpenedK8sRoute:
    objects: list[Manifest]
    lease: Lease
    manifest_file: Path

    @property
    def name(self) -> str:
        return str(self.objects[0]["metadata"]["name"])

    @property
    def route_kind(self) -> str:
        return str(self.objects[-1]["kind"])


def open_k8s_route(
    cfg: KubernetesConfig,
    incident: str,
    extra_env: Mapping[str, str],
    header: str,
    cookie: str,
    token: str,
    ledger: LeaseLedger,
    owner: str,
    ttl: timedelta,
    report_dir: Path,
    ready_seconds: float = 300,
) -> OpenedK8sRoute:
    """See the module docstring; ``cfg`` is the environment's ``kubernetes`` section."""
    ns = cfg.namespace
    with KubeConnection(cfg.api_url, cfg.token, cfg.ca_file) as kube:
        app = kube.get("Deployment", ns, cfg.deployment)
        if app is None:
            raise KubernetesError(f"Deployment {ns}/{cfg.deployment} not found")
        route = ingress = None
        if cfg.gateway:
            route = kube.get("HTTPRoute", ns, cfg.gateway)
            if route is None:
                raise KubernetesError(f"HTTPRoute {ns}/{cfg.gateway} not found")
        elif cfg.ingress:
            ingress = kube.get("Ingress", ns, cfg.ingress)
            if ingress is None:
                raise KubernetesError(f"Ingress {ns}/{cfg.ingress} not found")
        objects = debug_objects(app, incident, extra_env, header, cookie, token, route, ingress)
        name = objects[0]["metadata"]["name"]
        report_dir.mkdir(parents=True, exist_ok=True)
        manifest_file = report_dir / f"{name}.yaml"
        manifest_file.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        undo = KubeObjectsUndo(
            api_url=cfg.api_url, token=cfg.token, ca_file=cfg.ca_file,
            objects=[KubeObject(kind=o["kind"], namespace=ns, name=o["metadata"]["name"])
                     for o in objects],
        )  # fmt: skip
        with leased(
            ledger, "kubernetes_objects", f"{name} in {ns} ({', '.join(o['kind'] for o in objects)})",
            owner, ttl, undo.model_dump(mode="json"),
            description=f"debug copy of {cfg.deployment}, tagged requests only",
        ) as lease:  # fmt: skip
            for manifest in objects:
                kube.apply(manifest)
            kube.wait_ready(ns, name, timeout=ready_seconds)
    return OpenedK8sRoute(objects, lease, manifest_file)

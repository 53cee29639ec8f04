"""A local HTTP server that follows the Kubernetes API for the objects rung 6 touches: ``kubeapi``.

No real API server is installable here, so this stands in for one (the only mock rung 6's tests
use). It answers on 127.0.0.1 like the API does for Deployments (``apps/v1``), Services
(``v1``), Ingresses (``networking.k8s.io/v1``) and HTTPRoutes (``gateway.networking.k8s.io/v1``):

- ``GET`` an object, 404 ``Status`` (``reason: NotFound``) when there is none;
- ``PATCH`` with ``Content-Type: application/apply-patch+yaml`` and a ``fieldManager`` is
  server-side apply (creates or updates; ``metadata.generation`` moves when the spec changes);
  any other patch type is 415, a missing field manager 422; the object is validated first, as
  the API does (``kubernetes-validate`` for built-in kinds, the Gateway API schema in
  ``tests/fixtures/kubernetes`` for HTTPRoutes) and refused with 422 ``Invalid``;
- ``DELETE`` removes it (200 ``Status`` Success), 404 when absent;
- every request needs ``Authorization: Bearer <token>`` (401 otherwise).

A Deployment's controller is simulated: from the second read after an apply its status says
the rollout is observed and ``spec.replicas`` are ready, unless its name is in ``never_ready``.
Every request is recorded in ``requests`` as ``(method, path, content_type, query)``.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = ["KubeAPI", "kubeapi", "validate_manifest"]

TOKEN = "test-kube-token"
SCHEMA = Path(__file__).parents[1] / "fixtures" / "kubernetes" / "httproute-v1.schema.json"
KINDS = {
    ("apps/v1", "deployments"): ("apps/v1", "Deployment"),
    ("v1", "services"): ("v1", "Service"),
    ("networking.k8s.io/v1", "ingresses"): ("networking.k8s.io/v1", "Ingress"),
    ("gateway.networking.k8s.io/v1", "httproutes"): ("gateway.networking.k8s.io/v1", "HTTPRoute"),
}


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Raise ValueError when ``manifest`` is not a valid object of its kind (strict)."""
    import jsonschema
    import kubernetes_validate

    if manifest.get("kind") == "HTTPRoute":
        try:
            jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))
        except jsonschema.ValidationError as exc:
            raise ValueError(f"HTTPRoute: {exc.message}") from None
        return
    try:
        kubernetes_validate.validate(manifest, "1.33.0", strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise ValueError(f"{manifest.get('kind')}: {exc.message}") from None


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure" if code >= 400 else
            "Success", "code": code, "reason": reason, "message": message}  # fmt: skip


@dataclass
class KubeAPI:
    """The server's state: objects by path, requests seen, Deployments that never get ready."""

    url: str = ""
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str, str]] = field(default_factory=list)
    never_ready: set[str] = field(default_factory=set)
    token: str = TOKEN
    _reads: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, manifest: dict[str, Any]) -> None:
        """Store an object as if it existed before the test (the app's own)."""
        meta = manifest["metadata"]
        path = _path(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        obj = copy.deepcopy(manifest)
        obj["metadata"].setdefault("generation", 1)
        self.objects[path] = obj

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        api = {"Deployment": "apps/v1", "Service": "v1", "Ingress": "networking.k8s.io/v1",
               "HTTPRoute": "gateway.networking.k8s.io/v1"}[kind]  # fmt: skip
        return self.objects.get(_path(api, kind, namespace, name))

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        path, query = split.path, parse_qs(split.query)
        self.requests.append((method, path, headers.get("Content-Type", ""), split.query))
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _status(401, "Unauthorized", "Unauthorized")
        kind = _kind(path)
        if kind is None:
            return 404, _status(404, "NotFound", f"the server could not find {path}")
        with self.lock:
            if method == "GET":
                return self._get(path)
            if method == "PATCH":
                return self._apply(path, kind, headers.get("Content-Type", ""), query, body)
            if method == "DELETE":
                if self.objects.pop(path, None) is None:
                    return 404, _status(404, "NotFound", f"{kind[1]} not found")
                return 200, _status(200, "", "deleted")
        return 405, _status(405, "MethodNotAllowed", method)

    def _get(self, path: str) -> tuple[int, Any]:
        obj = self.objects.get(path)
        if obj is None:
            return 404, _status(404, "NotFound", f"{path.rsplit('/', 1)[-1]} not found")
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] not in self.never_ready:
            self._reads[path] = self._reads.get(path, 0) + 1
            if self._reads[path] >= 2:  # the controller caught up
                replicas = obj["spec"].get("replicas", 1)
                obj["status"] = {"observedGeneration": obj["metadata"]["generation"],
                                 "replicas": replicas, "readyReplicas": replicas,
                                 "updatedReplicas": replicas}  # fmt: skip
        return 200, obj

    def _apply(
        self, path: str, kind: tuple[str, str], ctype: str, query: dict[str, list[str]],
        body: bytes,
    ) -> tuple[int, Any]:  # fmt: skip
        if ctype != "application/apply-patch+yaml":
            return 415, _status(415, "UnsupportedMediaType", f"{ctype} is not apply")
        if not query.get("fieldManager"):
            return 422, _status(422, "Invalid", "fieldManager is required for apply patch")
        manifest = json.loads(body)  # JSON is YAML
        if (manifest.get("apiVersion"), manifest.get("kind")) != kind or \
                manifest["metadata"]["name"] != path.rsplit("/", 1)[-1]:  # fmt: skip
            return 400, _status(400, "BadRequest", "the object does not match the path")
        try:
            validate_manifest(manifest)
        except ValueError as exc:
            return 422, _status(422, "Invalid", str(exc))
        old = self.objects.get(path)
        new = copy.deepcopy(manifest)
        generation = 1 if old is None else old["metadata"]["generation"] + (
            old.get("spec") != new.get("spec"))  # fmt: skip
        new["metadata"].update(generation=generation, uid=(old or {}).get("metadata", {}).get(
            "uid", str(uuid.uuid4())))  # fmt: skip
        self._reads.pop(path, None)
        self.objects[path] = new
        return (201 if old is None else 200), new


def _kind(path: str) -> tuple[str, str] | None:
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 6:
        api, rest = parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) == 7:
        api, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    if rest[0] != "namespaces":
        return None
    return KINDS.get((api, rest[2]))


def _path(api: str, kind: str, namespace: str, name: str) -> str:
    plural = next(p for (a, p), (_, k) in KINDS.items() if a == api and k == kind)
    prefix = "/api/v1" if api == "v1" else f"/apis/{api}"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"


@pytest.fixture
def kubeapi() -> Iterator[KubeAPI]:
    """The Kubernetes API stand-in on a free loopback port, for one test."""
    state = KubeAPI()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            code, data = state.handle(self.command, self.path, self.headers,
                                      self.rfile.read(length))  # fmt: skip
            payload = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

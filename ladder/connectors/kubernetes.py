"""The Kubernetes API with the official ``kubernetes`` client: read, server-side apply, delete.

Lifecycle of a :class:`KubeConnection` (the shape of :mod:`ladder.connectors.base`):
``KubeConnection(api_url, token_ref, ca_file)`` stores them, no I/O; the first call builds the
client's ``ApiClient`` with the bearer token resolved from its secret reference; ``close()``
releases its connection pool (safe twice); ``with`` closes on the way out.

Only the objects rung 6 touches are reached (:data:`ladder.replica_app.manifests.PATHS`). ``apply``
is server-side apply (``PATCH`` with ``application/apply-patch+yaml``, ``fieldManager=ladder``,
``force=true``); ``delete`` treats 404 as done. Failures are one :class:`KubernetesError` line
naming the object and the API's own ``message``, never the token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ladder.connectors.base import Connection, one_line
from ladder.errors import KubernetesError
from ladder.replica_app.manifests import Manifest, kind_path

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from ladder.secrets import SecretRef

__all__ = ["FIELD_MANAGER", "KubeConnection"]

FIELD_MANAGER = "ladder"


class KubeConnection(Connection["ApiClient"]):
    """One Kubernetes API server, reached with a bearer token (see the module docstring)."""

    def __init__(self, api_url: str, token: SecretRef, ca_file: str | None = None) -> None:
        super().__init__()
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.ca_file = ca_file

    def _open(self) -> ApiClient:
        from kubernetes.client import ApiClient, Configuration

        from ladder.secrets import resolve

        config = Configuration(host=self.api_url)
        config.api_key = {"BearerToken": resolve(self.token)}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        if self.ca_file:
            config.ssl_ca_cert = self.ca_file
        return ApiClient(config)

    def _close(self, handle: ApiClient) -> None:
        handle.close()

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        import urllib3

        try:
            yield
        except KubernetesError:
            raise
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise KubernetesError(f"{doing} on {self.api_url}: {one_line(exc)}") from None

    def _call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json",
        query: str = "",
    ) -> tuple[int, dict[str, Any]]:  # fmt: skip
        api = self.open()
        headers = {"Accept": "application/json", "Content-Type": content_type}
        api.update_params_for_auth(headers, None, ["BearerToken"], path, method, body)
        with self.errors(f"{method} {path}"):
            res = api.call_api(method, f"{self.api_url}{path}{query}", header_params=headers,
                               body=body, _request_timeout=30)  # fmt: skip
            raw = res.read()
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = {"message": raw[:200].decode(errors="replace")}
        return res.status, data

    def _fail(self, doing: str, status: int, data: dict[str, Any]) -> KubernetesError:
        why = one_line(str(data.get("message") or data.get("reason") or "no message"))
        return KubernetesError(f"{doing}: the API answered {status}: {why}")

    def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """The object, or None when there is none."""
        status, data = self._call("GET", kind_path(kind, namespace, name))
        if status == 404:
            return None
        if status != 200:
            raise self._fail(f"reading {kind} {namespace}/{name}", status, data)
        return data

    def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply of ``manifest``; the object as the server now has it."""
        meta = manifest["metadata"]
        path = kind_path(manifest["kind"], meta["namespace"], meta["name"])
        status, data = self._call(
            "PATCH", path, manifest, "application/apply-patch+yaml",
            f"?fieldManager={FIELD_MANAGER}&force=true",
        )  # fmt: skip
        if status not in (200, 201):
            raise self._fail(f"applying {manifest['kind']} {meta['name']}", status, data)
        return data

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete the object (foreground); False when it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        status, data = self._call("DELETE", kind_path(kind, namespace, name), body)
        if status == 404:
            return False
        if status not in (200, 202):
            raise self._fail(f"deleting {kind} {namespace}/{name}", status, data)
        return True

    def wait_ready(self, namespace: str, name: str, timeout: float = 300) -> Manifest:
        """Poll the Deployment until its rollout is observed and a replica is ready."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while True:
            found = self.get("Deployment", namespace, name)
            if found is None:
                raise KubernetesError(f"Deployment {namespace}/{name} disappeared while waiting")
            status = found.get("status") or {}
            generation = found["metadata"].get("generation", 0)
            if (status.get("observedGeneration", 0) >= generation
                    and status.get("readyReplicas", 0) >= 1
                    and status.get("updatedReplicas", 0) >= 1):  # fmt: skip
                return found
            if time.monotonic() > deadline:
                raise KubernetesError(
                    f"Deployment {namespace}/{name} is not ready after {timeout:.0f} s "
                    f"(ready replicas: {status.get('readyReplicas', 0)})"
                )
            time.sleep(1)

"""The lease kind of rung 6 on Kubernetes: the debug objects Ladder applied, undone by deleting
them (route first, then the Service, then the Deployment). Taken before the first apply, so it
names every object Ladder is about to create; deleting one that is not there is a success.

The janitor finds it by importing :data:`ladder.leases.UNDO_PACKAGES`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ladder.connectors.kubernetes import KubeConnection
from ladder.leases import register_undo
from ladder.secrets import SecretRef

__all__ = ["KubeObject", "KubeObjectsUndo"]


class KubeObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    namespace: str
    name: str


class KubeObjectsUndo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_url: str
    token: SecretRef
    ca_file: str | None = None
    objects: list[KubeObject]


@register_undo("kubernetes_objects", payload=KubeObjectsUndo)
def _delete_objects(payload: dict[str, Any]) -> str:
    spec = KubeObjectsUndo.model_validate(payload)
    deleted, gone = [], []
    with KubeConnection(spec.api_url, spec.token, spec.ca_file) as kube:
        for obj in reversed(spec.objects):
            label = f"{obj.kind} {obj.name}"
            (deleted if kube.delete(obj.kind, obj.namespace, obj.name) else gone).append(label)
    out = f"deleted {', '.join(deleted)}" if deleted else "nothing left to delete"
    return out + (f" ({', '.join(gone)} already gone)" if gone and deleted else "")

"""The lease kinds of rung 6 on VMs: the debug replica's process, and nginx's route to it.

Both are taken *before* their change, undone on the host again (over SSH with the config in the
payload, or this machine) by the run that took them or by the janitor, and both are idempotent:

- ``replica_process``: stop the process started in the payload's run directory, by PID, only if
  it still carries the payload's marker (see :mod:`ladder.connectors.app_process`).
- ``nginx_route``: if the include still holds exactly what Ladder wrote, put back the bytes it
  held before (or no file, if there was none); if someone changed it since, take out only this
  route's block. Then test the configuration, reload nginx, and probe until a tagged request no
  longer reaches the replica. An include that no longer holds the block needs no reload.

The janitor finds them by importing :data:`ladder.leases.UNDO_PACKAGES`.
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ladder.connectors import app_process, nginx
from ladder.connectors.hosts import HostRef
from ladder.errors import RoutingError
from ladder.leases import register_undo

__all__ = ["NginxRouteUndo", "ProbeSpec", "ReplicaProcessUndo"]


class ReplicaProcessUndo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: HostRef
    run_dir: str
    marker: str = Field(pattern=r"^[0-9a-f]{8,32}$")


class ProbeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    path: str = "/"
    header: str
    cookie: str
    token: str = Field(pattern=r"^[0-9a-f]{16,64}$")

    def probe(self) -> nginx.Probe:
        return nginx.Probe(self.url, self.path, self.header, self.cookie)


class NginxRouteUndo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: HostRef
    route_id: str
    include: str
    previous: str | None = Field(description="base64 of the include before; None: no file")
    written: str = Field(description="base64 of the include as Ladder wrote it")
    pid_file: str
    test_command: list[str] | None = None
    probe: ProbeSpec | None = None


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


@register_undo("replica_process", payload=ReplicaProcessUndo)
def _stop_replica(payload: dict[str, Any]) -> str:
    spec = ReplicaProcessUndo.model_validate(payload)
    host = spec.host.open()
    try:
        return app_process.stop(host, spec.run_dir, spec.marker)
    finally:
        host.close()


@register_undo("nginx_route", payload=NginxRouteUndo)
def _remove_route(payload: dict[str, Any]) -> str:
    spec = NginxRouteUndo.model_validate(payload)
    host = spec.host.open()
    try:
        current = nginx.read_bytes(host, spec.include)
        written = base64.b64decode(spec.written)
        if current == written:
            restored = None if spec.previous is None else base64.b64decode(spec.previous)
            how = "restored the include as it was"
        elif current is None:
            return f"{spec.include} is gone: route {spec.route_id} went with it"
        else:
            restored = nginx.without_block(current, spec.route_id)
            if restored == current:
                return f"route {spec.route_id} was not in {spec.include} any more"
            how = "took the route's block out of the include (someone changed it since)"
        nginx.write_bytes(host, spec.include, restored)
        pid = nginx.reload(host, spec.pid_file, spec.test_command)
    finally:
        host.close()
    outcome = f"{how}, reloaded nginx (pid {pid})"
    if spec.probe is not None:
        try:
            nginx.wait_routed(spec.probe.probe(), spec.probe.token, None, timeout=30)
            outcome += "; a tagged request reaches the app again"
        except RoutingError as exc:
            if "probe of" not in str(exc):
                raise
            outcome += f"; not probed ({exc})"
    return outcome

"""The lease kinds of rung 4: a tracer attached to a process, a probe installed in it.

Both are undone on the host again (over SSH with the config in the payload, or this machine), by
the run that took them or by the janitor, and both are idempotent:

- ``rbtrace_tracer``: SIGINT every rbtrace client attached to the process (they detach), SIGKILL
  one that does not stop and remove the socket it leaves (``/tmp/rbtrace-PID.sock``), remove the
  tracer's output file. Taken before the tracer starts, so it names the process, not the tracer.
- ``rbtrace_probe``: load the probe's reviewed undo file into the process (``rbtrace -e 'load
  ...'``), then remove the uploaded files. A process that is gone needs no undo.

The janitor finds them by importing :data:`ladder.leases.UNDO_PACKAGES`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ladder.connectors import rbtrace
from ladder.connectors.hosts import HostRef, alive
from ladder.errors import RbtraceError
from ladder.leases import register_undo

__all__ = ["ProbeUndo", "TracerUndo"]


class TracerUndo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: HostRef
    target_pid: int
    output: str


class ProbeUndo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: HostRef
    target_pid: int
    probe: str
    undo_file: str
    files: list[str]


@register_undo("rbtrace_tracer", payload=TracerUndo)
def _detach_tracer(payload: dict[str, Any]) -> str:
    spec = TracerUndo.model_validate(payload)
    host = spec.host.open()
    try:
        stopped = rbtrace.detach_all(host, spec.target_pid)
        host.run(["rm", "-f", "--", spec.output], timeout=30)
        left = rbtrace.tracer_clients(host, spec.target_pid)
        if left:
            raise RbtraceError(
                f"{host.label}: rbtrace pid {', '.join(map(str, left))} is still attached to "
                f"pid {spec.target_pid}"
            )
    finally:
        host.close()
    if stopped:
        return f"stopped {stopped} tracer(s) attached to pid {spec.target_pid} (SIGINT)"
    return f"no tracer attached to pid {spec.target_pid} any more"


@register_undo("rbtrace_probe", payload=ProbeUndo)
def _undo_probe(payload: dict[str, Any]) -> str:
    spec = ProbeUndo.model_validate(payload)
    host = spec.host.open()
    try:
        if not alive(host, spec.target_pid):
            outcome = f"pid {spec.target_pid} is gone: probe {spec.probe} went with it"
        else:
            rbtrace.load_file(host, spec.target_pid, spec.undo_file)
            outcome = f"probe {spec.probe} undone in pid {spec.target_pid}"
        host.run(["rm", "-f", "--", *spec.files], timeout=30)
    finally:
        host.close()
    return outcome

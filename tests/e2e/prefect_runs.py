"""Flow runs driven through the Prefect API the way the UI drives them (imported by e2e tests)."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId


class Runs:
    """Flow runs of `escalate-incident` driven through the API, as the UI drives them."""

    def deployment_id(self, timeout: float = 90) -> UUID:
        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                try:
                    return client.read_deployment_by_name("escalate-incident/escalate-incident").id
                except Exception:
                    time.sleep(0.5)
        raise AssertionError("ladder serve did not register escalate-incident")

    def start(self, **parameters: Any) -> UUID:
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(
                self.deployment_id(), parameters=parameters
            )
        return run.id

    def wait(self, run_id: UUID, wanted: set[str], timeout: float = 180) -> str:
        """The run's state type once it is one of ``wanted``; fails if it ends otherwise."""
        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                state = client.read_flow_run(run_id).state
                if state and state.type.value in wanted:
                    return state.type.value
                if state and state.is_final():
                    raise AssertionError(f"run ended {state.type.value}: {state.message}")
                time.sleep(0.5)
        raise AssertionError(f"run {run_id} never reached {wanted}")

    def pause_key(self, run_id: UUID) -> str:
        """The key of the pause the run waits at (``checkpoint-<rung>`` or ``hold-<n>``)."""
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
        assert state is not None and state.type.value == "PAUSED", state
        return str(state.state_details.pause_key)

    def logs(self, run_id: UUID) -> list[str]:
        with get_client(sync_client=True) as client:
            found = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )
        return [log.message for log in found]

    def wait_log(self, run_id: UUID, prefix: str, timeout: float = 20) -> str:
        """The first log line of the run starting with ``prefix`` (logs reach the API in batches)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.logs(run_id)
            for line in lines:
                if line.startswith(prefix):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line {prefix!r} in {lines}")
            time.sleep(0.5)

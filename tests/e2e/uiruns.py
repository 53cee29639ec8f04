"""Flow runs made and read through the Prefect API the way the UI makes and reads them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

# the e2e incident's window: its errors are in the runbook_file fixture's log
WINDOW_END = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
WINDOW_START = WINDOW_END - timedelta(minutes=15)

INCIDENT = {
    "id": "e2e-checkout",
    "title": "Checkout 500s",
    "started_at": WINDOW_START.isoformat(),
    "ended_at": WINDOW_END.isoformat(),
}


class Runs:
    """Flow runs of escalate-incident through the API of the current settings' PREFECT_API_URL."""

    deployment = "escalate-incident/escalate-incident"

    def deployment_id(self, timeout: float = 90) -> UUID:
        """The served deployment's id, once `ladder serve` has registered it."""
        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                try:
                    return client.read_deployment_by_name(self.deployment).id
                except Exception:
                    time.sleep(0.5)
        raise AssertionError(f"ladder serve did not register {self.deployment}")

    def start(self, runbook: Path | str, incident: dict | None = INCIDENT) -> UUID:
        """A run of the deployment, as the UI's Run form creates it: for the e2e incident, or
        with no incident (the sandbox brings its own)."""
        parameters: dict = {"runbook": str(runbook)}
        if incident is not None:
            parameters["incident"] = incident
        deployment_id = self.deployment_id()
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
        return run.id

    def wait_state(self, run_id: UUID, wanted: set[str], timeout: float = 120) -> str:
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

    def paused_at(self, run_id: UUID) -> str | None:
        """The pause key if the run is paused now, else None."""
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
        return str(state.state_details.pause_key) if state and state.type.value == "PAUSED" else None

    def logs(self, run_id: UUID) -> list[str]:
        """The messages of the run's Logs tab."""
        with get_client(sync_client=True) as client:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )
        return [log.message for log in logs]

    def wait_log(self, run_id: UUID, starts: str, timeout: float = 20) -> str:
        """The first message of the run's Logs tab that starts with ``starts``; runs send their
        logs in batches (every 2 s by default), so it may come after the state it explains."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.logs(run_id)
            found = [m for m in messages if m.startswith(starts)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line {starts!r} in {messages}")
            time.sleep(0.5)

    def report(self, ladder_home: str | Path, timeout: float = 30) -> dict:
        """The e2e incident's JSON report under LADDER_HOME; a cancelled run's hook writes it
        after it has reverted the leases, so it may come a moment after they are gone."""
        deadline = time.monotonic() + timeout
        while True:
            found = sorted((Path(ladder_home) / "reports").glob("e2e-checkout-*.json"))
            if found or time.monotonic() > deadline:
                (path,) = found
                return json.loads(path.read_text())
            time.sleep(0.5)

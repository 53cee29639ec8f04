"""Rung 5 through the escalate flow with a person at the checkpoints (answered through the
Prefect API, as the UI does): the form offers the incident's user, the approver picks another
actor, the flag stays on through the hold with the approver in `ladder flags list`, and the
release turns it off — real Flipper says so at each step."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flags_helpers import write_runbook
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.flow_runs import resume_flow_run
from prefect.input.actions import read_flow_run_input
from servers.flipper import ruby_enabled
from typer.testing import CliRunner

from ladder.incident import Incident

pytestmark = pytest.mark.integration


def _paused_at(name: str, key: str, timeout: float = 90) -> uuid.UUID:
    """The id of the run called ``name`` once it pauses at ``key``."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            for run in runs:
                state = run.state
                if state and state.is_paused() and state.state_details.pause_key == key:
                    return run.id
                if state and state.is_final():
                    raise AssertionError(f"run ended {state.type.value}: {state.message}")
            time.sleep(0.3)
    raise AssertionError(f"no run {name} paused at {key}")


def test_the_approver_picks_the_actor_and_the_release_turns_it_off(
    prefect_server: str, flipper_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app
    from flows.escalate import escalate

    monkeypatch.setenv("LADDER_CHECKPOINT_POLL_SECONDS", "1")
    rb = write_runbook(tmp_path, {"database": {"dsn": flipper_tables}})
    incident = Incident(id="flags-hold", title="one customer's checkout", params={"user_ids": [42]},
                        started_at=datetime(2026, 5, 4, 13, 0, tzinfo=UTC))  # fmt: skip
    name = f"flags-hold-{uuid.uuid4().hex[:8]}"
    outcome: dict[str, Any] = {}

    def climb() -> None:
        try:
            outcome["result"] = escalate.with_options(flow_run_name=name)(
                runbook=str(rb), incident=incident
            )
        except BaseException as exc:  # shown by the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=climb, daemon=True)
    worker.start()

    run_id = _paused_at(name, "checkpoint-production-flags")
    schema = read_flow_run_input("paused-checkpoint-production-flags-schema", run_id)
    schema = json.loads(schema) if isinstance(schema, str) else schema
    assert schema["properties"]["actors"]["default"] == ["User;42"]  # the incident's user
    resume_flow_run(run_id, run_input={"decision": "approve", "approver": "ana",
                                       "reason": "debug logs for 43", "actors": ["User;43"]})  # fmt: skip

    _paused_at(name, "hold-1")
    held = ruby_enabled(flipper_tables, "debug_mode", "User;43", "User;42")
    listed = json.loads(CliRunner().invoke(app, ["flags", "list", "--json"]).stdout)
    resume_flow_run(run_id, run_input={"decision": "release", "approver": "ana"})
    worker.join(timeout=120)

    assert "error" not in outcome, outcome.get("error")
    assert held == {"User;43": True, "User;42": False}
    assert [(r["actor"], r["approver"], r["owner"]) for r in listed] == [
        ("User;43", "ana", str(run_id))
    ]
    assert ruby_enabled(flipper_tables, "debug_mode", "User;43") == {"User;43": False}
    report = outcome["result"]["report"]
    assert report["hold"].startswith("released at") and "ana released it" in report["hold"]
    assert [(x["kind"], x["state"]) for x in report["leases"]] == [("flipper_actor_gate", "reverted")]

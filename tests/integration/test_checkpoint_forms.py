"""The approval form of every registered rung: it builds, it validates what a person types, it
shows secret references as references, and a paused run resumes with it through the API."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any
from uuid import UUID

import pytest
from prefect import flow, get_client
from prefect.context import FlowRunContext
from prefect.flow_runs import resume_flow_run
from pydantic import ValidationError

from ladder.rungs import Rung, ladder
from ladder.rungs.local_replica import LocalReplicaSettings
from tasks.checkpoints import approval_form, checkpoint, hold_form, pause_key

# What a person changes in each rung's form: lists, dicts, optional fields and a secret reference.
EDITS: dict[str, dict[str, Any]] = {
    "evidence": {"samples": 2, "baseline_minutes": 30},
    "local_replica": {
        "seeds": ["orders: id = ANY(:order_ids)"],
        "caps": {"orders": 5, "payments": 10},
        "whole_tables": ["schema_migrations"],
        "target": {"env": "REPLICA_TARGET_DSN"},
        "child_depth": 3,
    },
    "tunnel": {"local_port": 15432, "ttl_minutes": 10},
    "staging_trace": {"probes": ["probes/checkout.rb"], "replays": 2},
    "production_flags": {"actors": ["User;42"], "features": ["debug_mode"], "collect_seconds": 5},
    "replica_app": {"header": "X-Debug-Me"},
}


def test_every_registered_rung_has_edits_here() -> None:
    assert sorted(EDITS) == sorted(r.name for r in ladder()), "a new rung needs a form test"


@pytest.mark.parametrize("rung", ladder(), ids=lambda r: r.name)
def test_the_form_of_every_rung_builds_and_validates(rung: Rung) -> None:
    settings = rung.settings()
    form = approval_form(rung, settings, "why")
    schema = form.model_json_schema()
    fields = set(type(settings).model_fields) - {"approval"}
    assert fields <= set(schema["properties"]), "every setting is editable in the form"
    assert {"decision", "approver", "reason"} <= set(schema["properties"])
    for name in fields:
        assert schema["properties"][name].get("description"), f"{name} has no description"
    answer = form.model_validate({"decision": "approve", "approver": "ana", **EDITS[rung.name]})
    edited = type(settings).model_validate(
        answer.model_dump(exclude={"decision", "approver", "reason", "metadata"})
    )
    for name, value in EDITS[rung.name].items():
        got = getattr(edited, name)
        assert (got.model_dump() if hasattr(got, "model_dump") else got) == value
    with pytest.raises(ValidationError):
        form.model_validate({"decision": "maybe", "approver": "ana"})
    with pytest.raises(ValidationError):
        form.model_validate({"decision": "approve", "approver": ""})


def test_a_secret_reference_is_shown_as_the_reference_never_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLICA_TARGET_DSN", "host=db.internal user=ladder password=hunter2-xyz")
    rung = next(r for r in ladder() if r.name == "local_replica")
    settings = LocalReplicaSettings(target={"env": "REPLICA_TARGET_DSN"})
    schema = approval_form(rung, settings, "why").model_json_schema()
    assert schema["properties"]["target"]["default"] == {"env": "REPLICA_TARGET_DSN"}
    assert "hunter2-xyz" not in json.dumps(schema)
    # and a password typed into the form is refused, not stored in the run's input
    form = approval_form(rung, settings, "why")
    with pytest.raises(ValidationError) as err:
        form.model_validate(
            {"decision": "approve", "approver": "ana", "target": "host=x password=typed-in"}
        )
    assert "typed-in" not in str(err.value)


@flow(name="checkpoint-forms")
def _pause_at_every_rung(runs: queue.Queue) -> list[dict[str, Any]]:
    runs.put(FlowRunContext.get().flow_run.id)
    chosen = []
    for rung in ladder():
        decision, settings = checkpoint(
            rung, rung.settings(), description="test", timeout_seconds=120, automatic=None
        )
        chosen.append({"decision": decision.model_dump(mode="json"), "settings": settings})
    return chosen


def _wait_paused_at(run_id: UUID, key: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            state = client.read_flow_run(run_id).state
            if state and state.is_paused() and state.state_details.pause_key == key:
                return
            time.sleep(0.2)
    raise AssertionError(f"run never paused at {key}")


def test_a_paused_run_resumes_through_the_api_with_every_rungs_form(
    prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_CHECKPOINT_POLL_SECONDS", "1")
    ids: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: outcome.update(result=_pause_at_every_rung(ids)), daemon=True
    )
    worker.start()
    run_id = ids.get(timeout=60)
    for rung in ladder():
        _wait_paused_at(run_id, pause_key(rung.name))
        if rung.name == "local_replica":  # the server checks the answer against the form
            for wrong in ({"caps": {"x": "many"}}, {"target": "host=db password=typed-in"}):
                with pytest.raises(RuntimeError):
                    resume_flow_run(
                        run_id, run_input={"decision": "approve", "approver": "ana", **wrong}
                    )
        resume_flow_run(
            run_id,
            run_input={"decision": "approve", "approver": "ana", **EDITS[rung.name]},
        )
    worker.join(timeout=60)
    chosen = outcome["result"]
    for rung, got in zip(ladder(), chosen, strict=True):
        assert got["decision"]["approver"] == "ana"
        assert got["decision"]["decision"] == "approve"
        dumped = got["settings"].model_dump(mode="json")
        for name, value in EDITS[rung.name].items():
            assert dumped[name] == value, (rung.name, name)
        assert got["decision"]["settings"] == {k: v for k, v in dumped.items() if k != "approval"}


def test_the_hold_form_bounds_extend_by_the_runbooks_maximum() -> None:
    form = hold_form(90, "held")
    schema = form.model_json_schema()
    assert schema["properties"]["ttl_minutes"]["maximum"] == 90
    assert schema["properties"]["decision"]["enum"] == ["release", "extend"]
    ok = form.model_validate({"decision": "extend", "approver": "ana", "ttl_minutes": 90})
    assert ok.ttl_minutes == 90
    for wrong in (
        {"decision": "extend", "approver": "ana", "ttl_minutes": 91},
        {"decision": "extend", "approver": "ana", "ttl_minutes": 0},
        {"decision": "keep", "approver": "ana"},
        {"decision": "release", "approver": ""},
    ):
        with pytest.raises(ValidationError):
            form.model_validate(wrong)

"""Runbooks, environments and climb states for rung 5's tests, written into a temporary directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ladder.config import load_runbook
from ladder.incident import Incident
from ladder.rungs import ClimbState
from ladder.rungs.production_flags import ProductionFlagsSettings

OWNER = "flags-test-run"


def write_runbook(
    directory: Path,
    flipper: dict[str, Any],
    rung: dict[str, Any] | None = None,
    logs: list[Path] = (),  # type: ignore[assignment]
) -> Path:
    """``directory/runbook.yaml`` climbing only production_flags, its environment beside it."""
    env: dict[str, Any] = {"name": "flags-test", "flipper": flipper}
    if logs:
        env["logs"] = [{"path": str(p)} for p in logs]
    (directory / "env.yaml").write_text(yaml.safe_dump(env))
    settings = {"features": ["debug_mode"], "ttl_minutes": 5, "collect_seconds": 0, **(rung or {})}
    runbook = {"name": "flags-test", "environment": "env.yaml",
               "rungs": {"production_flags": settings}}  # fmt: skip
    path = directory / "runbook.yaml"
    path.write_text(yaml.safe_dump(runbook))
    return path


def climb_state(
    runbook: Path,
    user_ids: list[int] = (42,),
    owner: str = OWNER,
    approver: str = "ana",  # type: ignore[assignment]
) -> tuple[ClimbState, ProductionFlagsSettings]:
    """The state rung 5 runs in (incident ``flags-1`` with ``user_ids``) and its settings."""
    loaded = load_runbook(runbook)
    incident = Incident(id="flags-1", title="checkout fails for one customer",
                        started_at=datetime(2026, 5, 4, 13, 0, tzinfo=UTC),
                        params={"user_ids": list(user_ids)} if user_ids else {})  # fmt: skip
    state = ClimbState(incident=incident, environment=loaded.environment,
                       runbook_path=loaded.path, owner=owner,
                       approvers={"production_flags": approver})  # fmt: skip
    settings = loaded.runbook.rungs.settings("production_flags")
    assert isinstance(settings, ProductionFlagsSettings)
    return state, settings

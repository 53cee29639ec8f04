"""Runbooks, environments and climb states for rung 4's tests, written into a temporary directory.

The runbook directory gets a copy of the reviewed probes (``runbooks/probes``), so the allow-list
the rung reads is the shipped one.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ladder.config import load_runbook
from ladder.incident import Incident
from ladder.procs import Result, run
from ladder.rungs import ClimbState
from ladder.rungs.evidence import EvidenceResult
from ladder.rungs.staging_trace import StagingTraceSettings

ROOT = Path(__file__).resolve().parents[2]
OWNER = "trace-test-run"


def write_runbook(
    directory: Path, staging: dict[str, Any], rung: dict[str, Any] | None = None
) -> Path:
    """``directory/runbook.yaml`` climbing only staging_trace, its environment beside it."""
    shutil.copytree(ROOT / "runbooks" / "probes", directory / "probes", dirs_exist_ok=True)
    env = {
        "name": "trace-test",
        "staging": {"database": {"dsn": "host=127.0.0.1 dbname=unused"}, **staging},
    }
    (directory / "env.yaml").write_text(yaml.safe_dump(env))
    settings = {
        "probes": ["probes/exceptions.rb"],
        "methods": ["Shop::CheckoutService#call", "Shop::Payment#capture!", "Shop::DB.query(sql)"],
        "duration_seconds": 4,
        "max_duration_seconds": 60,
        "identity": {"header": "X-Shop-Impersonate"},
        **(rung or {}),
    }
    runbook = {
        "name": "trace-test",
        "environment": "env.yaml",
        "rungs": {"staging_trace": settings},
    }
    path = directory / "runbook.yaml"
    path.write_text(yaml.safe_dump(runbook))
    return path


def ssh_staging(sshd: Any, puma: Any, work_dir: Path) -> dict[str, Any]:
    """An environment's staging section reaching ``puma`` through ``sshd``."""
    return {
        "app_url": puma.url,
        "ssh": sshd.config().model_dump(mode="json", exclude_none=True),
        "hosts": [sshd.host],
        "puma_pidfile": str(puma.pidfile),
        "work_dir": str(work_dir),
    }


def failing_checkout(user_id: str) -> dict[str, Any]:
    """A failing request as the evidence rung reports it (``EvidenceResult.replayable``)."""
    return {
        "request_id": "9a0e4b1c-1111-4c2d-8e3f-000000000017",
        "method": "POST",
        "path": "/checkout",
        "user_id": user_id,
        "params": json.dumps(
            {"order": {"email": "[EMAIL]", "card_number": "[CARD]"}, "user_id": user_id}
        ),
    }


def climb_state(runbook: Path, replayable: list[dict[str, Any]] | None = None) -> ClimbState:
    loaded = load_runbook(runbook)
    now = datetime.now(UTC)
    incident = Incident(
        id="trace-test", title="checkout 500s", started_at=now - timedelta(hours=1), ended_at=now
    )
    state = ClimbState(
        incident=incident, environment=loaded.environment, runbook_path=loaded.path, owner=OWNER
    )
    if replayable is not None:
        state.found["evidence"] = EvidenceResult(replayable=replayable)
    return state


def settings_of(runbook: Path) -> StagingTraceSettings:
    found = load_runbook(runbook).runbook.rungs.settings("staging_trace")
    assert isinstance(found, StagingTraceSettings)
    return found


def fresh_eval(pid: int) -> Result:
    """What a fresh ``rbtrace -p PID -e 1`` says: it works only if no tracer is left attached."""
    return run(["rbtrace", "-p", str(pid), "--timeout", "5", "-e", "1"], timeout=30)

"""What the end-to-end tests of the UI path share: `ladder serve` as the runner against the
session's real Prefect server, a small runbook whose evidence rung needs approval, and
:class:`uiruns.Runs` to drive runs through the API the way the UI does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from uiruns import WINDOW_START, Runs

from cli.entrypoints import PROJECT_ROOT


def _lograge_line(t: datetime, status: int, user: int, **extra: object) -> str:
    row = {
        "time": t.isoformat().replace("+00:00", "Z"),
        "method": "POST",
        "path": "/checkout",
        "format": "json",
        "controller": "CheckoutController",
        "action": "create",
        "status": status,
        "duration": 120.0 if status == 200 else 480.0,
        "view": 1.0,
        "db": 3.0,
        "request_id": f"req-{t.timestamp():.0f}-{user}",
        "user_id": user,
        "remote_ip": "203.0.113.9",
        "params": {"order": {"email": f"user{user}@example.org"}},
        **extra,
    }
    return json.dumps(row)


@pytest.fixture
def runbook_file(tmp_path: Path) -> Path:
    """A runbook whose evidence rung needs approval, over a small lograge log with an incident."""
    lines = []
    for minute in range(0, 75, 3):
        t = WINDOW_START - timedelta(minutes=60) + timedelta(minutes=minute)
        lines.append(_lograge_line(t, 200, 7))
    for minute in range(0, 15, 2):
        t = WINDOW_START + timedelta(minutes=minute)
        lines.append(
            _lograge_line(
                t,
                500,
                42,
                exception=["NoMethodError", "undefined method `amount_cents' for nil"],
                exception_backtrace=["app/models/payment.rb:42:in `capture!'"],
            )
        )
    log = tmp_path / "logs" / "production.log"
    log.parent.mkdir()
    log.write_text("\n".join(lines) + "\n")
    (tmp_path / "env.yaml").write_text(f"name: e2e\nlogs:\n  - path: {log}\n")
    path = tmp_path / "runbook.yaml"
    path.write_text(
        "name: e2e\nenvironment: env.yaml\ncheckpoint_timeout_minutes: 5\n"
        "rungs:\n  evidence:\n    approval: true\n    samples: 1\n"
    )
    return path


@pytest.fixture
def runs() -> Runs:
    return Runs()


@pytest.fixture
def serve_env_extra() -> dict[str, str]:
    """Variables a test module adds to `ladder serve`'s environment (override it there)."""
    return {}


@pytest.fixture
def served(
    prefect_server: str, tmp_path: Path, serve_env_extra: dict[str, str]
) -> Iterator[dict[str, str]]:
    """`ladder serve` against the test server, in its own process; stopped by PID afterwards."""
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "LADDER_HOME": str(tmp_path / "home"),
        "LADDER_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "LADDER_CHECKPOINT_POLL_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        **serve_env_extra,
    }
    env.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()

"""What the end-to-end tests of the UI path share: a small runbook whose evidence rung needs
approval, and :class:`uiruns.Runs`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from uiruns import WINDOW_START, Runs


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

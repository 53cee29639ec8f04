"""`ladder intake`: a bad configuration is one `error:` line; `list` as a table and as JSON; the
shipped runbooks/intake.yaml starts a real intake (a subprocess) with the sources it has secrets
for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from intake_util import free_port
from typer.testing import CliRunner

from cli import app
from cli.entrypoints import PROJECT_ROOT
from ladder.intake.inbox import Inbox


def _invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return res.exit_code, res.output


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("runbooks: [nowhere.yaml]\n", "nowhere.yaml"),
        ("sources:\n  nagios: {env: X}\n", "unknown source 'nagios'"),
        ("sources:\n  sentry: hunter2\n", "secret reference"),
        ("sources:\n  sentry: {env: INTAKE_TEST_UNSET}\n", "INTAKE_TEST_UNSET is not set"),
        ("sources:\n  generic: {env: INTAKE_TEST_BAD_WHSEC}\n", "whsec_"),
        ("deployment: no-slash\n", "deployment"),
    ],
)
def test_bad_config_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, needle: str
) -> None:
    monkeypatch.setenv("INTAKE_TEST_BAD_WHSEC", "whsec_not*base64")
    config = tmp_path / "intake.yaml"
    config.write_text(text)
    code, out = _invoke("intake", "serve", "--config", str(config), "--port", str(free_port()))
    assert code == 1
    lines = [line for line in out.splitlines() if line.strip()]
    assert all(line.startswith("error:") for line in lines), out
    assert needle in out and "Traceback" not in out and "hunter2" not in out


def test_list_table_and_json() -> None:
    from datetime import timedelta

    from ladder.intake.inbox import NewAlert

    inbox = Inbox()
    incident = {"title": "t", "source": "datadog", "started_at": "2026-12-05T00:00:00Z"}
    for _ in range(3):
        inbox.file("datadog", [NewAlert("datadog", "firing", "fp", "Checkout down", "/x/rb.yaml",
                                        timedelta(hours=1), incident, {})], None, {})  # fmt: skip
    inbox.close()
    code, out = _invoke("intake", "list", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["count"] == 3 and row["state"] == "pending" and row["title"] == "Checkout down"
    code, out = _invoke("intake", "list")
    assert code == 0 and "Checkout down" in out and "rb.yaml" in out


def test_shipped_config_serves(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "LADDER_HOME": str(tmp_path), "LADDER_DATADOG_TOKEN": "t0k3n",
           "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}  # fmt: skip
    for name in ("SENTRY_SECRET", "ALERTMANAGER_TOKEN", "PAGERDUTY_SECRET", "WEBHOOK_SECRET"):
        env.pop(f"LADDER_{name}", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "intake", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        assert r.json() == {"status": "ok", "sources": ["datadog"]}
        assert httpx.post(f"http://127.0.0.1:{port}/hooks/sentry", json={}).status_code == 404
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode in (0, -signal.SIGTERM), out  # uvicorn re-raises the signal it handled
    assert "t0k3n" not in out and "Traceback" not in out
    assert "enabled: /hooks/datadog" in out

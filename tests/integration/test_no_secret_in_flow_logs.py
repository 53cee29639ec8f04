"""A password in a DSN never reaches the escalate flow's Prefect logs, artifacts, states or report.

(The CLI's own output is searched by tests/e2e/test_no_secret_in_output.py.) The flow runs in-process against the session's Prefect server, three ways: a runbook whose YAML
holds a password (refused while loading), a DSN with a password from an environment variable
pointing at a dead port (the rung fails connecting), and a rung that fails with an unexpected
exception quoting the DSN (its traceback is logged). Everything the server keeps about each run
is then read back through the Prefect client and searched for the password.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.entrypoints import runbook_path
from ladder.incident import Incident
from ladder.procs import free_port

pytestmark = pytest.mark.integration

PASSWORD = "pw" + secrets.token_hex(8)
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
INCIDENT = Incident(
    id="secret-1", title="Checkout 500s", started_at=START, params={"user_ids": [1]}
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LADDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LADDER_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("LADDER_PSEUDONYM_KEY", secrets.token_hex(16))
    dsn = f"postgresql://ladder:{PASSWORD}@127.0.0.1:{free_port()}/shop"
    monkeypatch.setenv("SHOP_DSN", dsn)
    return tmp_path


def _runbook(tmp: Path, target_yaml: str = "{env: SHOP_DSN}") -> Path:
    (tmp / "env.yaml").write_text("name: prod\nproduction_db:\n  dsn: {env: SHOP_DSN}\n")
    policy = runbook_path("policies/shop.yaml")
    path = tmp / f"rb-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(
        "name: secrets\nenvironment: env.yaml\nrungs:\n  local_replica:\n"
        f"    policy: {policy}\n"
        "    seeds: ['users: id = ANY(:user_ids)']\n"
        f"    target: {target_yaml}\n"
    )
    return path


def _everything_kept(flow_run_id: Any) -> str:
    """The run's logs, artifacts, flow and task run states, as one text."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        artifacts = client.read_artifacts(flow_run_filter=runs)
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(flow_run_filter=runs)
    assert logs, "the run left no logs to search"
    texts = [log.message for log in logs]
    texts += [f"{a.key} {a.description} {a.data}" for a in artifacts]
    texts += [flow_run.model_dump_json()]
    texts += [t.model_dump_json() for t in task_runs]
    return "\n".join(texts)


def _assert_nowhere(flow_run_id: Any, home: Path) -> str:
    kept = _everything_kept(flow_run_id)
    reports = "".join(p.read_text() for p in (home / "home").rglob("*") if p.is_file())
    for where, text in (("Prefect", kept), ("reports", reports)):
        assert PASSWORD not in text, f"the password leaked into {where}"
    return kept


def test_a_password_in_the_runbook_yaml_is_refused_without_being_logged(
    prefect_server: str, home: Path
) -> None:
    from flows.escalate import escalate

    rb = _runbook(home, f'"host=127.0.0.1 dbname=shop password={PASSWORD}"')  # in the runbook
    state = escalate(runbook=str(rb), incident=INCIDENT, return_state=True)
    assert state.is_failed()
    kept = _assert_nowhere(state.state_details.flow_run_id, home)
    assert "must not hold a password" in kept


def test_a_dead_database_behind_a_password_dsn_fails_the_rung_without_it(
    prefect_server: str, home: Path, auto_approve: str
) -> None:
    from flows.escalate import escalate

    rb = _runbook(home)
    state = escalate(runbook=str(rb), incident=INCIDENT, return_state=True)
    assert state.is_failed()
    kept = _assert_nowhere(state.state_details.flow_run_id, home)
    assert "cannot connect to 127.0.0.1:" in kept


def test_an_unexpected_exception_quoting_the_dsn_is_logged_scrubbed(
    prefect_server: str,
    home: Path,
    auto_approve: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from flows import escalate as module

    def explode(state: Any, settings: Any) -> None:
        raise RuntimeError(f"driver said: could not use {os.environ['SHOP_DSN']}")

    monkeypatch.setattr(module, "_runner", lambda rung: explode)
    rb = _runbook(home)
    state = module.escalate(runbook=str(rb), incident=INCIDENT, return_state=True)
    assert state.is_failed()
    kept = _assert_nowhere(state.state_details.flow_run_id, home)
    assert "unexpected RuntimeError: driver said: could not use postgresql://ladder:***@" in kept

"""The Prefect UI path's fixtures: `ladder serve` as the runner against the session's real
Prefect server, and runs created and answered through the API the way the UI does it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect_runs import Runs

from cli.entrypoints import PROJECT_ROOT


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
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def runs() -> Runs:
    return Runs()

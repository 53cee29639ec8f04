"""Fixtures of the intake tests: a deployment of escalate-incident of the module's own on the
session's Prefect server, and `ladder intake serve` routing every source to a small runbook."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from intake_util import Intake, make_deployment, write_config


@pytest.fixture(scope="module")
def deployment(prefect_server: str) -> tuple[str, str]:
    """(FLOW/DEPLOYMENT name, id) of a deployment only this module's intake starts runs of."""
    name = f"intake-{uuid.uuid4().hex[:8]}"
    return f"escalate-incident/{name}", make_deployment(name)


@pytest.fixture(scope="module")
def intake(
    prefect_server: str, deployment: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Intake]:
    """One `ladder intake serve` for the module, every source enabled."""
    tmp: Path = tmp_path_factory.mktemp("intake")
    proc = Intake(tmp, write_config(tmp, deployment[0]), prefect_server).start()
    try:
        yield proc
    finally:
        proc.stop()

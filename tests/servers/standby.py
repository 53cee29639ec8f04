"""A real streaming standby of the session's PostgreSQL cluster: ``pg_standby`` (session scope).

Yields the standby :class:`~ladder.sandbox.cluster.Cluster`; it replays what the primary
(``pg_cluster``) writes, refuses writes itself, and is stopped and removed after the session.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ladder.sandbox.cluster import Cluster
from ladder.sandbox.standby import create_standby

__all__ = ["pg_standby"]


@pytest.fixture(scope="session")
def pg_standby(pg_cluster: Cluster) -> Iterator[Cluster]:
    # outside pytest's tmp dirs, like pg_cluster (see tests/conftest.py server_dir)
    directory = Path(tempfile.mkdtemp(prefix="ladder-test-standby-"))
    standby = create_standby(pg_cluster, directory / "pg")
    try:
        yield standby
    finally:
        standby.stop()
        shutil.rmtree(directory, ignore_errors=True)

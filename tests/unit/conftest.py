"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

LOG_FIXTURES = Path(__file__).parent.parent / "fixtures" / "logs"


@pytest.fixture(scope="session")
def planted() -> list[str]:
    """Every secret or piece of PII planted in the fixture logs (``planted.txt``, ``# `` comments)."""
    return [
        line
        for line in (LOG_FIXTURES / "planted.txt").read_text().splitlines()
        if line and not line.startswith("# ")
    ]

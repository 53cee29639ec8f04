"""Real servers on loopback for the tests, each a pytest fixture module (see tests/conftest.py)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def not_installed(what: str, package: str) -> NoReturn:
    """Stop a test whose real server is not on this machine: a skip for a user who is not root
    (the bootstrap could only name the packages), a failure as root, where ``make test``'s
    bootstrap installs them and a skip would hide a broken install step."""
    message = f"no {what} on this machine (Debian package {package})"
    if os.geteuid() == 0:
        pytest.fail(f"{message}: scripts/bootstrap.sh should have installed it", pytrace=False)
    pytest.skip(message)

"""scripts/bootstrap.sh: as a non-root user it names what is missing and stops."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from cli.entrypoints import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "bootstrap.sh"


def _run(packages: str, *, as_nobody: bool) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(SCRIPT)]
    if as_nobody:
        argv = ["runuser", "-u", "nobody", "--", *argv]
    env = {**os.environ, "LADDER_BOOTSTRAP_PACKAGES": packages}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to become another user"
)
def test_non_root_gets_the_missing_packages_named() -> None:
    res = _run("bash ladder-no-such-package", as_nobody=True)
    assert res.returncode == 1
    assert "missing Debian packages: ladder-no-such-package" in res.stderr
    assert "sudo apt-get install -y ladder-no-such-package" in res.stderr


def test_nothing_to_do_when_everything_is_installed() -> None:
    res = _run("bash coreutils", as_nobody=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""

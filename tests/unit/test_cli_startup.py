"""`ladder --help`, `ladder runbook check` and every bad-input error answer before pandas,
numpy, Prefect or great-expectations are loaded: those come in with the work that needs them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "numpy", "pyarrow", "prefect", "great_expectations", "faker")


def test_the_cli_and_the_runbook_loader_load_no_heavy_library() -> None:
    code = (
        "import sys; from cli import app; import ladder.config, ladder.rungs; "
        "ladder.rungs.ladder(); "
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []

"""Where Ladder's flows live, by Prefect entrypoint (the same strings prefect.yaml uses).

The CLI loads flows through these strings rather than importing ``flows`` (which sits above
``ladder`` in the dependency order: flows → tasks → ladder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ESCALATE = "flows/escalate.py:escalate"
REFRESH_STAGING = "flows/refresh_staging.py:refresh_staging"
JANITOR = "flows/janitor.py:janitor"


def load_flow(entrypoint: str) -> Any:
    """The Prefect flow object at ``entrypoint`` (relative to the project root)."""
    from prefect.flows import load_flow_from_entrypoint

    path, _, name = entrypoint.partition(":")
    return load_flow_from_entrypoint(f"{PROJECT_ROOT / path}:{name}")


def runbook_path(name: str) -> Path:
    """A runbook shipped in ``runbooks/``."""
    return PROJECT_ROOT / "runbooks" / name

"""What a sandbox service (the shop on Puma, nginx in front of it) left in its directory: the
state file it wrote when it started, or why the machine cannot run it."""

from __future__ import annotations

import json
from pathlib import Path

UNAVAILABLE_FILE = "unavailable.txt"


def recorded(directory: Path, state_file: str) -> dict[str, object] | None:
    """``{"unavailable": why}`` when the machine cannot run the service, else the state file's
    contents; None when neither is there or the state file cannot be read."""
    why = directory / UNAVAILABLE_FILE
    if why.exists():
        return {"unavailable": why.read_text().strip()}
    try:
        state = json.loads((directory / state_file).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None

"""Checks of a runbook against its live environment (``ladder runbook check``): each rung's
``check_live``, e.g. rung 2's policy held against the source database."""

from __future__ import annotations

from ladder.config import Environment, LoadedRunbook
from ladder.rungs import ladder
from ladder.yamlfile import load_yaml

LiveLine = tuple[str, str]  # (severity: error, warning or note, line)


def live_findings(loaded: LoadedRunbook, env: Environment) -> list[LiveLine]:
    """Every rung's findings against ``env`` (the runbook's environment, bound): a note says
    what was skipped and why. Call it on a runbook :func:`ladder.config.check_runbook` passed."""
    doc = load_yaml(loaded.path)
    out: list[LiveLine] = []
    for r in ladder():
        settings = loaded.runbook.rungs.settings(r.name)
        if settings is None or r.check_live is None:
            continue

        def where(*keys: str, _name: str = r.name) -> str:
            return f"{doc.where(('rungs', _name, *keys))}: {'.'.join(('rungs', _name, *keys))}"

        out.extend(r.check_live(settings, loaded, env, where))
    return out


__all__ = ["live_findings"]

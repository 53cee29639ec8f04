"""Revert expired leases: the janitor's one task."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ladder.leases import Lease, LeaseLedger, LeaseState

ARTIFACT_KEY = "janitor-reverts"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _markdown(leases: list[Lease]) -> str:
    if not leases:
        return "# Janitor\n\nNo expired leases: nothing to revert.\n"
    lines = [
        "# Janitor: expired leases",
        "",
        "| id | kind | target | owner | state | attempts | outcome |",
        "|---|---|---|---|---|---|---|",
    ]
    for lease in leases:
        cells = [lease.id, lease.kind, lease.target, lease.owner, lease.state.value]
        row = " | ".join(_cell(c) for c in cells)
        lines.append(f"| {row} | {lease.attempts} | {_cell(lease.outcome)} |")
    return "\n".join(lines) + "\n"


@task(name="revert_expired_leases", cache_policy=NO_CACHE)
def revert_expired_leases() -> dict[str, Any]:
    """Revert every expired lease in the ledger (``LADDER_LEDGER_URL`` or the default file).

    Returns ``{"reverted": n, "failed": n, "reverted_ids": [...], "failed_ids": [...],
    "leases": [{id, kind, target, owner, state, outcome}, ...]}`` and publishes the same as the
    markdown artifact ``janitor-reverts``. Every expired lease is tried, even after a failure.
    """
    ledger = LeaseLedger()
    try:
        leases = ledger.revert_expired()
    finally:
        ledger.close()
    create_markdown_artifact(
        markdown=_markdown(leases),
        key=ARTIFACT_KEY,
        description="Leases the janitor reverted (or failed to revert)",
    )
    reverted = [lease.id for lease in leases if lease.state is LeaseState.REVERTED]
    failed = [lease.id for lease in leases if lease.state is LeaseState.REVERT_FAILED]
    return {
        "reverted": len(reverted),
        "failed": len(failed),
        "reverted_ids": reverted,
        "failed_ids": failed,
        "leases": [
            {
                "id": lease.id,
                "kind": lease.kind,
                "target": lease.target,
                "owner": lease.owner,
                "state": lease.state.value,
                "outcome": lease.outcome,
            }
            for lease in leases
        ],
    }

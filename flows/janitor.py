"""janitor: revert every expired lease, so a killed run leaves nothing behind past its TTL."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from ladder.errors import LeaseError
from tasks.leases import revert_expired_leases


@flow(name="janitor", description="Revert every lease whose TTL has passed.")
def janitor() -> dict[str, Any]:
    """Revert expired leases; fails (after trying them all) when any revert failed."""
    logger = get_run_logger()
    summary = revert_expired_leases()
    for item in summary["leases"]:
        line = f"{item['id']} {item['kind']} {item['target']} (owner {item['owner']}): {item['outcome']}"
        if item["state"] == "reverted":
            logger.info("reverted %s", line)
        else:
            logger.error("could not revert %s", line)
    logger.info("%d lease(s) reverted, %d failed", summary["reverted"], summary["failed"])
    if summary["failed"]:
        failed = ", ".join(summary["failed_ids"])
        raise LeaseError(
            f"{summary['failed']} expired lease(s) could not be reverted: {failed}; "
            "see the 'janitor-reverts' artifact, or retry with `ladder leases revert ID`"
        )
    return summary

"""Stable names for artifacts, so the Prefect UI keeps each incident's history together."""

from __future__ import annotations

import re


def artifact_key(incident_id: str, what: str) -> str:
    """``incident-<id>-<what>``, lower-case letters, digits and dashes only (Prefect's rule)."""
    slug = re.sub(r"[^a-z0-9]+", "-", incident_id.lower()).strip("-")
    return f"incident-{slug}-{what}"[:200]


def lease_owner() -> str:
    """Who owns the leases taken now: the flow run's id, or this process outside a run."""
    import os

    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return str(run_id) if run_id else f"local-{os.getpid()}"

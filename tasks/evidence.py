"""Rung 1: evidence from the environment's log files (scrubbed at parse time)."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from ladder import evidence
from ladder.config import Environment
from ladder.incident import Incident
from ladder.rungs import EvidenceSettings
from tasks.naming import artifact_key


@task(name="collect_evidence", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def collect_evidence(
    environment: Environment, incident: Incident, settings: EvidenceSettings
) -> evidence.Evidence:
    """Group the window's errors, compare latency with the baseline, publish two artifacts."""
    found = evidence.collect(
        environment.logs,
        incident.window(),
        baseline_minutes=settings.baseline_minutes,
        samples=settings.samples,
    )
    create_markdown_artifact(
        markdown=evidence.to_markdown(found),
        key=artifact_key(incident.id, "evidence"),
        description=f"Evidence for {incident.id} (scrubbed)",
    )
    rows = evidence.error_rows(found)
    if rows:
        create_table_artifact(
            table=rows,
            key=artifact_key(incident.id, "error-groups"),
            description=f"Error groups in the window of {incident.id}",
        )
    return found

"""Rung 1: evidence from the environment's log files (scrubbed at parse time)."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from ladder import evidence
from ladder.config import Environment
from ladder.incident import Incident
from ladder.report import RungReport
from ladder.rungs import RUNGS, EvidenceSettings
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


def evidence_rung(
    environment: Environment, incident: Incident, settings: EvidenceSettings
) -> RungReport:
    """Rung 1 as the report shows it: what the logs say about the incident window."""
    rung = RUNGS["evidence"]
    if not environment.logs:
        return RungReport.of(
            rung,
            "unavailable",
            reason="the environment has no log files "
            "(Sentry and Datadog connectors are not built yet)",
        )
    found = collect_evidence(environment, incident, settings)
    top = found.error_groups[0] if found.error_groups else None
    summary = (
        f"{found.errors_in_window} errors in {found.requests_in_window} requests; "
        f"{len(found.error_groups)} error groups"
        + (f", top: {top.exception_class} at {top.top_frame} ({top.count}x)" if top else "")
        + f"; {len(found.affected_users)} affected users"
    )
    return RungReport.of(
        rung,
        "done",
        summary=summary,
        details_markdown=evidence.to_markdown(found),
        data={
            "errors_in_window": found.errors_in_window,
            "requests_in_window": found.requests_in_window,
            "error_groups": len(found.error_groups),
            "affected_users": found.affected_users,
        },
    )

"""Publish the incident report: a markdown file, a JSON file and a Prefect artifact."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ladder.files import write_text_atomic
from ladder.intake.inbox import INTAKE_RECORD_LABEL, alert_count
from ladder.report import Report, render_markdown
from ladder.settings import settings
from tasks.naming import artifact_key


def reports_dir() -> Path:
    """Where reports are written: ``reports`` in the state directory (see ladder.settings)."""
    return settings().reports_dir


def report_stem(incident_id: str, flow_run_id: str | None) -> Path:
    """The report's path without suffix: one report per incident and run."""
    return reports_dir() / f"{incident_id}-{(flow_run_id or 'local')[:8]}"


def _with_alert_count(report: Report) -> Report:
    """The report with the intake's count of alerts, for an incident that came from the intake
    (its ``intake_record`` label); unchanged when the inbox cannot be read."""
    record_id = report.incident.labels.get(INTAKE_RECORD_LABEL)
    if not record_id:
        return report
    count = alert_count(record_id)
    return report if count is None else report.model_copy(update={"alerts": count})


@task(name="publish_report", cache_policy=NO_CACHE)
def publish_report(report: Report) -> str:
    """Write the report beside the others and as an artifact; returns the markdown file's path."""
    report = _with_alert_count(report)
    stem = report_stem(report.incident.id, report.flow_run_id)
    stem.parent.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(report)
    md_path = stem.with_suffix(".md")
    write_text_atomic(md_path, markdown)
    write_text_atomic(stem.with_suffix(".json"), report.model_dump_json(indent=2))
    create_markdown_artifact(
        markdown=markdown,
        key=artifact_key(report.incident.id, "report"),
        description=f"Incident report for {report.incident.id}",
    )
    return str(md_path.absolute())

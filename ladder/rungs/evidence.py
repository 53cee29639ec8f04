"""Rung 1, evidence: what the logs say about the incident window, compared with the hour before."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ladder.rungs.base import ClimbState, Minutes, Need, Rung, RungResult, RungSettings


class EvidenceSettings(RungSettings):
    baseline_minutes: Minutes = Field(60, description="minutes before the window used as normal")
    samples: int = Field(5, ge=0, le=50, description="sample requests to show (scrubbed)")


class EvidenceResult(RungResult):
    """The window's numbers, and what later rungs use: the affected users, the failing requests."""

    requests_in_window: int = 0
    errors_in_window: int = 0
    error_groups: int = 0
    affected_users: list[str] = Field(default_factory=list)
    failing_requests: list[str] = Field(
        default_factory=list, description="request ids of failing requests, to replay"
    )
    replayable: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the failing requests: request_id, method, path, user_id, scrubbed params",
    )
    found: Any = Field(None, exclude=True, description="the whole ladder.evidence.Evidence")

    def params(self) -> dict[str, Any]:
        return {"user_ids": self.affected_users} if self.affected_users else {}


def run(state: ClimbState, settings: EvidenceSettings) -> RungResult:
    """Group the window's errors, compare latency with the baseline, publish what was found."""
    from ladder import evidence  # pandas: only when the rung climbs, not when a runbook loads

    environment, incident = state.environment, state.incident
    if not environment.logs:
        return RUNG.result(
            "unavailable",
            reason="the environment has no log files "
            "(Sentry and Datadog connectors are not built yet)",
        )
    found = evidence.collect(
        environment.logs,
        incident.window(),
        baseline_minutes=settings.baseline_minutes,
        samples=settings.samples,
    )
    markdown = evidence.to_markdown(found)
    state.publish.markdown("evidence", markdown, f"Evidence for {incident.id} (scrubbed)")
    rows = evidence.error_rows(found)
    if rows:
        state.publish.table("error-groups", rows, f"Error groups in the window of {incident.id}")
    top = found.error_groups[0] if found.error_groups else None
    summary = (
        f"{found.errors_in_window} errors in {found.requests_in_window} requests; "
        f"{len(found.error_groups)} error groups"
        + (f", top: {top.exception_class} at {top.top_frame} ({top.count}x)" if top else "")
        + f"; {len(found.affected_users)} affected users"
    )
    return EvidenceResult(
        summary=summary,
        details_markdown=markdown,
        requests_in_window=found.requests_in_window,
        errors_in_window=found.errors_in_window,
        error_groups=len(found.error_groups),
        affected_users=found.affected_users,
        failing_requests=[rid for g in found.error_groups for rid in g.request_ids],
        replayable=[r.model_dump() for g in found.error_groups for r in g.requests],
        found=found,
    )


RUNG = Rung(
    number=1,
    name="evidence",
    title="Evidence from logs and monitoring",
    touches="reads only",
    approval_by_default=False,
    settings=EvidenceSettings,
    needs=(Need("logs, sentry or datadog", lambda env: env.logs or env.sentry or env.datadog),),
    run=run,
    retries=1,
)

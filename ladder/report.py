"""The incident report: what each rung found, every decision, every lease and its revert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ladder.incident import Incident
from ladder.rungs import Rung

RungStatus = Literal["done", "skipped", "not_built", "unavailable", "failed"]
DecisionKind = Literal["approve", "skip", "stop"]


def now() -> datetime:
    return datetime.now(UTC)


class Decision(BaseModel):
    """An approver's answer at a checkpoint (or Ladder's, when approvals are automatic)."""

    rung: str
    decision: DecisionKind
    approver: str
    reason: str = ""
    at: datetime = Field(default_factory=now)
    automatic: bool = False
    timed_out: bool = False
    settings: dict[str, Any] = Field(default_factory=dict)


class RungReport(BaseModel):
    number: int
    name: str
    title: str
    status: RungStatus
    summary: str = ""
    reason: str | None = None
    details_markdown: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def of(cls, rung: Rung, status: RungStatus, **fields: Any) -> RungReport:
        """The report of ``rung`` with ``status`` (and summary, reason, details, data)."""
        return cls(number=rung.number, name=rung.name, title=rung.title, status=status, **fields)


class LeaseRecord(BaseModel):
    id: str
    kind: str
    target: str
    state: str
    expires_at: datetime | None = None
    reverted_at: datetime | None = None
    outcome: str | None = None


class Report(BaseModel):
    incident: Incident
    runbook: str
    environment: str
    flow_run_id: str | None = None
    started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    outcome: Literal["completed", "stopped", "failed", "cancelled"] = "completed"
    approvals: Literal["manual", "automatic (sandbox)", "automatic (test mode)"] = "manual"
    error: str | None = None
    rungs: list[RungReport] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    leases: list[LeaseRecord] = Field(default_factory=list)

    def rung(self, name: str) -> RungReport:
        return next(r for r in self.rungs if r.name == name)


_STATUS_MARK = {
    "done": "done",
    "skipped": "skipped",
    "not_built": "not built",
    "unavailable": "unavailable",
    "failed": "FAILED",
}


def _ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """The report as markdown, for the file on disk and the Prefect artifact."""
    inc = report.incident
    start, end = inc.started_at, inc.ended_at
    lines = [
        f"# Incident {inc.id}: {_cell(inc.title)}",
        "",
        f"- **Outcome:** {report.outcome}" + (f" ({_cell(report.error)})" if report.error else ""),
        f"- **Runbook:** {report.runbook} on environment **{report.environment}**",
        f"- **Window:** {_ts(start)} → {_ts(end)} · source: {inc.source}",
        f"- **Run:** {report.flow_run_id or '-'} · {_ts(report.started_at)} → {_ts(report.finished_at)}",
        f"- **Approvals:** {report.approvals}",
        "",
        "## Rungs",
        "",
        "| # | rung | status | summary |",
        "|---|------|--------|---------|",
    ]
    for r in report.rungs:
        summary = r.summary or r.reason or ""
        lines.append(f"| {r.number} | {r.name} | {_STATUS_MARK[r.status]} | {_cell(summary)} |")
    lines += ["", "## Decisions", ""]
    if report.decisions:
        lines += ["| rung | decision | by | at | reason |", "|---|---|---|---|---|"]
        for d in report.decisions:
            who = (
                d.approver
                + (" (automatic)" if d.automatic else "")
                + (" (timed out)" if d.timed_out else "")
            )
            lines.append(
                f"| {d.rung} | {d.decision} | {_cell(who)} | {_ts(d.at)} | {_cell(d.reason)} |"
            )
    else:
        lines.append("No checkpoint was reached.")
    lines += ["", "## Leases", ""]
    if report.leases:
        lines += [
            "| id | kind | target | state | reverted | outcome |",
            "|---|---|---|---|---|---|",
        ]
        for lease in report.leases:
            lines.append(
                f"| {lease.id} | {lease.kind} | {_cell(lease.target)} | {lease.state} | "
                f"{_ts(lease.reverted_at)} | {_cell(lease.outcome or '')} |"
            )
    else:
        lines.append("No change was made to any shared environment.")
    for r in report.rungs:
        if r.details_markdown:
            details = r.details_markdown.strip()
            heading = [] if details.startswith("## ") else [f"## {r.number}. {r.title}", ""]
            lines += ["", *heading, details]
    return "\n".join(lines) + "\n"

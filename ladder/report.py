"""The incident report: what each rung found, every decision, every lease and its revert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ladder.incident import Incident
from ladder.rungs import Held, Rung, RungResult, RungStatus

DecisionKind = Literal["approve", "skip", "stop", "release", "extend"]


def now() -> datetime:
    return datetime.now(UTC)


class Decision(BaseModel):
    """An answer at a checkpoint (or Ladder's, when approvals are automatic). ``rung`` is the rung
    an approval was for, or ``hold`` for the hold after the highest rung."""

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
    held: list[Held] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def of(cls, rung: Rung, status: RungStatus, **fields: Any) -> RungReport:
        """The report of ``rung`` with ``status`` (and summary, reason, details, data)."""
        return cls(number=rung.number, name=rung.name, title=rung.title, status=status, **fields)

    @classmethod
    def from_result(cls, rung: Rung, result: RungResult) -> RungReport:
        """The report of what ``rung``'s runner returned."""
        return cls.of(
            rung,
            result.status,
            summary=result.summary,
            reason=result.reason,
            details_markdown=result.details_markdown,
            data=result.data(),
            held=result.held,
        )


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
    approvals: str = Field("manual", description="manual, or automatic (why)")
    hold: str | None = Field(None, description="how the hold after the highest rung ended")
    error: str | None = None
    rungs: list[RungReport] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    leases: list[LeaseRecord] = Field(default_factory=list)
    alerts: int | None = Field(
        None, description="alerts the intake counted on this incident, repeats included"
    )

    def rung(self, name: str) -> RungReport:
        return next(r for r in self.rungs if r.name == name)

    def held(self) -> list[Held]:
        """Everything the rungs handed over, in ladder order."""
        return [h for r in self.rungs for h in r.held]


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
        *([f"- **Hold:** {_cell(report.hold)}"] if report.hold else []),
        *(
            [f"- **Alerts:** {report.alerts} (this fingerprint, deduplicated by the intake)"]
            if report.alerts is not None
            else []
        ),
        "",
        "## Rungs",
        "",
        "| # | rung | status | summary |",
        "|---|------|--------|---------|",
    ]
    for r in report.rungs:
        summary = r.summary or r.reason or ""
        lines.append(f"| {r.number} | {r.name} | {_STATUS_MARK[r.status]} | {_cell(summary)} |")
    held = report.held()
    if held:
        lines += [
            "",
            "## Held for the engineer",
            "",
            "| what | how to reach it | expires |",
            "|---|---|---|",
        ]
        for h in held:
            lines.append(f"| {_cell(h.what)} | `{_cell(h.use)}` | {_ts(h.expires_at)} |")
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

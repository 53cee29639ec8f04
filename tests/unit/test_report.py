"""The incident report says what each rung found, who decided what, and what was reverted."""

from __future__ import annotations

from datetime import UTC, datetime

from ladder.incident import Incident
from ladder.report import Decision, LeaseRecord, Report, RungReport, render_markdown

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _report() -> Report:
    return Report(
        incident=Incident(id="inc-1", title="Checkout | 500s", started_at=T0),
        runbook="rb",
        environment="prod",
        flow_run_id="run-1",
        outcome="stopped",
        rungs=[
            RungReport(
                number=1,
                name="evidence",
                title="Evidence",
                status="done",
                summary="12 errors",
                details_markdown="### details here",
            ),
            RungReport(
                number=3, name="tunnel", title="Tunnel", status="not_built", reason="not built yet"
            ),
        ],
        decisions=[
            Decision(rung="tunnel", decision="stop", approver="ana", reason="enough", at=T0),
        ],
        leases=[
            LeaseRecord(
                id="l1",
                kind="postgres_database",
                target="replica_x",
                state="reverted",
                reverted_at=T0,
                outcome="dropped",
            ),
        ],
    )


def test_markdown_has_rungs_decisions_and_leases() -> None:
    md = render_markdown(_report())
    assert md.startswith("# Incident inc-1: Checkout \\| 500s")
    assert "- **Outcome:** stopped" in md
    assert "| 1 | evidence | done | 12 errors |" in md
    assert "| 3 | tunnel | not built | not built yet |" in md
    assert "| tunnel | stop | ana | 2026-11-25 10:00:00 UTC | enough |" in md
    assert (
        "| l1 | postgres_database | replica_x | reverted | 2026-11-25 10:00:00 UTC | dropped |"
        in md
    )
    assert "## 1. Evidence\n\n### details here" in md


def test_markdown_without_decisions_or_leases_says_so() -> None:
    report = _report().model_copy(update={"decisions": [], "leases": []})
    md = render_markdown(report)
    assert "No checkpoint was reached." in md
    assert "No change was made to any shared environment." in md


def test_json_round_trip_keeps_statuses() -> None:
    report = _report()
    again = Report.model_validate_json(report.model_dump_json())
    assert [r.status for r in again.rungs] == ["done", "not_built"]
    assert again.rung("tunnel").reason == "not built yet"


def test_the_report_shows_what_was_held_and_every_hold_decision() -> None:
    from ladder.rungs import Held

    report = _report()
    report.rungs[0].held = [
        Held(
            lease_id="l1",
            what="replica database ladder_replica_x",
            use="psql 'host=127.0.0.1 dbname=ladder_replica_x'",
            expires_at=T0,
        )
    ]
    report.decisions += [
        Decision(
            rung="hold",
            decision="extend",
            approver="bo",
            reason="one more query",
            at=T0,
            settings={"ttl_minutes": 30},
        ),
        Decision(
            rung="hold",
            decision="release",
            approver="nobody",
            reason="TTL passed",
            at=T0,
            timed_out=True,
        ),
    ]
    report.hold = "released at 2026-11-25 10:30:00 UTC: its TTL passed"
    text = render_markdown(report)
    assert "- **Hold:** released at 2026-11-25 10:30:00 UTC: its TTL passed" in text
    assert "## Held for the engineer" in text
    assert (
        "| replica database ladder_replica_x | `psql 'host=127.0.0.1 dbname=ladder_replica_x'` |"
        in text
    )
    assert "| hold | extend | bo |" in text
    assert "| hold | release | nobody (timed out) |" in text

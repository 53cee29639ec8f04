"""The inbox without a server: group commit agrees with one-by-one filing, windows open new
incidents, and a run's report shows how many alerts its incident counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ladder.incident import Incident
from ladder.intake.inbox import INTAKE_RECORD_LABEL, Inbox, NewAlert, Replay
from ladder.intake.writer import file_batch
from ladder.report import Report, render_markdown


def _alert(fp: str, status: str = "firing", window: int = 60, runbook: str | None = "rb.yaml") -> NewAlert:  # fmt: skip
    incident = {"title": f"boom {fp}", "source": "datadog",
                "started_at": datetime.now(UTC).isoformat(), "labels": {}}  # fmt: skip
    return NewAlert(
        "datadog", status, fp, f"boom {fp}", runbook, timedelta(minutes=window), incident, {}
    )


def test_group_commit_counts_like_one_by_one() -> None:
    inbox = Inbox()
    try:
        batch = [("datadog", [_alert(f"fp{i % 7}")], None, {}) for i in range(50)]
        batch += [
            ("sentry", [_alert("fp0")], "sentry:d1", {}),
            ("sentry", [_alert("fp0")], "sentry:d1", {}),
        ]
        results = file_batch(inbox, batch)
        assert isinstance(results[-1], Replay) and not isinstance(results[-2], Exception)
        more = file_batch(inbox, [("datadog", [_alert("fp1")], None, {})])
        assert more[0][0].count == 8 and not more[0][0].new  # type: ignore[index]
        recs = {r.fingerprint: r for r in inbox.records()}
        assert len(recs) == 7
        assert recs["fp0"].count == 8 + 1 and recs["fp1"].count == 7 + 1
        assert sum(r.count for r in recs.values()) == 52
        assert inbox.alert_count() == 52
        assert {r.state for r in recs.values()} == {"pending"}
        rec = recs["fp3"]
        assert rec.incident["labels"][INTAKE_RECORD_LABEL] == rec.id
        assert rec.incident["id"] == f"datadog-{rec.id[:12]}"
    finally:
        inbox.close()


def test_window_passed_or_resolved_opens_a_new_incident() -> None:
    inbox = Inbox()
    try:
        first = inbox.file("datadog", [_alert("a", window=0)], None, {})[0]
        second = inbox.file("datadog", [_alert("a", window=0)], None, {})[0]
        assert first.new and second.new and first.record_id != second.record_id  # window 0
        one = inbox.file("datadog", [_alert("b")], None, {})[0]
        closed = file_batch(inbox, [("datadog", [_alert("b", status="resolved")], None, {})])[0]
        assert closed[0].state == "closed" and closed[0].record_id == one.record_id  # type: ignore[index]
        again = inbox.file("datadog", [_alert("b")], None, {})[0]
        assert again.new and again.record_id != one.record_id
        unmatched = inbox.file("datadog", [_alert("c", runbook=None)], None, {})[0]
        assert unmatched.state == "unmatched"
        assert inbox.due() and all(r.runbook for r in inbox.due())
    finally:
        inbox.close()


def test_report_shows_the_alert_count() -> None:
    from tasks.report import _with_alert_count

    inbox = Inbox()
    try:
        results = file_batch(inbox, [("datadog", [_alert("r")], None, {})] * 5)
        record = inbox.record(results[0][0].record_id)  # type: ignore[index, arg-type]
    finally:
        inbox.close()
    assert record is not None
    report = Report(
        incident=Incident.model_validate(record.incident), runbook="rb", environment="e"
    )
    report = _with_alert_count(report)
    assert report.alerts == 5
    assert "**Alerts:** 5" in render_markdown(report)

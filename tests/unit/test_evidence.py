"""Rung 1: error groups, latency against the baseline, affected users, and a scrubbed report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ladder import evidence
from ladder.connectors.logfiles import LogSource
from ladder.errors import LogSourceError
from ladder.evidence import collect, normalize_message, to_markdown

LOGS = Path(__file__).parent.parent / "fixtures" / "logs"
RAILS = LOGS / "rails_production.log"
LOGRAGE = LOGS / "lograge_production.log"

WINDOW = (datetime(2026, 11, 25, 10, 0, tzinfo=UTC), datetime(2026, 11, 25, 10, 30, tzinfo=UTC))
SOURCES = [LogSource(path=RAILS, host="web-1"), LogSource(path=LOGRAGE, host="web-2")]


@pytest.fixture(scope="module")
def ev() -> evidence.Evidence:
    return collect(SOURCES, WINDOW)


def group(ev: evidence.Evidence, cls: str, frame_prefix: str | None) -> evidence.ErrorGroup:
    found = [
        g
        for g in ev.error_groups
        if g.exception_class == cls and (g.top_frame or "").startswith(frame_prefix or "")
    ]
    assert len(found) == 1, [(g.exception_class, g.top_frame) for g in ev.error_groups]
    return found[0]


def test_headline_counts(ev: evidence.Evidence) -> None:
    assert ev.window_start == WINDOW[0]
    assert ev.baseline_start == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    # rails: 7 requests in the window (the 10:45 one is after it); lograge: 9 (10:40 is after)
    assert ev.requests_in_window == 16
    assert ev.baseline_requests == 2 + 7
    # 5xx only: the 404 RecordNotFound is not an error
    assert ev.errors_in_window == 8
    assert ev.skipped_lines == 6


def test_the_same_bug_groups_across_sources_and_formats(ev: evidence.Evidence) -> None:
    capture = group(ev, "NoMethodError", "app/models/payment.rb:42")
    assert capture.count == 3  # two in the Rails log, one in the lograge log
    assert capture.baseline_count == 1
    assert capture.message == "undefined method `amount_cents' for nil:NilClass"
    assert capture.top_frame == "app/models/payment.rb:42:in `capture!'"
    assert capture.first_seen == datetime(2026, 11, 25, 10, 0, 1, 123456, tzinfo=UTC)
    assert capture.last_seen == datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
    assert capture.users == ["42", "1337"]
    assert capture.endpoints == ["CheckoutController#create"]
    assert capture.request_ids == [
        "3f2b9a10-7c1d-4e8a-b2f4-000000000101",
        "3f2b9a10-7c1d-4e8a-b2f4-000000000103",
        "9a0e4b1c-2222-4c2d-8e3f-000000000008",
    ]
    assert ev.error_groups[0] == capture  # the biggest group comes first


def test_messages_differing_only_in_ids_group_together(ev: evidence.Evidence) -> None:
    declined = group(ev, "PaymentGateway::CardDeclined", "app/models/payment.rb:57")
    assert declined.count == 2
    assert declined.message == (
        "Card [CARD] declined for order <n> (gateway ref <id>, contact [EMAIL])"
    )
    assert declined.users == ["42", "77"]


def test_a_different_top_frame_is_a_different_group(ev: evidence.Evidence) -> None:
    refund = group(ev, "NoMethodError", "app/services/refund_service.rb")
    assert refund.count == 1
    assert refund.message == group(ev, "NoMethodError", "app/models/payment.rb").message
    assert refund.endpoints == ["RefundsController#create"]


def test_failures_without_an_exception_and_4xx(ev: evidence.Evidence) -> None:
    unavailable = group(ev, "HTTP 503", None)
    assert (unavailable.count, unavailable.top_frame, unavailable.users) == (1, None, [])
    assert not [g for g in ev.error_groups if g.exception_class == "ActiveRecord::RecordNotFound"]
    assert not [g for g in ev.error_groups if g.exception_class == "Redis::TimeoutError"]  # 10:45


def test_window_filtering() -> None:
    narrow = collect(
        [LogSource(path=LOGRAGE)],
        (datetime(2026, 11, 25, 10, 3), datetime(2026, 11, 25, 10, 9)),  # naive = UTC
        baseline_minutes=2,
    )
    assert narrow.requests_in_window == 5
    assert narrow.baseline_requests == 1  # 10:01
    assert narrow.errors_in_window == 3
    assert [g.count for g in narrow.error_groups] == [2, 1]


def test_percentiles_against_the_baseline() -> None:
    ev = collect([LogSource(path=LOGRAGE)], WINDOW)
    orders = next(r for r in ev.latency if r.endpoint == "OrdersController#show")
    # window: 100, 200, 300, 400, 1000 ms; baseline: 100, 110, ..., 150 ms (linear interpolation)
    assert (orders.requests, orders.baseline_requests) == (5, 6)
    assert (orders.p50_ms, orders.p95_ms, orders.p99_ms) == pytest.approx((300, 880, 976))
    assert (orders.baseline_p50_ms, orders.baseline_p95_ms, orders.baseline_p99_ms) == (
        pytest.approx((125, 147.5, 149.5))
    )
    assert orders.p95_ratio == pytest.approx(880 / 147.5)
    capture = next(r for r in ev.latency if r.endpoint == "PaymentsController#capture")
    assert (capture.baseline_requests, capture.baseline_p95_ms, capture.p95_ratio) == (
        0,
        None,
        None,
    )
    assert ev.latency[0].endpoint == "OrdersController#show"  # the worst ratio first


def test_affected_users_and_endpoints(ev: evidence.Evidence) -> None:
    assert ev.affected_users[0] == "42"  # three 5xx
    assert set(ev.affected_users) == {"42", "1337", "7", "99", "77"}
    assert ev.affected_endpoints[0] == "CheckoutController#create"
    assert "OrdersController#show" not in ev.affected_endpoints  # its only failure is at 10:45


def test_samples_show_errors_first() -> None:
    ev = collect(SOURCES, WINDOW, samples=7)
    assert len(ev.samples) == 7
    first = ev.samples[0]
    assert first.request_id == "3f2b9a10-7c1d-4e8a-b2f4-000000000101"
    assert first.exception == "NoMethodError: undefined method `amount_cents' for nil:NilClass"
    assert json.loads(first.params or "")["order"]["card_number"] == "[FILTERED]"
    statuses = [s.status for s in ev.samples]
    assert all(s is not None and s >= 500 for s in statuses[:5])  # one per error group
    assert statuses[5:] == [200, 200]  # then the slowest good requests
    assert ev.samples[5].duration_ms == 1000.0
    assert collect(SOURCES, WINDOW, samples=0).samples == []


def test_the_report_holds_no_pii(ev: evidence.Evidence, planted: list[str]) -> None:
    markdown = to_markdown(ev)
    rows = json.dumps([evidence.error_rows(ev), evidence.latency_rows(ev)])
    dumped = ev.model_dump_json()
    for value in planted:
        assert value not in markdown, value
        assert value not in rows, value
        assert value not in dumped, value


def test_the_report_reads_well(ev: evidence.Evidence) -> None:
    markdown = to_markdown(ev)
    assert "**16** requests in the window (9 in the baseline)" in markdown
    assert "**8** failed with a 5xx (50.0%), in **5** error groups" in markdown
    assert "6 malformed log lines skipped" in markdown
    assert (
        "| 3 | 1 | NoMethodError | undefined method \\`amount_cents' for nil:NilClass "
        "| app/models/payment.rb:42:in \\`capture!' | 2 | 2026-11-25 10:00:01 | 2026-11-25 10:05:00 |"
    ) in markdown
    assert "| OrdersController#show | 7 |" in markdown
    assert "Users with a 5xx in the window, most affected first: `42`" in markdown
    assert markdown.count("```text") == 3
    assert "[FILTERED]" in markdown


def test_rows_for_table_artifacts(ev: evidence.Evidence) -> None:
    errors = evidence.error_rows(ev)
    assert errors[0]["count"] == 3
    assert errors[0]["first_seen"] == "2026-11-25T10:00:01.123456+00:00"
    assert errors[0]["users"] == 2
    latency = evidence.latency_rows(ev)
    assert latency[0]["endpoint"] == "OrdersController#show"
    assert set(latency[0]) >= {"p50_ms", "p95_ms", "p99_ms", "baseline_p95_ms", "p95_ratio"}
    json.dumps([errors, latency])  # plain JSON values only


def test_an_empty_window() -> None:
    ev = collect(SOURCES, (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC)))
    assert (ev.requests_in_window, ev.errors_in_window, ev.error_groups) == (0, 0, [])
    markdown = to_markdown(ev)
    assert "No failed requests in the window." in markdown
    assert "No requests in the window." in markdown


def test_a_missing_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LogSourceError, match="log file not found"):
        collect([*SOURCES, LogSource(path=tmp_path / "web-3.log")], WINDOW)


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        collect(SOURCES, (WINDOW[1], WINDOW[0]))


@pytest.mark.parametrize(
    ("message", "normalized"),
    [
        ("Couldn't find Order with 'id'=1001", "Couldn't find Order with 'id'=<n>"),
        ("Couldn't find User with 'email'='[EMAIL]'", "Couldn't find User with 'email'='<str>'"),
        ("Lock wait timeout for job 3f2b9a10-7c1d-4e8a-b2f4-000000000101 after 50.5s",
         "Lock wait timeout for job <uuid> after <n>s"),
        ("undefined method `total' for #<Order:0x000055d5c0ffee00 id: 7>",
         "undefined method `total' for #<Order>"),
        ('PG::UniqueViolation: duplicate key "index_users_on_email" Key (id)=(42)',
         'PG::UniqueViolation: duplicate key "index_users_on_email" Key (id)=(<n>)'),
        ("digest deadbeefcafe1234 mismatch", "digest <id> mismatch"),
        ("Net::ReadTimeout with #<TCPSocket:(closed)>", "Net::ReadTimeout with #<TCPSocket>"),
    ],
)  # fmt: skip
def test_normalize_message(message: str, normalized: str) -> None:
    assert normalize_message(message) == normalized


def test_top_frame_cuts_the_deploy_path() -> None:
    backtrace = (
        "/usr/local/bundle/gems/rack-3.0/lib/rack/x.rb:1:in `call'\n"
        "/srv/shop/releases/20261125/app/models/order.rb:12:in `total'\n"
        "app/controllers/orders_controller.rb:3:in `show'"
    )
    assert evidence.aggregate._top_frame(backtrace, "app/") == "app/models/order.rb:12:in `total'"
    assert evidence.aggregate._top_frame("lib/x.rb:1", "app/") is None

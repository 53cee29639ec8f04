"""The sandbox's Rails logs: two well-formed formats, an incident where the spec puts it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ladder.sandbox.railslogs import ruby_inspect, write_logs
from ladder.sandbox.traffic import IncidentSpec, LogUser

CLASSIC = re.compile(
    r"^(?P<sev>[DIWEF]), \[(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}) #(?P<pid>\d+)\] "
    r"+(?P<level>DEBUG|INFO|WARN|ERROR|FATAL) -- : "
    r"\[(?P<rid>[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12})\] "
    r"\[user:(?P<user>\d+|-)\] (?P<msg>.*)$"
)
COMPLETED = re.compile(r"^Completed (?P<status>\d{3}) [A-Za-z ]+ in (?P<ms>\d+)ms \(")
LOGRAGE_KEYS = {
    "time", "method", "path", "format", "controller", "action", "status", "duration",
    "view", "db", "request_id", "user_id", "remote_ip", "params",
}  # fmt: skip
END = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FAILING = [3, 7, 9]
SLOW = 11


def _users() -> list[LogUser]:
    return [
        LogUser(
            i,
            f"user{i}@example.org",
            "Ann",
            "O'Lee",
            f"+1-555-01{i:02d}",
            f"203.0.113.{i}",
            f"{i} Main St\nSpringfield, IL 62701",
        )
        for i in range(1, 80)
    ]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[IncidentSpec, list[Path]]:
    spec = IncidentSpec.ending_at(END, FAILING, SLOW)
    paths = write_logs(tmp_path_factory.mktemp("logs"), _users(), spec, requests=3000, seed=7)
    return spec, paths


def _classic(path: Path) -> list[re.Match[str]]:
    lines = path.read_text().splitlines()
    matches = [CLASSIC.match(line) for line in lines]
    bad = [line for line, m in zip(lines, matches, strict=True) if m is None]
    assert not bad, f"malformed classic lines: {bad[:3]}"
    return [m for m in matches if m is not None]


def _requests_by_id(matches: list[re.Match[str]]) -> dict[str, list[re.Match[str]]]:
    grouped: dict[str, list[re.Match[str]]] = {}
    for m in matches:
        grouped.setdefault(m["rid"], []).append(m)
    return grouped


def _when(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).replace(tzinfo=UTC)


def test_writes_a_classic_and_a_lograge_log(logs: tuple[IncidentSpec, list[Path]]) -> None:
    _, paths = logs
    assert [p.parent.name for p in paths] == ["web-1", "web-2"]
    assert all(p.name == "production.log" for p in paths)
    classic = _classic(paths[0])
    requests = _requests_by_id(classic)
    for lines in requests.values():
        messages = [m["msg"] for m in lines]
        assert messages[0].startswith("Started ")
        assert messages[1].startswith("Processing by ")
        assert any(COMPLETED.match(msg) for msg in messages)
    entries = [json.loads(line) for line in paths[1].read_text().splitlines()]
    assert entries and all(e.keys() >= LOGRAGE_KEYS for e in entries)
    assert all(e["user_id"] is None or isinstance(e["user_id"], int) for e in entries)
    assert all(e["time"].endswith("Z") for e in entries)
    total = len(requests) + len(entries)
    assert total == 3000


def test_classic_log_tags_and_shapes(logs: tuple[IncidentSpec, list[Path]]) -> None:
    _, paths = logs
    classic = _classic(paths[0])
    started = [m["msg"] for m in classic if m["msg"].startswith("Started ")]
    assert all(
        re.match(r'^Started (GET|POST) "/\S*" for \d+\.\d+\.\d+\.\d+ at [\d-]+ [\d:]+ \+0000$', s)
        for s in started
    )
    assert {m["user"] for m in classic} >= {"-", "3"}
    assert all(m["sev"] == m["level"][0] for m in classic)


def test_incident_500s_are_in_the_window_and_hit_the_failing_customers(
    logs: tuple[IncidentSpec, list[Path]],
) -> None:
    spec, paths = logs
    failures: list[tuple[datetime, int, str]] = []  # (time, user, exception class)
    for rid_lines in _requests_by_id(_classic(paths[0])).values():
        done = next(m for m in rid_lines if COMPLETED.match(m["msg"]))
        if COMPLETED.match(done["msg"])["status"] == "500":
            fatal = [m["msg"] for m in rid_lines if m["level"] == "FATAL"]
            assert fatal[0] == "  " and fatal[2] == "  "
            assert fatal[3].startswith("app/")
            failures.append((_when(rid_lines[0]["ts"]), int(done["user"]), fatal[1].split(" (")[0]))
    for e in map(json.loads, paths[1].read_text().splitlines()):
        if e["status"] == 500:
            assert e["exception_backtrace"][0].startswith("app/")
            failures.append((_when(e["time"]), e["user_id"], e["exception"][0]))
    assert failures
    assert all(spec.started_at <= t <= spec.ended_at for t, _, _ in failures)
    nil_payment = [(t, u) for t, u, cls in failures if cls == "NoMethodError"]
    assert {u for _, u in nil_payment} == set(FAILING)
    others = [cls for _, u, cls in failures if cls != "NoMethodError"]
    assert 2 <= len(others) < len(nil_payment)
    assert set(others) <= {"ActiveRecord::RecordNotUnique", "ActiveRecord::QueryCanceled"}


def test_both_hosts_log_the_incident(logs: tuple[IncidentSpec, list[Path]]) -> None:
    _, paths = logs
    assert (
        "NoMethodError (undefined method `amount_cents' for nil:NilClass):" in paths[0].read_text()
    )
    assert '"exception": ["NoMethodError"' in paths[1].read_text()


def test_orders_list_is_slow_for_the_big_customer_in_the_window(
    logs: tuple[IncidentSpec, list[Path]],
) -> None:
    spec, paths = logs
    inside: list[float] = []
    outside: list[float] = []
    for e in map(json.loads, paths[1].read_text().splitlines()):
        if e["path"] == "/orders" and e["method"] == "GET":
            window = spec.started_at <= _when(e["time"]) <= spec.ended_at
            (inside if window else outside).append(e["duration"])
    p95 = lambda xs: sorted(xs)[int(0.95 * (len(xs) - 1))]  # noqa: E731
    assert inside and outside
    assert p95(inside) > 4 * p95(outside)


def test_params_carry_the_pii_a_careless_app_logs(logs: tuple[IncidentSpec, list[Path]]) -> None:
    _, paths = logs
    text = paths[0].read_text() + paths[1].read_text()
    assert re.search(r"\b\d{4} \d{4} \d{4} \d{4}\b", text)  # card numbers with spaces
    assert "user3@example.org" in text
    assert '"password"=>"[FILTERED]"' in text
    assert re.search(r'"password"(=>|: )"(?!\[FILTERED\])[^"]+"', text)  # some raw passwords
    assert re.search(r'"api_token"(=>|: )"tok_live_[0-9a-f]+"', text)


def test_same_seed_same_bytes_other_seed_other_traffic(tmp_path: Path) -> None:
    spec = IncidentSpec.ending_at(END, FAILING, SLOW)
    a = write_logs(tmp_path / "a", _users(), spec, requests=400, seed=1)
    b = write_logs(tmp_path / "b", _users(), spec, requests=400, seed=1)
    c = write_logs(tmp_path / "c", _users(), spec, requests=400, seed=2)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_incident_users_must_be_in_the_sample(tmp_path: Path) -> None:
    spec = IncidentSpec.ending_at(END, [3, 500], SLOW)
    with pytest.raises(ValueError, match=r"users_sample lacks the incident's users \[500\]"):
        write_logs(tmp_path, _users(), spec)


def test_too_few_requests_is_refused(tmp_path: Path) -> None:
    spec = IncidentSpec.ending_at(END, FAILING, SLOW)
    with pytest.raises(ValueError, match="requests must be at least 200"):
        write_logs(tmp_path, _users(), spec, requests=10)


def test_ruby_inspect_prints_params_like_rails() -> None:
    params = {"order": {"email": "a@b.c", "note": 'say "hi"\nbye'}, "ids": [1, 2], "x": None}
    assert ruby_inspect(params) == (
        '{"order"=>{"email"=>"a@b.c", "note"=>"say \\"hi\\"\\nbye"}, "ids"=>[1, 2], "x"=>nil}'
    )

"""Rails and lograge logs become scrubbed request rows, streamed in bounded chunks."""

from __future__ import annotations

import gzip
import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pydantic
import pytest

from ladder.connectors.logfiles import (
    COLUMNS,
    LogSource,
    ParseStats,
    detect_format,
    parse_ruby_inspect,
    read_requests,
)
from ladder.errors import LogSourceError

LOGS = Path(__file__).parent.parent / "fixtures" / "logs"
RAILS = LOGS / "rails_production.log"
LOGRAGE = LOGS / "lograge_production.log"


def read_all(source: LogSource, **kwargs: object) -> tuple[pd.DataFrame, ParseStats]:
    stats = ParseStats()
    frames = list(read_requests(source, stats=stats, **kwargs))  # type: ignore[arg-type]
    return pd.concat(frames, ignore_index=True), stats


def by_request(frame: pd.DataFrame, request_id: str) -> pd.Series:
    rows = frame[frame["request_id"] == request_id]
    assert len(rows) == 1, f"{request_id}: {len(rows)} rows"
    return rows.iloc[0]


def assert_no_planted_values(frame: pd.DataFrame, planted: list[str]) -> None:
    for column in frame.columns:
        for cell in frame[column].dropna().astype(str):
            for value in planted:
                assert value not in cell, f"{value!r} leaked in column {column}: {cell!r}"


def test_format_is_detected_per_file() -> None:
    assert detect_format(RAILS) == "rails"
    assert detect_format(LOGRAGE) == "lograge"
    stats = ParseStats()
    list(read_requests(LogSource(path=LOGRAGE), stats=stats))
    assert stats.format == "lograge"


def test_a_file_in_neither_format_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "nginx.log"
    path.write_text('203.0.113.5 - - [25/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 612\n')
    with pytest.raises(LogSourceError, match=r"nginx\.log: cannot tell the log format"):
        read_requests(LogSource(path=path))


def test_a_missing_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "production.log"
    with pytest.raises(LogSourceError, match=r"log file not found: .*production\.log"):
        read_requests(LogSource(path=missing, format="rails"))
    with pytest.raises(LogSourceError, match="is a directory"):
        read_requests(LogSource(path=tmp_path, format="lograge"))


def test_empty_and_corrupt_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("\n")
    assert list(read_requests(LogSource(path=empty))) == []
    corrupt = tmp_path / "production.log.gz"
    corrupt.write_bytes(b"not gzip at all")
    with pytest.raises(LogSourceError, match=r"cannot read log file .*production\.log\.gz"):
        read_requests(LogSource(path=corrupt))


def test_log_source_refuses_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError, match="extra"):
        LogSource.model_validate({"path": "x.log", "remote_ip": True})
    with pytest.raises(pydantic.ValidationError):
        LogSource.model_validate({"path": "x.log", "format": "nginx"})


def test_chunk_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_rows"):
        read_requests(LogSource(path=RAILS), chunk_rows=0)


def test_rails_lines_are_grouped_by_request_id_across_interleaved_threads() -> None:
    frame, _ = read_all(LogSource(path=RAILS, host="web-1"))
    assert list(frame.columns) == COLUMNS
    assert "remote_ip" not in frame.columns

    failed = by_request(frame, "3f2b9a10-7c1d-4e8a-b2f4-000000000101")
    assert failed["time"] == pd.Timestamp("2026-11-25T10:00:01.123456Z")
    assert (failed["host"], failed["method"], failed["path"]) == ("web-1", "POST", "/checkout")
    assert failed["endpoint"] == "CheckoutController#create"
    assert (failed["status"], failed["duration_ms"], failed["user_id"]) == (500, 123.0, "42")
    assert failed["exception_class"] == "NoMethodError"
    assert failed["exception_message"] == "undefined method `amount_cents' for nil:NilClass"
    assert failed["backtrace"].split("\n") == [
        "/usr/local/bundle/gems/activesupport-7.1.3/lib/active_support/core_ext/object/try.rb:15:in `public_send'",
        "app/models/payment.rb:42:in `capture!'",
        "app/controllers/checkout_controller.rb:18:in `create'",
    ]
    params = json.loads(failed["params"])
    assert params["user_id"] == "42"
    assert params["order"]["email"] == "[FILTERED]"
    assert params["order"]["shipping_address"] == "[FILTERED]"
    assert params["order"]["note"] == "ring [PHONE] on arrival"

    interleaved = by_request(frame, "3f2b9a10-7c1d-4e8a-b2f4-000000000102")
    assert (interleaved["status"], interleaved["duration_ms"], interleaved["user_id"]) == (
        200,
        95.0,
        "7",
    )
    assert pd.isna(interleaved["exception_class"])


def test_rails_anonymous_users_untagged_requests_and_multiline_messages() -> None:
    frame, _ = read_all(LogSource(path=RAILS))
    anonymous = by_request(frame, "3f2b9a10-7c1d-4e8a-b2f4-000000000104")
    assert pd.isna(anonymous["user_id"])
    assert anonymous["status"] == 404
    assert anonymous["exception_message"] == "Couldn't find Order with 'id'=9999"

    untagged = frame[frame["endpoint"] == "Rails::HealthController#show"].iloc[0]
    assert pd.isna(untagged["request_id"])
    assert (untagged["path"], untagged["status"], untagged["duration_ms"]) == ("/up", 200, 1.0)

    did_you_mean = by_request(frame, "3f2b9a10-7c1d-4e8a-b2f4-000000000108")
    assert did_you_mean["exception_message"] == (
        "undefined local variable or method `qurey' for an instance of SearchController\n"
        "Did you mean?  query"
    )
    assert did_you_mean["path"] == "/search?q=[EMAIL]"


def test_frame_dtypes() -> None:
    frame, _ = read_all(LogSource(path=LOGRAGE))
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"
    assert str(frame["status"].dtype) == "Int64"
    assert frame["duration_ms"].dtype == "float64"
    for column in ("host", "request_id", "endpoint", "user_id", "params", "backtrace"):
        assert isinstance(frame[column].dtype, pd.StringDtype), column


def test_lograge_rows() -> None:
    frame, _ = read_all(LogSource(path=LOGRAGE, host="web-2"))
    checkout = by_request(frame, "9a0e4b1c-2222-4c2d-8e3f-000000000008")
    assert checkout["endpoint"] == "CheckoutController#create"
    assert (checkout["status"], checkout["duration_ms"], checkout["user_id"]) == (500, 250.5, "42")
    assert checkout["exception_class"] == "NoMethodError"
    assert checkout["backtrace"].split("\n")[0] == "app/models/payment.rb:42:in `capture!'"
    assert json.loads(checkout["params"]) == {
        "order": {
            "email": "[FILTERED]",
            "billing_email": "[FILTERED]",
            "card_number": "[FILTERED]",
            "phone": "[FILTERED]",
            "notes": "leave with the concierge, call [PHONE]",
        },
        "api_key": "[FILTERED]",
        "user_id": "42",
    }
    declined = by_request(frame, "9a0e4b1c-2222-4c2d-8e3f-000000000010")
    assert declined["exception_message"] == (
        "Card [CARD] declined for order 1001 (gateway ref ch_3Nv0a2B3c4D5e6F7, contact [EMAIL])"
    )
    assert pd.isna(by_request(frame, "9a0e4b1c-2222-4c2d-8e3f-000000000009")["user_id"])


@pytest.mark.parametrize("path", [RAILS, LOGRAGE], ids=["rails", "lograge"])
def test_nothing_unscrubbed_leaves_the_connector(path: Path, planted: list[str]) -> None:
    frame, _ = read_all(LogSource(path=path))
    assert len(frame) > 5
    assert_no_planted_values(frame, planted)


@pytest.mark.parametrize(("path", "lines", "skipped"), [(RAILS, 71, 3), (LOGRAGE, 20, 3)])
def test_malformed_lines_are_skipped_and_counted(path: Path, lines: int, skipped: int) -> None:
    frame, stats = read_all(LogSource(path=path))
    assert (stats.lines, stats.skipped, stats.requests) == (lines, skipped, len(frame))


def test_window_filtering_is_inclusive_and_naive_times_are_utc() -> None:
    source = LogSource(path=LOGRAGE)
    frame, stats = read_all(
        source, start=datetime(2026, 11, 25, 10, 3), end=datetime(2026, 11, 25, 10, 9)
    )
    assert list(frame["time"].dt.strftime("%H:%M")) == ["10:03", "10:04", "10:06", "10:08", "10:09"]
    assert stats.requests == 5
    empty = list(read_requests(source, start=datetime(2027, 1, 1, tzinfo=UTC)))
    assert empty == []


def test_rails_local_times_are_converted_with_the_started_offset(tmp_path: Path) -> None:
    path = tmp_path / "production.log"
    path.write_text(
        'I, [2026-11-25T11:00:01.000000 #1]  INFO -- : [abc-1] Started GET "/" for 203.0.113.5 at 2026-11-25 11:00:01 +0100\n'
        "I, [2026-11-25T11:00:01.010000 #1]  INFO -- : [abc-1] Processing by HomeController#index as HTML\n"
        "I, [2026-11-25T11:00:01.020000 #1]  INFO -- : [abc-1] Completed 200 OK in 20ms (Views: 1.0ms)\n"
    )
    frame, _ = read_all(LogSource(path=path))
    assert frame["time"].iloc[0] == pd.Timestamp("2026-11-25T10:00:01Z")
    assert pd.isna(frame["user_id"].iloc[0])


def test_reading_stops_after_the_window_in_the_loggers_own_zone(tmp_path: Path) -> None:
    path = tmp_path / "production.log"
    with path.open("w") as out:
        for n, local in enumerate(["11:00", "11:20", "11:35", "12:30"]):
            head = f"I, [2026-11-25T{local}:00.000000 #1]  INFO -- : [r{n}]"
            out.write(
                f'{head} Started GET "/" for 203.0.113.5 at 2026-11-25 {local}:00 +0100\n'
                f"{head} Completed 200 OK in 5ms\n"
            )
    source = LogSource(path=path)
    frame, stats = read_all(source, end=datetime(2026, 11, 25, 10, 30, tzinfo=UTC))
    assert list(frame["request_id"]) == ["r0", "r1"]
    assert stats.lines < 8  # 12:30 (+0100) is past the window and its slack: not read


def test_gzip_files_read_like_plain_ones(tmp_path: Path) -> None:
    packed = tmp_path / "production.log.gz"
    with LOGRAGE.open("rb") as plain, gzip.open(packed, "wb") as out:
        shutil.copyfileobj(plain, out)
    expected, _ = read_all(LogSource(path=LOGRAGE))
    got, _ = read_all(LogSource(path=packed))
    pd.testing.assert_frame_equal(got, expected)


def test_unreadable_params_are_scrubbed_as_text(tmp_path: Path) -> None:
    path = tmp_path / "production.log"
    path.write_text(
        'I, [2026-11-25T10:00:01.000000 #1]  INFO -- : [r1] Started POST "/upload" for 203.0.113.5 at 2026-11-25 10:00:01 +0000\n'
        'I, [2026-11-25T10:00:01.000100 #1]  INFO -- : [r1]   Parameters: {"file"=>#<ActionDispatch::Http::UploadedFile:0x0 @tempfile=#<Tempfile:/tmp/x>, @original_filename="cv.pdf">, "email"=>"ann@example.org"}\n'
        "I, [2026-11-25T10:00:01.000200 #1]  INFO -- : [r1] Completed 201 Created in 5ms\n"
    )
    frame, _ = read_all(LogSource(path=path))
    params = json.loads(frame["params"].iloc[0])
    assert isinstance(params, str)
    assert "ann@example.org" not in params
    assert '"email"=>"[FILTERED]"' in params


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"id"=>"1001"}', {"id": "1001"}),
        ('{"a" => [1, 2.5, nil, true], b: :sym, "c d": "x\\"y\\n"}',
         {"a": [1, 2.5, None, True], "b": "sym", "c d": 'x"y\n'}),
        ("{:page=>2, :tags=>[\"x\"]}", {"page": 2, "tags": ["x"]}),
        ('{"name"=>"Ren\\u00e9e"}', {"name": "Renée"}),
        ("{}", {}),
        ("not a hash", "not a hash"),
        ('{"unclosed"=>"x"', '{"unclosed"=>"x"'),
    ],
)  # fmt: skip
def test_parse_ruby_inspect(text: str, expected: object) -> None:
    assert parse_ruby_inspect(text) == expected


def write_lograge(path: Path, requests: int) -> None:
    """A generated lograge file: one request every 10 ms, every 100th failing."""
    start = pd.Timestamp("2026-11-25T08:00:00Z")
    times = (start + pd.to_timedelta(range(requests), unit="ms") * 10).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    template = (
        '{{"time":"{t}","method":"GET","path":"/orders/{i}","format":"html",'
        '"controller":"OrdersController","action":"show","status":{s},"duration":{d},'
        '"request_id":"{r}","user_id":{u},"remote_ip":"203.0.113.{ip}",'
        '"params":{{"id":"{i}","email":"user{u}@example.org"}}}}\n'
    )
    with path.open("w") as out:
        for i, t in enumerate(times):
            out.write(
                template.format(
                    t=t,
                    i=i,
                    s=500 if i % 100 == 0 else 200,
                    d=20 + i % 180,
                    r=uuid.UUID(int=i + 1, version=4),
                    u=i % 1000,
                    ip=i % 250,
                )
            )


def test_a_large_log_is_read_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "production.log"
    write_lograge(path, 200_000)
    stats = ParseStats()
    sizes = []
    for frame in read_requests(LogSource(path=path), chunk_rows=25_000, stats=stats):
        sizes.append(len(frame))
        assert "203.0.113." not in " ".join(frame["params"].head(50))
        assert frame["params"].str.contains("@example.org").sum() == 0
    assert len(sizes) == 8
    assert max(sizes) <= 25_000
    assert sum(sizes) == stats.requests == 200_000
    assert stats.skipped == 0


def test_a_large_rails_log_is_read_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "production.log"
    with path.open("w") as out:
        for i in range(20_000):
            ts = (
                pd.Timestamp("2026-11-25T08:00:00") + pd.Timedelta(milliseconds=50 * i)
            ).isoformat()
            tag = f"[{uuid.UUID(int=i + 1, version=4)}] [user:{i % 97}]"
            out.write(
                f'I, [{ts} #1]  INFO -- : {tag} Started GET "/orders/{i}" for 203.0.113.7 at 2026-11-25 08:00:00 +0000\n'
                f"I, [{ts} #1]  INFO -- : {tag} Processing by OrdersController#show as HTML\n"
                f'I, [{ts} #1]  INFO -- : {tag}   Parameters: {{"id"=>"{i}"}}\n'
                f"I, [{ts} #1]  INFO -- : {tag} Completed 200 OK in {i % 300}ms\n"
            )
    sizes = [len(f) for f in read_requests(LogSource(path=path), chunk_rows=3_000)]
    assert sum(sizes) == 20_000
    assert max(sizes) <= 3_000
    assert len(sizes) >= 7

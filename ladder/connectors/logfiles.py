"""Rails production logs, parsed into scrubbed request rows, streamed in bounded chunks.

Two formats, told apart per file (``format="auto"``):

- ``rails``: the classic ``Logger`` format with ``config.log_tags = [:request_id, ...]``::

      I, [2026-11-25T10:00:01.123456 #1234]  INFO -- : [3f2b…] [user:42] Started POST "/checkout" …

  Lines of one request are grouped by their request id tag (or by process id when a line has no
  tags), so interleaved requests from several Puma threads come apart again.
- ``lograge``: one JSON object per line (``time``, ``method``, ``path``, ``controller``,
  ``action``, ``status``, ``duration``, ``request_id``, ``user_id``, ``params``, ``exception``, …).

Every chunk has the columns in ``COLUMNS``. Every text that leaves this module has passed the
scrubber (``params`` through ``scrub_value``, the rest through ``scrub_series``); ``remote_ip`` is
dropped. A malformed line is counted in ``ParseStats.skipped`` and skipped; only a missing or
unreadable file is an error (``LogSourceError``).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from ladder.connectors._ruby import parse_ruby_inspect
from ladder.errors import LogSourceError
from ladder.sanitize.scrub import scrub_series, scrub_value

__all__ = [
    "COLUMNS", "LogSource", "ParseStats", "detect_format", "parse_ruby_inspect", "read_requests",
]  # fmt: skip

COLUMNS = [
    "time", "host", "request_id", "method", "path", "endpoint", "status", "duration_ms",
    "user_id", "params", "exception_class", "exception_message", "backtrace",
]  # fmt: skip

Format = Literal["rails", "lograge"]
_T = TypeVar("_T")

# A request whose lines go on after the window's end is still read; past this, reading stops.
_TAIL_SLACK = timedelta(minutes=10)
# Lines of a request (an exception after "Completed") arrive within this much log time.
_GRACE = timedelta(seconds=5)
# A request with no "Completed" line is given up on after this much log time.
_STALE = timedelta(minutes=15)
_MAX_FRAMES = 100


class LogSource(BaseModel):
    """One log file of one host. ``path`` may be gzip-compressed (``.gz``)."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    format: Literal["auto", "rails", "lograge"] = "auto"
    host: str | None = None


@dataclass
class ParseStats:
    """What a read saw: lines read, malformed lines skipped, request rows emitted."""

    lines: int = 0
    skipped: int = 0
    requests: int = 0
    format: Format | None = None


def read_requests(
    source: LogSource,
    start: datetime | None = None,
    end: datetime | None = None,
    chunk_rows: int = 50_000,
    stats: ParseStats | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield scrubbed request rows with ``start <= time <= end``, at most ``chunk_rows`` per frame.

    The file is opened and its format told before this returns, so a missing file raises
    ``LogSourceError`` here, not at the first ``next()``. Pass a ``ParseStats`` to learn how many
    lines were skipped as malformed.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    stats = stats if stats is not None else ParseStats()
    _open(source.path).close()  # a missing file fails here, not at the first next()
    fmt = source.format if source.format != "auto" else detect_format(source.path)
    stats.format = fmt
    window = (_utc(start), _utc(end))
    reader = _read_lograge if fmt == "lograge" else _read_rails
    return _guarded(source.path, reader(source, window, chunk_rows, stats))


def detect_format(path: Path, sample_lines: int = 50) -> Format:
    """Tell ``rails`` from ``lograge`` by the first non-blank lines of ``path``.

    An empty file has nothing to read either way and is called ``rails``.
    """
    votes = {"rails": 0, "lograge": 0}
    seen = 0
    with _open(path) as handle:
        for line in _guarded(path, iter(handle)):
            if not line.strip() or line.startswith("# Logfile created on"):
                continue
            seen += 1
            if _RAILS_LINE.match(line):
                votes["rails"] += 1
            elif line.lstrip().startswith("{") and isinstance(_json_object(line), dict):
                votes["lograge"] += 1
            if seen >= sample_lines:
                break
    if seen == 0:
        return "rails"
    if not any(votes.values()):
        raise LogSourceError(
            f"{path}: cannot tell the log format (neither Rails logger lines nor lograge JSON "
            f"in the first {seen} lines); set format: rails or format: lograge"
        )
    return "rails" if votes["rails"] >= votes["lograge"] else "lograge"


# --- files ---------------------------------------------------------------------------------------


def _open(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8", errors="replace")
        return path.open("r", encoding="utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise LogSourceError(f"log file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise LogSourceError(f"log path is a directory, not a file: {path}") from exc
    except OSError as exc:
        raise LogSourceError(f"cannot read log file {path}: {exc.strerror}") from exc


def _guarded(path: Path, items: Iterator[_T]) -> Iterator[_T]:
    try:
        yield from items
    except (OSError, EOFError) as exc:  # truncated gzip, disk errors while reading
        raise LogSourceError(f"cannot read log file {path}: {exc}") from exc


def _utc(value: datetime | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)


def _json_object(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


# --- lograge -------------------------------------------------------------------------------------


def _read_lograge(
    source: LogSource, window: tuple[Any, Any], chunk_rows: int, stats: ParseStats
) -> Iterator[pd.DataFrame]:
    start, end = window
    with _open(source.path) as handle:
        rows: list[dict[str, Any]] = []
        for line in handle:
            if not line.strip():
                continue
            stats.lines += 1
            row = _lograge_row(line)
            if row is None:
                stats.skipped += 1
                continue
            rows.append(row)
            if len(rows) >= chunk_rows:
                frame, past_end = _finish(rows, source.host, start, end, stats)
                rows = []
                if len(frame):
                    yield frame
                if past_end:
                    return
        if rows:
            frame, _ = _finish(rows, source.host, start, end, stats)
            if len(frame):
                yield frame


def _lograge_row(line: str) -> dict[str, Any] | None:
    data = _json_object(line)
    if not isinstance(data, dict) or not isinstance(data.get("time"), str):
        return None
    exception = data.get("exception")
    if isinstance(exception, list | tuple):
        exc_class = str(exception[0]) if exception else None
        exc_message = str(exception[1]) if len(exception) > 1 else None
    else:
        exc_class, exc_message = (str(exception), None) if exception else (None, None)
    controller, action = data.get("controller"), data.get("action")
    backtrace = data.get("exception_backtrace")
    return {
        "time": data["time"],
        "request_id": data.get("request_id"),
        "method": data.get("method"),
        "path": data.get("path"),
        "endpoint": f"{controller}#{action}" if controller and action else controller,
        "status": data.get("status"),
        "duration_ms": data.get("duration"),
        "user_id": None if data.get("user_id") is None else str(data["user_id"]),
        "params": data.get("params"),
        "exception_class": exc_class,
        "exception_message": exc_message,
        "backtrace": [str(f) for f in backtrace] if isinstance(backtrace, list) else backtrace,
    }


# --- classic Rails logger ------------------------------------------------------------------------

_RAILS_LINE = re.compile(
    r"^[DIWEFAU], \[(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?) #(?P<pid>\d+)\]\s+"
    r"(?P<level>[A-Z]+) -- [^:]*: ?(?P<msg>.*?)\s*$"
)
_TAG = re.compile(r"\[(?P<tag>[^\]]*)\] ?")
_STARTED = re.compile(r'^Started (?P<method>[A-Z]+) "(?P<path>[^"]*)" for \S+ at (?P<at>.+)$')
_PROCESSING = re.compile(r"^Processing by (?P<endpoint>\S+#\S+) as ")
_PARAMETERS = re.compile(r"^Parameters: (?P<params>.*)$")
_COMPLETED = re.compile(r"^Completed (?P<status>\d{3})\b.*? in (?P<ms>\d+(?:\.\d+)?)ms")
_EXCEPTION = re.compile(r"^(?P<cls>[A-Z]\w*(?:::[A-Z]\w*)*) \((?P<msg>.*)$")
_FRAME = re.compile(r"^\S+:\d+(?::in\b|$)")
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)$")


class _Request:
    """The lines of one request, gathered until it is complete."""

    __slots__ = (
        "backtrace", "completed_at", "duration", "endpoint", "exc_class", "exc_message", "exc_open",
        "last", "method", "params", "path", "request_id", "started", "status", "user_id",
    )  # fmt: skip

    def __init__(self, request_id: str | None, user_id: str | None, ts: datetime) -> None:
        self.request_id, self.user_id, self.started, self.last = request_id, user_id, ts, ts
        self.method = self.path = self.endpoint = self.params = None
        self.status = self.duration = None
        self.exc_class = self.exc_message = None
        self.exc_open = False
        self.backtrace: list[str] = []
        self.completed_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {
            "time": self.started,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "status": self.status,
            "duration_ms": self.duration,
            "user_id": self.user_id,
            "params": self.params,
            "exception_class": self.exc_class,
            "exception_message": self.exc_message,
            "backtrace": self.backtrace or None,
        }


def _read_rails(
    source: LogSource, window: tuple[Any, Any], chunk_rows: int, stats: ParseStats
) -> Iterator[pd.DataFrame]:
    start, end = window
    stop_after = end.to_pydatetime().replace(tzinfo=None) + _TAIL_SLACK if end is not None else None
    open_requests: dict[str, _Request] = {}
    rows: list[dict[str, Any]] = []
    now = datetime.min
    offset = timedelta(0)  # the logger's zone, as the last "Started … at … +0100" told it
    with _open(source.path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if line.startswith("# Logfile created on"):
                continue  # Ruby Logger's header
            stats.lines += 1
            match = _RAILS_LINE.match(line)
            if match is None:
                stats.skipped += 1
                continue
            try:
                now = datetime.fromisoformat(match["ts"])
            except ValueError:
                stats.skipped += 1
                continue
            told = _take_line(open_requests, rows, match, now)
            offset = offset if told is None else told
            if stop_after is not None and now - offset > stop_after:
                break  # rows past the end are dropped by the window filter
            if number % 1000 == 0:
                _flush(open_requests, rows, now)
            if len(rows) >= chunk_rows:
                yield from _emit(rows[:chunk_rows], source.host, start, end, stats)
                del rows[:chunk_rows]
    _flush(open_requests, rows, None)
    while rows:
        yield from _emit(rows[:chunk_rows], source.host, start, end, stats)
        del rows[:chunk_rows]


def _emit(
    rows: list[dict[str, Any]], host: str | None, start: Any, end: Any, stats: ParseStats
) -> Iterable[pd.DataFrame]:
    frame, _ = _finish(rows, host, start, end, stats)
    return [frame] if len(frame) else []


def _take_line(
    open_requests: dict[str, _Request],
    rows: list[dict[str, Any]],
    match: re.Match[str],
    now: datetime,
) -> timedelta | None:
    """Add one logger line to its request; return the zone offset a "Started" line tells."""
    message = match["msg"]
    request_id = user_id = None
    tagged = False
    while (tag := _TAG.match(message)) is not None:
        tagged = True
        value = tag["tag"].strip()
        if value.startswith("user:"):
            user_id = value[5:].strip() or None
            user_id = None if user_id in ("-", "nil", "") else user_id
        elif request_id is None and ":" not in value and value:
            request_id = value
        message = message[tag.end() :]
    key = request_id or f"#{match['pid']}"
    message = message.strip()
    started = _STARTED.match(message)
    request = open_requests.get(key)
    if started:
        if request is not None:
            rows.append(open_requests.pop(key).row())
        request = open_requests[key] = _Request(request_id, user_id, now)
        request.method, request.path = started["method"], started["path"]
        request.started = _apply_offset(now, started["at"])
        return now - request.started
    if request is None:
        if not tagged or request_id is None:
            return None  # boot messages, jobs, untagged noise: not part of a request
        request = open_requests[key] = _Request(request_id, user_id, now)
    request.last = now
    if request.user_id is None:
        request.user_id = user_id
    _take_message(request, message, match["level"])
    return None


def _take_message(request: _Request, message: str, level: str) -> None:
    if request.exc_open:  # a multi-line exception message ("Did you mean?")
        request.exc_message = f"{request.exc_message}\n{message}"
        if message.endswith("):"):
            request.exc_message = request.exc_message[:-2]
            request.exc_open = False
        return
    if (m := _PROCESSING.match(message)) is not None:
        request.endpoint = m["endpoint"]
    elif (m := _PARAMETERS.match(message)) is not None:
        request.params = m["params"]
    elif (m := _COMPLETED.match(message)) is not None:
        request.status, request.duration = int(m["status"]), float(m["ms"])
        request.completed_at = request.last
    elif level in ("FATAL", "ERROR"):
        if request.exc_class is None and (m := _EXCEPTION.match(message)) is not None:
            request.exc_class, text = m["cls"], m["msg"]
            request.exc_open = not text.endswith("):")
            request.exc_message = text if request.exc_open else text[:-2]
        elif (
            request.exc_class is not None
            and len(request.backtrace) < _MAX_FRAMES
            and _FRAME.match(message)
        ):
            request.backtrace.append(message)


def _flush(
    open_requests: dict[str, _Request], rows: list[dict[str, Any]], now: datetime | None
) -> None:
    """Move finished requests to ``rows``; everything when ``now`` is None (end of file)."""
    for key in list(open_requests):
        request = open_requests[key]
        done = now is None or (
            request.completed_at is not None and now - request.completed_at > _GRACE
        )
        if done or now - request.last > _STALE:
            rows.append(open_requests.pop(key).row())


def _apply_offset(logged: datetime, at: str) -> datetime:
    """The logger writes local time; ``Started … at … +0100`` says which zone that was."""
    m = _OFFSET.search(at.strip())
    if m is None:
        return logged
    delta = timedelta(hours=int(m[2]), minutes=int(m[3]))
    return logged - delta if m[1] == "+" else logged + delta


# --- per-chunk work: types, window, scrubbing ----------------------------------------------------


def _finish(
    rows: list[dict[str, Any]], host: str | None, start: Any, end: Any, stats: ParseStats
) -> tuple[pd.DataFrame, bool]:
    """Rows to a typed, window-filtered, scrubbed frame; also whether the chunk is past the end."""
    raw = pd.DataFrame.from_records(rows, columns=[c for c in COLUMNS if c != "host"])
    time = pd.to_datetime(raw["time"], utc=True, format="ISO8601", errors="coerce")
    bad = time.isna()
    if bad.any():
        stats.skipped += int(bad.sum())
    keep = ~bad
    if start is not None:
        keep &= time >= start
    if end is not None:
        keep &= time <= end
    past_end = end is not None and bool((time[~bad] > end + _TAIL_SLACK).all()) and not bad.all()
    raw, time = raw[keep], time[keep]
    stats.requests += len(raw)
    frame = pd.DataFrame(
        {
            "time": time.astype("datetime64[us, UTC]"),
            "host": pd.Series(host, index=raw.index, dtype="string"),
            "request_id": _text(raw["request_id"]),
            "method": _text(raw["method"]),
            "path": _text(raw["path"]),
            "endpoint": _text(raw["endpoint"]),
            "status": pd.to_numeric(raw["status"], errors="coerce").astype("Int64"),
            "duration_ms": pd.to_numeric(raw["duration_ms"], errors="coerce").astype("float64"),
            "user_id": _text(raw["user_id"]),
            "params": pd.Series(
                [_params_json(p) for p in raw["params"]], index=raw.index, dtype="string"
            ),
            "exception_class": _text(raw["exception_class"]),
            "exception_message": _text(raw["exception_message"]),
            "backtrace": _text(raw["backtrace"].map(_join_frames)),
        }
    )
    return frame.reset_index(drop=True), past_end


def _text(values: pd.Series) -> pd.Series:
    strings = values.map(lambda v: None if v is None or v != v else str(v))  # NaN != NaN
    return scrub_series(strings).astype("string")


def _join_frames(frames: Any) -> str | None:
    if isinstance(frames, list):
        return "\n".join(frames) if frames else None
    return frames


def _params_json(params: Any) -> str | None:
    if params is None or (isinstance(params, float) and params != params):
        return None
    if isinstance(params, str):  # a Ruby inspect string from the classic logger
        params = parse_ruby_inspect(params)
    return json.dumps(scrub_value(params), ensure_ascii=False, default=str)

"""Rails production logs, parsed into scrubbed request rows, streamed in bounded chunks.

Two formats, told apart per file (``format="auto"``):

- ``rails``: the classic ``Logger`` format with ``config.log_tags = [:request_id, ...]``::

      I, [2026-11-25T10:00:01.123456 #1234]  INFO -- : [3f2b…] [user:42] Started POST "/checkout" …

  Lines of one request are grouped by their request id tag (or by process id when a line has no
  tags), so interleaved requests from several Puma threads come apart again
  (:mod:`ladder.connectors._rails_logger`).
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

import pandas as pd

from ladder.connectors._rails_logger import RAILS_LINE, Request, flush, take_line
from ladder.connectors._ruby import parse_ruby_inspect
from ladder.connectors.base import Connection, one_line
from ladder.connectors.log_source import LogSource
from ladder.errors import LogSourceError
from ladder.sanitize.scrub import scrub_series, scrub_value

__all__ = [
    "COLUMNS", "LogFile", "LogSource", "ParseStats", "detect_format", "parse_ruby_inspect",
    "read_requests",
]  # fmt: skip

COLUMNS = [
    "time", "host", "request_id", "method", "path", "endpoint", "status", "duration_ms",
    "user_id", "params", "exception_class", "exception_message", "backtrace",
]  # fmt: skip

Format = Literal["rails", "lograge"]

# A request whose lines go on after the window's end is still read; past this, reading stops.
_TAIL_SLACK = timedelta(minutes=10)


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
    with LogFile(source.path) as log:
        log.open()  # a missing file fails here, not at the first next()
    fmt = source.format if source.format != "auto" else detect_format(source.path)
    stats.format = fmt
    window = (_utc(start), _utc(end))
    reader = _read_lograge if fmt == "lograge" else _read_rails
    return reader(source, window, chunk_rows, stats)


def detect_format(path: Path, sample_lines: int = 50) -> Format:
    """Tell ``rails`` from ``lograge`` by the first non-blank lines of ``path``.

    An empty file has nothing to read either way and is called ``rails``.
    """
    votes = {"rails": 0, "lograge": 0}
    seen = 0
    with LogFile(path) as log:
        for line in log.lines():
            if not line.strip() or line.startswith("# Logfile created on"):
                continue
            seen += 1
            if RAILS_LINE.match(line):
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


class LogFile(Connection[IO[str]]):
    """One log file, plain or gzip-compressed (``.gz``), read as UTF-8 text.

    No I/O in ``__init__``; opened on first use (``open()`` or ``lines()``); ``close()`` is
    idempotent; ``with`` closes. A missing, unreadable or truncated file is a ``LogSourceError``.
    """

    vendor_errors = (OSError, EOFError)  # EOFError: a truncated gzip

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    @property
    def address(self) -> str:
        return str(self.path)

    def lines(self) -> Iterator[str]:
        """The file's lines, opening it first if needed."""
        handle = self.open()
        with self.errors("read"):
            yield from handle

    def translate(self, exc: BaseException, doing: str) -> LogSourceError:
        if isinstance(exc, FileNotFoundError):
            return LogSourceError(f"log file not found: {self.path}")
        if isinstance(exc, IsADirectoryError):
            return LogSourceError(f"log path is a directory, not a file: {self.path}")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        return LogSourceError(f"cannot read log file {self.path}: {reason}")

    def _open(self) -> IO[str]:
        if self.path.suffix == ".gz":
            return gzip.open(self.path, "rt", encoding="utf-8", errors="replace")
        return self.path.open("r", encoding="utf-8", errors="replace")

    def _close(self, handle: IO[str]) -> None:
        handle.close()


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
    with LogFile(source.path) as log:
        rows: list[dict[str, Any]] = []
        for line in log.lines():
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


def _read_rails(
    source: LogSource, window: tuple[Any, Any], chunk_rows: int, stats: ParseStats
) -> Iterator[pd.DataFrame]:
    start, end = window
    stop_after = end.to_pydatetime().replace(tzinfo=None) + _TAIL_SLACK if end is not None else None
    open_requests: dict[str, Request] = {}
    rows: list[dict[str, Any]] = []
    now = datetime.min
    offset = timedelta(0)  # the logger's zone, as the last "Started … at … +0100" told it
    with LogFile(source.path) as log:
        for number, line in enumerate(log.lines(), 1):
            if not line.strip():
                continue
            if line.startswith("# Logfile created on"):
                continue  # Ruby Logger's header
            stats.lines += 1
            match = RAILS_LINE.match(line)
            if match is None:
                stats.skipped += 1
                continue
            try:
                now = datetime.fromisoformat(match["ts"])
            except ValueError:
                stats.skipped += 1
                continue
            told = take_line(open_requests, rows, match, now)
            offset = offset if told is None else told
            if stop_after is not None and now - offset > stop_after:
                break  # rows past the end are dropped by the window filter
            if number % 1000 == 0:
                flush(open_requests, rows, now)
            if len(rows) >= chunk_rows:
                yield from _emit(rows[:chunk_rows], source.host, start, end, stats)
                del rows[:chunk_rows]
    flush(open_requests, rows, None)
    while rows:
        yield from _emit(rows[:chunk_rows], source.host, start, end, stats)
        del rows[:chunk_rows]


def _emit(
    rows: list[dict[str, Any]], host: str | None, start: Any, end: Any, stats: ParseStats
) -> Iterable[pd.DataFrame]:
    frame, _ = _finish(rows, host, start, end, stats)
    return [frame] if len(frame) else []


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

"""Rung 1, evidence: what the logs say about an incident window, compared with the hour before.

``collect`` streams each log source chunk by chunk over ``[baseline_start, window_end]`` and keeps
only what the aggregates need: error groups (the same bug with different ids groups together,
split by the first application frame), per-endpoint durations for percentiles, the users and
endpoints hit by 5xx, and a few scrubbed sample requests. Everything it sees comes from
``ladder.connectors.logfiles``, which scrubs at parse time.

>>> from datetime import datetime, UTC
>>> ev = collect([], (datetime(2026, 11, 25, 10, tzinfo=UTC), datetime(2026, 11, 25, 11, tzinfo=UTC)))
>>> ev.requests_in_window, ev.error_groups
(0, [])
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel

from ladder.connectors.logfiles import LogSource, ParseStats, read_requests
from ladder.markdown import cell, code_block, table_row

__all__ = [
    "EndpointLatency", "ErrorGroup", "Evidence", "SampleRequest", "collect", "error_rows",
    "latency_rows", "normalize_message", "to_markdown",
]  # fmt: skip

_MAX_LISTED = 1000  # users, endpoints kept per group
_MAX_GROUP_SAMPLES = 200  # groups that keep a sample request


class ErrorGroup(BaseModel):
    """One bug: requests that failed with the same exception, message shape and first app frame."""

    exception_class: str
    message: str
    top_frame: str | None
    count: int
    baseline_count: int = 0
    first_seen: datetime
    last_seen: datetime
    users: list[str]
    endpoints: list[str]
    request_ids: list[str]


class EndpointLatency(BaseModel):
    """Duration percentiles of one endpoint in the window and in the baseline before it."""

    endpoint: str
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    baseline_requests: int
    baseline_p50_ms: float | None
    baseline_p95_ms: float | None
    baseline_p99_ms: float | None
    p95_ratio: float | None


class SampleRequest(BaseModel):
    """One request as the logs tell it, scrubbed."""

    request_id: str | None
    time: datetime
    endpoint: str | None
    status: int | None
    duration_ms: float | None
    params: str | None
    exception: str | None
    backtrace: str | None


class Evidence(BaseModel):
    """Everything rung 1 found in the log files for one incident window."""

    window_start: datetime
    window_end: datetime
    baseline_start: datetime
    requests_in_window: int
    baseline_requests: int
    errors_in_window: int
    skipped_lines: int
    error_groups: list[ErrorGroup]
    latency: list[EndpointLatency]
    samples: list[SampleRequest]
    affected_users: list[str]
    affected_endpoints: list[str]


# --- message normalization -----------------------------------------------------------------------

_NORMALIZE = [
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    (re.compile(r"#<([A-Z]\w*(?:::[A-Z]\w*)*)[^<>]*>"), r"#<\1>"),  # #<Order:0x000055d5 id: 1> -> #<Order>
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[A-Za-z_]*\d)(?=\w*[A-Za-z])\w{8,}\b"), "<id>"),  # ch_3Nv0a2B3, a1b2c3d4e5
    (re.compile(r"\b[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"""(?<!\w)(["'])(?![A-Za-z_][\w?!=]*\1)(?:(?!\1).)*?\1(?!\w)"""), r"\1<str>\1"),
    (re.compile(r"(?<![\w<])-?\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]  # fmt: skip


def normalize_message(message: str) -> str:
    """Replace the parts of an error message that differ between occurrences of one bug.

    Quoted identifiers (a method or column name) are kept; other quoted values, numbers, hex
    and UUID ids become placeholders.

    >>> normalize_message("Couldn't find Order with 'id'=1001 and ref 'R-2001/B'")
    "Couldn't find Order with 'id'=<n> and ref '<str>'"
    """
    for pattern, repl in _NORMALIZE:
        message = pattern.sub(repl, message)
    return message.strip()


def _top_frame(backtrace: str | None, prefix: str) -> str | None:
    """The first frame under ``prefix`` (``app/``), with any deploy path before it cut off."""
    if not backtrace:
        return None
    anchor = re.compile(rf"(?:^|/){re.escape(prefix)}")
    for frame in backtrace.split("\n"):
        found = anchor.search(frame)
        if found:
            return frame[found.start() + (frame[found.start()] == "/") :].strip()
    return None


# --- accumulation --------------------------------------------------------------------------------


@dataclass
class _Group:
    count: int = 0
    baseline_count: int = 0
    first_seen: pd.Timestamp | None = None
    last_seen: pd.Timestamp | None = None
    users: dict[str, None] = field(default_factory=dict)
    endpoints: dict[str, None] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    sample: dict[str, Any] | None = None


@dataclass
class _Accumulator:
    window: tuple[pd.Timestamp, pd.Timestamp]
    samples: int
    prefix: str
    requests: int = 0
    baseline_requests: int = 0
    errors: int = 0
    groups: dict[tuple[str, str, str | None], _Group] = field(default_factory=dict)
    durations: dict[str, list[np.ndarray]] = field(default_factory=dict)
    baseline_durations: dict[str, list[np.ndarray]] = field(default_factory=dict)
    users: Counter[str] = field(default_factory=Counter)
    endpoints: Counter[str] = field(default_factory=Counter)
    slowest: pd.DataFrame | None = None

    def add(self, chunk: pd.DataFrame) -> None:
        start, end = self.window
        in_window = (chunk["time"] >= start) & (chunk["time"] <= end)
        status = chunk["status"]
        failed = ((status >= 500) | (status.isna() & chunk["exception_class"].notna())).fillna(
            False
        )
        endpoint = chunk["endpoint"].fillna("(unknown)")
        self.requests += int(in_window.sum())
        self.baseline_requests += int((~in_window).sum())
        self.errors += int((in_window & failed).sum())
        _add_durations(self.durations, endpoint[in_window], chunk["duration_ms"][in_window])
        _add_durations(
            self.baseline_durations, endpoint[~in_window], chunk["duration_ms"][~in_window]
        )
        window_errors = chunk[in_window & failed]
        self.users.update(window_errors["user_id"].dropna())
        self.endpoints.update(endpoint[in_window & failed])
        self._add_errors(chunk[failed], in_window[failed])
        self._add_slowest(chunk[in_window & ~failed])

    def _add_errors(self, errors: pd.DataFrame, in_window: pd.Series) -> None:
        if errors.empty:
            return
        classes = errors["exception_class"].fillna("HTTP " + errors["status"].astype("string"))
        messages = errors["exception_message"].fillna("")
        normalized = messages.map(_cached(normalize_message))
        frames = errors["backtrace"].map(_cached(lambda b: _top_frame(b, self.prefix)))
        for i, row in enumerate(errors.itertuples(index=False)):
            key = (str(classes.iat[i]), normalized.iat[i], _none(frames.iat[i]))
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = _Group()
            if not in_window.iat[i]:
                group.baseline_count += 1
                continue
            group.count += 1
            group.first_seen = (
                row.time if group.first_seen is None else min(group.first_seen, row.time)
            )
            group.last_seen = (
                row.time if group.last_seen is None else max(group.last_seen, row.time)
            )
            if _none(row.user_id) is not None and len(group.users) < _MAX_LISTED:
                group.users[row.user_id] = None
            if _none(row.endpoint) is not None and len(group.endpoints) < _MAX_LISTED:
                group.endpoints[row.endpoint] = None
            if _none(row.request_id) is not None and len(group.request_ids) < max(self.samples, 5):
                group.request_ids.append(row.request_id)
            if group.sample is None and len(self.groups) <= _MAX_GROUP_SAMPLES:
                group.sample = row._asdict()

    def _add_slowest(self, rows: pd.DataFrame) -> None:
        if self.samples == 0 or rows.empty:
            return
        top = rows.nlargest(self.samples, "duration_ms")
        merged = top if self.slowest is None else pd.concat([self.slowest, top])
        self.slowest = merged.nlargest(self.samples, "duration_ms")


def _add_durations(
    into: dict[str, list[np.ndarray]], endpoint: pd.Series, durations: pd.Series
) -> None:
    frame = pd.DataFrame({"endpoint": endpoint, "ms": durations}).dropna()
    for name, part in frame.groupby("endpoint", sort=False)["ms"]:
        into.setdefault(str(name), []).append(part.to_numpy(dtype="float64"))


def _cached(fn: Any) -> Any:
    memo: dict[Any, Any] = {}

    def call(value: Any) -> Any:
        value = _none(value)
        if value not in memo:
            memo[value] = None if value is None else fn(value)
        return memo[value]

    return call


def _none(value: Any) -> Any:
    return None if value is None or value is pd.NA or value != value else value


# --- collect -------------------------------------------------------------------------------------


def collect(
    sources: list[LogSource],
    window: tuple[datetime, datetime],
    baseline_minutes: int = 60,
    samples: int = 5,
    top_frames_from: str = "app/",
) -> Evidence:
    """Read ``sources`` over the window and the ``baseline_minutes`` before it; aggregate.

    Naive datetimes are taken as UTC. Raises ``LogSourceError`` for a missing or unreadable
    file; malformed lines are counted in ``skipped_lines``.
    """
    start, end = (_utc(t) for t in window)
    if end < start:
        raise ValueError("the window ends before it starts")
    baseline_start = start - pd.Timedelta(minutes=baseline_minutes)
    acc = _Accumulator((start, end), samples, top_frames_from)
    skipped = 0
    for source in sources:
        stats = ParseStats()
        for chunk in read_requests(
            source, baseline_start.to_pydatetime(), end.to_pydatetime(), stats=stats
        ):
            acc.add(chunk)
        skipped += stats.skipped
    groups = sorted(
        (_error_group(key, g) for key, g in acc.groups.items() if g.count),
        key=lambda g: (-g.count, g.first_seen),
    )
    return Evidence(
        window_start=start.to_pydatetime(),
        window_end=end.to_pydatetime(),
        baseline_start=baseline_start.to_pydatetime(),
        requests_in_window=acc.requests,
        baseline_requests=acc.baseline_requests,
        errors_in_window=acc.errors,
        skipped_lines=skipped,
        error_groups=groups,
        latency=_latency(acc),
        samples=_samples(acc, groups),
        affected_users=[u for u, _ in acc.users.most_common()],
        affected_endpoints=[e for e, _ in acc.endpoints.most_common()],
    )


def _utc(value: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)


def _error_group(key: tuple[str, str, str | None], group: _Group) -> ErrorGroup:
    assert group.first_seen is not None and group.last_seen is not None
    return ErrorGroup(
        exception_class=key[0],
        message=key[1],
        top_frame=key[2],
        count=group.count,
        baseline_count=group.baseline_count,
        first_seen=group.first_seen.to_pydatetime(),
        last_seen=group.last_seen.to_pydatetime(),
        users=list(group.users),
        endpoints=list(group.endpoints),
        request_ids=group.request_ids,
    )


def _percentiles(parts: list[np.ndarray] | None) -> tuple[int, list[float | None]]:
    if not parts:
        return 0, [None, None, None]
    values = np.concatenate(parts)
    return len(values), [float(v) for v in np.percentile(values, [50, 95, 99])]


def _latency(acc: _Accumulator) -> list[EndpointLatency]:
    rows = []
    for endpoint, parts in acc.durations.items():
        n, (p50, p95, p99) = _percentiles(parts)
        bn, (b50, b95, b99) = _percentiles(acc.baseline_durations.get(endpoint))
        assert p50 is not None and p95 is not None and p99 is not None
        rows.append(
            EndpointLatency(
                endpoint=endpoint,
                requests=n,
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                baseline_requests=bn,
                baseline_p50_ms=b50,
                baseline_p95_ms=b95,
                baseline_p99_ms=b99,
                p95_ratio=p95 / b95 if b95 else None,
            )
        )
    return sorted(rows, key=lambda r: (-(r.p95_ratio or 0.0), -r.requests, r.endpoint))


def _samples(acc: _Accumulator, groups: list[ErrorGroup]) -> list[SampleRequest]:
    chosen: list[dict[str, Any]] = []
    for group in groups:
        sample = acc.groups[(group.exception_class, group.message, group.top_frame)].sample
        if sample is not None:
            chosen.append(sample)
    if acc.slowest is not None:
        chosen.extend(row._asdict() for row in acc.slowest.itertuples(index=False))
    return [_sample(row) for row in chosen[: acc.samples]]


def _sample(row: dict[str, Any]) -> SampleRequest:
    cls, message = _none(row["exception_class"]), _none(row["exception_message"])
    exception = None if cls is None else (f"{cls}: {message}" if message else cls)
    status = _none(row["status"])
    return SampleRequest(
        request_id=_none(row["request_id"]),
        time=row["time"].to_pydatetime(),
        endpoint=_none(row["endpoint"]),
        status=None if status is None else int(status),
        duration_ms=_none(row["duration_ms"]),
        params=_none(row["params"]),
        exception=exception,
        backtrace=_none(row["backtrace"]),
    )


# --- presentation --------------------------------------------------------------------------------

_TABLE_ROWS = 15
_T = TypeVar("_T")


def error_rows(ev: Evidence) -> list[dict[str, Any]]:
    """Error groups as flat rows for a Prefect table artifact."""
    return [
        {
            "count": g.count,
            "in_baseline": g.baseline_count,
            "exception": g.exception_class,
            "message": g.message,
            "top_frame": g.top_frame or "",
            "users": len(g.users),
            "endpoints": ", ".join(g.endpoints),
            "first_seen": g.first_seen.isoformat(),
            "last_seen": g.last_seen.isoformat(),
            "request_ids": ", ".join(g.request_ids),
        }
        for g in ev.error_groups
    ]


def latency_rows(ev: Evidence) -> list[dict[str, Any]]:
    """Endpoint latency against the baseline as flat rows for a Prefect table artifact."""
    return [
        {
            "endpoint": r.endpoint,
            "requests": r.requests,
            "p50_ms": round(r.p50_ms, 1),
            "p95_ms": round(r.p95_ms, 1),
            "p99_ms": round(r.p99_ms, 1),
            "baseline_requests": r.baseline_requests,
            "baseline_p95_ms": _round(r.baseline_p95_ms),
            "p95_ratio": _round(r.p95_ratio, 2),
        }
        for r in ev.latency
    ]


def to_markdown(ev: Evidence) -> str:
    """A readable evidence section: counts, error groups, latency, affected users, samples."""
    rate = f" ({ev.errors_in_window / ev.requests_in_window:.1%})" if ev.requests_in_window else ""
    lines = [
        "## Evidence from the logs",
        "",
        f"Window {_when(ev.window_start)} → {_when(ev.window_end)} UTC, baseline from "
        f"{_when(ev.baseline_start)}.",
        "",
        f"- **{ev.requests_in_window}** requests in the window ({ev.baseline_requests} in the baseline)",
        f"- **{ev.errors_in_window}** failed with a 5xx{rate}, in **{len(ev.error_groups)}** error groups",
        f"- **{len(ev.affected_users)}** users affected; endpoints: "
        + (", ".join(f"`{e}`" for e in ev.affected_endpoints[:5]) or "none"),
    ]
    if ev.skipped_lines:
        lines.append(f"- {ev.skipped_lines} malformed log lines skipped")
    lines += ["", "### Error groups", ""]
    if ev.error_groups:
        lines += _table(
            "| count | in baseline | exception | message | top frame | users | first seen | last seen |",
            "|---:|---:|---|---|---|---:|---|---|",
            ev.error_groups,
            _group_cells,
        )
    else:
        lines.append("No failed requests in the window.")
    lines += ["", "### Latency against the baseline", ""]
    if ev.latency:
        lines += _table(
            "| endpoint | requests | p50 ms | p95 ms | p99 ms | baseline p95 ms | p95 vs baseline |",
            "|---|---:|---:|---:|---:|---:|---:|",
            ev.latency,
            _latency_cells,
        )
    else:
        lines.append("No requests in the window.")
    lines += ["", "### Affected users", ""]
    if ev.affected_users:
        shown = ", ".join(f"`{u}`" for u in ev.affected_users[:20])
        extra = len(ev.affected_users) - 20
        lines.append(
            f"Users with a 5xx in the window, most affected first: {shown}"
            + (f" and {extra} more" if extra > 0 else "")
        )
    else:
        lines.append("No signed-in user got a 5xx in the window.")
    if ev.samples:
        lines += ["", "### Sample requests (scrubbed)", ""]
        for n, s in enumerate(ev.samples[:3], 1):
            title = f"{s.status or '—'} {s.endpoint or '(unknown endpoint)'} at {_when(s.time)}"
            lines += [f"{n}. {cell(title)}, request id `{s.request_id or '—'}`", ""]
            body = [f"duration: {_fmt(s.duration_ms)} ms"]
            if s.params:
                body.append(f"params: {s.params}")
            if s.exception:
                body.append(f"exception: {s.exception}")
            if s.backtrace:
                body.append("backtrace:\n" + "\n".join(s.backtrace.split("\n")[:8]))
            lines += [*code_block("\n".join(body)), ""]
    return "\n".join(lines).rstrip() + "\n"


def _when(value: datetime) -> str:
    value = value.astimezone(UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(
    head: str, rule: str, items: Sequence[_T], cells: Callable[[_T], list[str]]
) -> list[str]:
    """A Markdown table of the first ``_TABLE_ROWS`` items, then a note of how many more there are."""
    return [head, rule, *(table_row(cells(i)) for i in items[:_TABLE_ROWS]), *_more(len(items))]


def _group_cells(g: ErrorGroup) -> list[str]:
    return [
        str(g.count), str(g.baseline_count), g.exception_class, _short(g.message, 120),
        g.top_frame or "—", str(len(g.users)), _when(g.first_seen), _when(g.last_seen),
    ]  # fmt: skip


def _latency_cells(r: EndpointLatency) -> list[str]:
    ratio = f"{r.p95_ratio:.2f}x" if r.p95_ratio is not None else "new"
    return [
        r.endpoint, str(r.requests), f"{r.p50_ms:.0f}", f"{r.p95_ms:.0f}", f"{r.p99_ms:.0f}",
        _fmt(r.baseline_p95_ms), ratio,
    ]  # fmt: skip


def _more(total: int) -> list[str]:
    return (
        ["", f"…and {total - _TABLE_ROWS} more in the table artifact."]
        if total > _TABLE_ROWS
        else []
    )

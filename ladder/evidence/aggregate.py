"""Rung 1's aggregation: log chunks streamed once, reduced to what :class:`Evidence` holds.

Error groups (the same bug with different ids groups together, split by the first application
frame), per-endpoint durations for percentiles, the users and endpoints hit by 5xx, and a few
scrubbed sample requests. Rows come from :mod:`ladder.connectors.logfiles`, scrubbed at parse time.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ladder.connectors.logfiles import LogSource, ParseStats, read_requests
from ladder.evidence.model import (
    EndpointLatency,
    ErrorGroup,
    Evidence,
    FailedRequest,
    SampleRequest,
)

_MAX_LISTED = 1000  # users, endpoints kept per group
_MAX_GROUP_SAMPLES = 200  # groups that keep a sample request


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
    requests: list[FailedRequest] = field(default_factory=list)
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
                group.requests.append(_failed_request(row))
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
        requests=group.requests,
    )


def _failed_request(row: Any) -> FailedRequest:
    user = _none(row.user_id)
    return FailedRequest(
        request_id=row.request_id,
        method=_none(row.method),
        path=_none(row.path),
        user_id=None if user is None else str(user),
        params=_none(row.params),
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

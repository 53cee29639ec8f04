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

from ladder.evidence.aggregate import collect, normalize_message
from ladder.evidence.model import EndpointLatency, ErrorGroup, Evidence, SampleRequest
from ladder.evidence.render import error_rows, latency_rows, to_markdown

__all__ = [
    "EndpointLatency", "ErrorGroup", "Evidence", "SampleRequest", "collect", "error_rows",
    "latency_rows", "normalize_message", "to_markdown",
]  # fmt: skip

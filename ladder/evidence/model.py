"""What rung 1 found, as values: error groups, endpoint latencies, sample requests."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class FailedRequest(BaseModel):
    """A failing request as the logs tell it, enough to replay it; ``params`` is scrubbed JSON."""

    request_id: str
    method: str | None = None
    path: str | None = None
    user_id: str | None = None
    params: str | None = None


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
    requests: list[FailedRequest] = []


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

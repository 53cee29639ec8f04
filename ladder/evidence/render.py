"""Rung 1's evidence for people: table rows for artifacts and the report's Markdown section."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from ladder.evidence.model import EndpointLatency, ErrorGroup, Evidence
from ladder.markdown import cell, code_block, table_row

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
    lines += _table(
        "| count | in baseline | exception | message | top frame | users | first seen | last seen |",
        "|---:|---:|---|---|---|---:|---|---|",
        ev.error_groups,
        _group_cells,
        empty="No failed requests in the window.",
    )
    lines += ["", "### Latency against the baseline", ""]
    lines += _table(
        "| endpoint | requests | p50 ms | p95 ms | p99 ms | baseline p95 ms | p95 vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
        ev.latency,
        _latency_cells,
        empty="No requests in the window.",
    )
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
    head: str, rule: str, items: Sequence[_T], cells: Callable[[_T], list[str]], *, empty: str
) -> list[str]:
    """A Markdown table of the first ``_TABLE_ROWS`` items, then a note of how many more there are;
    the line ``empty`` when there are no items."""
    if not items:
        return [empty]
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

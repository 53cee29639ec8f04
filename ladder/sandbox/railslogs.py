"""Rails production logs for the sandbox, in the two shapes real shops have, with an incident in them.

``web-1/production.log`` is Rails 7's default logger with ``config.log_tags = [:request_id,
->(req) { "user:#{...}" }]``; ``web-2/production.log`` is lograge's JSON, one line per request.
The requests themselves (and the incident in them) come from :mod:`ladder.sandbox.traffic`.
The same seed gives the same bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ladder.sandbox.limits import MIN_REQUESTS
from ladder.sandbox.traffic import HOSTS, STATUS_TEXT, IncidentSpec, LogUser, Request, draw_requests


def write_logs(
    directory: Path,
    users_sample: list[LogUser],
    incident: IncidentSpec,
    requests: int = 3000,
    seed: int = 7,
) -> list[Path]:
    """Write ``web-1/production.log`` (classic) and ``web-2/production.log`` (lograge JSON).

    ``requests`` counts every request of both hosts; the incident's customers (and the slow
    customer) must be in ``users_sample``. Returns the two paths.
    """
    if requests < MIN_REQUESTS:
        raise ValueError(f"requests must be at least {MIN_REQUESTS}, got {requests}")
    by_id = {u.id: u for u in users_sample}
    missing = [i for i in (*incident.failing_user_ids, incident.slow_user_id) if i not in by_id]
    if missing:
        raise ValueError(f"users_sample lacks the incident's users {missing}")
    if (
        not incident.traffic_start
        <= incident.started_at
        < incident.ended_at
        <= incident.traffic_end
    ):
        raise ValueError("the incident window must lie inside the traffic span")
    reqs = draw_requests(users_sample, incident, requests, seed)
    paths = []
    for host, render in zip(HOSTS, (_classic_lines, _lograge_lines), strict=True):
        path = Path(directory) / host / "production.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = render([r for r in reqs if r.host == HOSTS.index(host)])
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        paths.append(path)
    return paths


def _classic_lines(reqs: list[Request]) -> list[str]:
    """Rails 7 logger lines with ``[request_id] [user:ID]`` tags, interleaved by time."""
    events: list[tuple[datetime, int, int, str]] = []
    for n, r in enumerate(reqs):
        tags = f"[{r.request_id}] [user:{r.user.id if r.user else '-'}]"
        for k, (at, severity, text) in enumerate(_classic_events(r)):
            stamp = f"{at:%Y-%m-%dT%H:%M:%S.%f} #{r.pid}"
            events.append((at, n, k, f"{severity[0]}, [{stamp}] {severity:>5} -- : {tags} {text}"))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return [e[3] for e in events]


def _classic_events(r: Request) -> list[tuple[datetime, str, str]]:
    """What Rails logs for one request: (time, severity, message)."""
    ep, end = r.endpoint, r.ended
    step = timedelta(microseconds=300)
    events = [
        (
            r.at,
            "INFO",
            f'Started {ep.method} "{r.path}" for {r.ip} at {r.at:%Y-%m-%d %H:%M:%S} +0000',
        ),
        (r.at + step, "INFO", f"Processing by {ep.controller}#{ep.action} as {ep.format.upper()}"),
    ]
    if r.params:
        events.append((r.at + step, "INFO", f"  Parameters: {ruby_inspect(r.params)}"))
    if r.redirect:
        events.append((end - step, "INFO", f"Redirected to {r.redirect}"))
    views = f"Views: {r.view_ms:.1f}ms | " if r.view_ms is not None else ""
    events.append(
        (
            end,
            "INFO",
            f"Completed {r.status} {STATUS_TEXT[r.status]} in {round(r.duration_ms)}ms "
            f"({views}ActiveRecord: {r.db_ms:.1f}ms | Allocations: {r.allocations})",
        )
    )
    if r.error:
        lines = ["  ", f"{r.error.cls} ({r.error.message}):", "  ", *r.error.backtrace]
        events.extend((end, "FATAL", line) for line in lines)
    return events


def _lograge_lines(reqs: list[Request]) -> list[str]:
    """lograge JSON, one line per request, in order of completion."""
    lines = []
    for r in sorted(reqs, key=lambda r: r.ended):
        ep = r.endpoint
        entry: dict[str, object] = {
            "time": r.ended.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "method": ep.method,
            "path": r.path,
            "format": ep.format,
            "controller": ep.controller,
            "action": ep.action,
            "status": r.status,
            "duration": round(r.duration_ms, 2),
            "view": round(r.view_ms or 0.0, 2),
            "db": round(r.db_ms, 2),
            "request_id": r.request_id,
            "user_id": r.user.id if r.user else None,
            "remote_ip": r.ip,
            "params": r.params,
        }
        if r.redirect:
            entry["location"] = r.redirect
        if r.error:
            entry["exception"] = [r.error.cls, r.error.message]
            entry["exception_backtrace"] = list(r.error.backtrace)
        lines.append(json.dumps(entry, ensure_ascii=False))
    return lines


def ruby_inspect(value: object) -> str:
    """``value`` as Ruby's ``Hash#inspect`` prints it in a Rails 7 log (``{"a"=>"b"}``)."""
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'

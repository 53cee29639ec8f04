"""The classic Rails logger, line by line: which request a line belongs to and what it says.

``config.log_tags = [:request_id, ...]`` puts ``[request-id] [user:42]`` before each message;
lines of one request are grouped by that id (or by process id when a line has no tags), so
interleaved requests from several Puma threads come apart again. :mod:`.logfiles` reads the file
and turns finished requests into rows.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

# Lines of a request (an exception after "Completed") arrive within this much log time.
_GRACE = timedelta(seconds=5)
# A request with no "Completed" line is given up on after this much log time.
_STALE = timedelta(minutes=15)
_MAX_FRAMES = 100

RAILS_LINE = re.compile(
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


class Request:
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


def take_line(
    open_requests: dict[str, Request],
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
        request = open_requests[key] = Request(request_id, user_id, now)
        request.method, request.path = started["method"], started["path"]
        request.started = _apply_offset(now, started["at"])
        return now - request.started
    if request is None:
        if not tagged or request_id is None:
            return None  # boot messages, jobs, untagged noise: not part of a request
        request = open_requests[key] = Request(request_id, user_id, now)
    request.last = now
    if request.user_id is None:
        request.user_id = user_id
    _take_message(request, message, match["level"])
    return None


def _take_message(request: Request, message: str, level: str) -> None:
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


def flush(
    open_requests: dict[str, Request], rows: list[dict[str, Any]], now: datetime | None
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

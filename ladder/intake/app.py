"""The intake's ASGI app: ``POST /hooks/{source}`` and ``GET /healthz``, JSON in every answer.

For each delivery, in this order: the source must be known and have a secret (else 404); the
body at most 1 MiB (413); the signature or token right (401); the content type JSON (415); the
body JSON (400) of the source's shape (400 naming the field); a delivery id not seen before
(409). Then the alerts are normalized, routed, counted on their records and **committed to the
inbox before the 202** goes out; the dispatcher is woken to start the runs. No answer carries a
traceback or a secret; a database that cannot be written gives 503 (senders retry).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ladder.intake.config import IntakeConfig
from ladder.intake.inbox import Inbox, InboxError, NewAlert, Replay
from ladder.intake.normalize import NORMALIZERS, Alert, incident_for
from ladder.intake.signatures import (
    Rejected,
    verify_pagerduty,
    verify_sentry,
    verify_standard,
    verify_token,
)
from ladder.intake.writer import BatchWriter
from ladder.sanitize.scrub import scrub_value

__all__ = ["MAX_BODY", "create_app"]

MAX_BODY = 1024 * 1024
_INLINE_BODY = 64 * 1024  # bodies up to this size are checked and normalized on the event loop
log = logging.getLogger("ladder.intake")

_VERIFY: dict[str, Callable[[Mapping[str, str], bytes, list[str]], str | None]] = {
    "sentry": verify_sentry,
    "datadog": verify_token,
    "alertmanager": verify_token,
    "pagerduty": verify_pagerduty,
    "generic": verify_standard,
}
_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise Rejected(413, f"body over {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Rejected(413, f"body over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(headers: Mapping[str, str], body: bytes) -> Any:
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not (
        ctype.startswith("application/") and ctype.endswith("+json")
    ):
        raise Rejected(415, "content type must be application/json")
    try:
        data = json.loads(body, parse_constant=_no_constant)
        if _SURROGATE.search(body):  # a lone surrogate cannot be stored or sent on
            json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, RecursionError, UnicodeError):
        raise Rejected(400, "body is not valid JSON") from None
    return data


def _new_alert(config: IntakeConfig, alert: Alert, payload: Any, now: datetime) -> NewAlert:
    incident = incident_for(alert, "pending", now)
    # a resolved alert closes the fingerprint's open records whatever runbook they went to
    route = config.route(incident) if alert.status == "firing" else None
    return NewAlert(
        source=alert.source,
        status=alert.status,
        fingerprint=alert.fingerprint[:200],
        title=incident.title,
        runbook=route.path if route else None,
        window=route.window if route else _UNMATCHED_WINDOW,
        incident=incident.model_dump(mode="json", exclude={"id"}),
        payload=payload,
    )


_UNMATCHED_WINDOW = timedelta(minutes=60)  # unmatched alerts are counted, like matched ones


def _prepare(
    config: IntakeConfig, source: str, headers: Mapping[str, str], body: bytes
) -> tuple[list[NewAlert], str | None, Any]:
    """Everything but the commit, off the event loop: verify, parse, normalize, route, scrub."""
    secrets = [s.get_secret_value() for s in config.secrets[source]]
    delivery = _VERIFY[source](headers, body, secrets)
    data = _parse(headers, body)
    try:
        found = NORMALIZERS[source](data, headers)
        payload = scrub_value(data)
    except RecursionError:
        raise Rejected(400, "body: nested too deeply") from None
    now = datetime.now(UTC)
    if source == "pagerduty" and found:
        delivery = found[0].delivery_id
    items = [_new_alert(config, a, payload, now) for a in found]
    return items, (f"{source}:{delivery}" if delivery else None), payload


def create_app(
    config: IntakeConfig,
    inbox: Inbox,
    on_commit: Callable[[], None] = lambda: None,
    lifespan: Any = None,
) -> Starlette:
    """The intake app over ``inbox``; ``on_commit`` is called after each accepted delivery."""
    writer = BatchWriter(inbox)

    async def hook(request: Request) -> JSONResponse:
        source = request.path_params["source"]
        if source not in NORMALIZERS or source not in config.secrets:
            return _error(404, f"no enabled source {source[:40]!r}")
        try:
            body = await _body(request)
            if len(body) <= _INLINE_BODY:  # cheaper than a hop to a worker thread
                items, delivery, payload = _prepare(config, source, request.headers, body)
            else:
                items, delivery, payload = await run_in_threadpool(
                    _prepare, config, source, request.headers, body
                )
            accepted = await writer.file((source, items, delivery, payload))
        except Rejected as exc:
            return _error(exc.status, exc.message)
        except Replay:
            return _error(409, "replay: this delivery id was received before")
        except InboxError as exc:
            log.error("intake: %s", exc)
            return _error(503, "the inbox cannot be written now; send again later")
        on_commit()
        return JSONResponse(
            {
                "status": "accepted" if accepted else "ignored",
                "alerts": [
                    {"record": a.record_id, "state": a.state, "count": a.count, "new": a.new}
                    for a in accepted
                ],
            },
            status_code=202,
        )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "sources": sorted(config.secrets)})

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("intake: unexpected %s", type(exc).__name__)
        return _error(500, "unexpected error in the intake (a bug in Ladder)")

    app = Starlette(
        routes=[
            Route("/hooks/{source}", hook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.sources = sorted(config.secrets)
    return app

"""Is a delivery from the source it claims? One check per scheme (FACTS.md, "Alert webhooks").

Each ``verify_*`` takes the request's headers (a case-insensitive mapping), the raw body and the
secret(s), and returns the delivery's id for replay detection (``None`` when the scheme has none)
or raises :class:`Rejected` with status 401. Signatures are compared with
:func:`hmac.compare_digest`; several secrets may be configured (rotation on our side) and several
signatures may arrive (rotation on theirs): any pair that matches passes. Messages never hold a
secret or a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

__all__ = [
    "MAX_SKEW_SECONDS",
    "Rejected",
    "verify_pagerduty",
    "verify_sentry",
    "verify_standard",
    "verify_token",
]

MAX_SKEW_SECONDS = 5 * 60


class Rejected(Exception):
    """A request the intake refuses: ``status`` and a message safe to send back."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _unauthorized(why: str) -> Rejected:
    return Rejected(401, why)


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _any_equal(expected: Sequence[str], given: Sequence[str]) -> bool:
    """True when some given value equals some expected one; every pair is compared in full."""
    found = False
    for e in expected:
        for g in given:
            found |= hmac.compare_digest(e.encode(), g.encode())
    return found


def _check_time(value: str | None, header: str, now: float | None) -> None:
    if value is None:
        raise _unauthorized(f"missing {header} header")
    try:
        stamp = float(value.strip())
    except ValueError:
        raise _unauthorized(f"{header} is not a unix time") from None
    if stamp != stamp or abs((now or time.time()) - stamp) > MAX_SKEW_SECONDS:  # NaN, or skew
        raise _unauthorized(f"{header} is more than 5 minutes off: a replay or a wrong clock")


def _delivery_id(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:200] if value else None


def verify_sentry(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float | None = None
) -> str | None:
    """``Sentry-Hook-Signature``: hex HMAC-SHA256 of the raw body with the client secret.
    ``Sentry-Hook-Timestamp`` is checked when present; ``Request-ID`` is the delivery id."""
    given = headers.get("sentry-hook-signature")
    if not given:
        raise _unauthorized("missing Sentry-Hook-Signature header")
    if not _any_equal([_hex_hmac(s, body) for s in secrets], [given.strip().lower()]):
        raise _unauthorized("Sentry-Hook-Signature does not match")
    if "sentry-hook-timestamp" in headers:
        _check_time(headers["sentry-hook-timestamp"], "Sentry-Hook-Timestamp", now)
    return _delivery_id(headers.get("request-id"))


def verify_pagerduty(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float | None = None
) -> str | None:
    """``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`` (several while a secret rotates).
    The delivery id is the event's id, read from the body by the normalizer."""
    header = headers.get("x-pagerduty-signature")
    if not header:
        raise _unauthorized("missing X-PagerDuty-Signature header")
    given = [
        part.strip()[3:].lower() for part in header.split(",") if part.strip().startswith("v1=")
    ]
    if not given:
        raise _unauthorized("X-PagerDuty-Signature has no v1= signature")
    if not _any_equal([_hex_hmac(s, body) for s in secrets], given):
        raise _unauthorized("X-PagerDuty-Signature does not match")
    return None


def _standard_key(secret: str) -> bytes:
    """A Standard Webhooks secret, ``whsec_`` + base64 of the key (a bare base64 key too)."""
    text = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(500, "the generic source's secret is not whsec_ + base64") from None


def verify_standard(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float | None = None
) -> str | None:
    """Standard Webhooks: ``webhook-signature`` holds space-separated ``v1,<base64>`` entries,
    each an HMAC-SHA256 of ``{webhook-id}.{webhook-timestamp}.{body}``; returns the webhook-id."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    header = headers.get("webhook-signature")
    if not msg_id or not header:
        raise _unauthorized("missing webhook-id or webhook-signature header")
    _check_time(stamp, "webhook-timestamp", now)
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = [
        base64.b64encode(hmac.new(_standard_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    ]
    given = [e[3:] for e in header.split() if e.startswith("v1,")]
    if not given:
        raise _unauthorized("webhook-signature has no v1 signature")
    if not _any_equal(expected, given):
        raise _unauthorized("webhook-signature does not match")
    return _delivery_id(msg_id)


def _basic_password(value: str) -> str | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(":")[2] if ":" in decoded else None


def verify_token(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float | None = None
) -> str | None:
    """A shared token (Datadog, Alertmanager): ``X-Ladder-Token: T``, ``Authorization: Bearer
    T`` or HTTP Basic auth with T as the password (any user name)."""
    given: list[str] = []
    if headers.get("x-ladder-token"):
        given.append(headers["x-ladder-token"].strip())
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        given.append(value.strip())
    elif scheme.lower() == "basic":
        password = _basic_password(value)
        if password:
            given.append(password)
    if not given:
        raise _unauthorized("missing token (X-Ladder-Token, Bearer or Basic auth)")
    if not _any_equal(list(secrets), given):
        raise _unauthorized("token does not match")
    return None

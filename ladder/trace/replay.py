"""Replaying failing requests against staging with httpx, as the user who saw them fail.

A request is its method, path, params (scrubbed already: the logs' values never reach staging
unsanitized) and the user's id. The user's identity travels the way staging accepts it: an
impersonation header (``X-Impersonate-User: 42``) or a session cookie (``_session=user_id=42``),
``{user_id}`` in the configured value being replaced. GET and DELETE send params as the query
string; other methods as a JSON body.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field

from ladder.errors import ConnectorError

__all__ = ["Identity", "ReplayRequest", "Replayed", "from_evidence", "replay"]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
_ROUTING_KEYS = {"controller", "action", "format"}


class Identity(BaseModel):
    """How staging is told who the request is from (one of header or cookie)."""

    model_config = ConfigDict(extra="forbid")
    header: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9-]+$",
        description="impersonation header, e.g. X-Impersonate-User",
    )
    cookie: str | None = Field(
        None, pattern=r"^[\w.-]+$", description="session cookie name, e.g. _shop_session"
    )
    value: str = Field("{user_id}", description="header or cookie value; {user_id} is replaced")

    def apply(self, user_id: str | None) -> tuple[dict[str, str], dict[str, str]]:
        """``(headers, cookies)`` that make a request come from ``user_id``."""
        if user_id is None:
            return {}, {}
        value = self.value.replace("{user_id}", user_id)
        headers = {self.header: value} if self.header else {}
        cookies = {self.cookie: value} if self.cookie else {}
        return headers, cookies


class ReplayRequest(BaseModel):
    """A request to replay (from the evidence rung, or listed in the runbook)."""

    model_config = ConfigDict(extra="forbid")
    method: Method = "GET"
    path: str = Field(pattern=r"^/", description="path on the staging app, e.g. /checkout")
    params: dict[str, Any] = Field(default_factory=dict)
    user_id: str | None = None
    request_id: str | None = Field(None, description="the production request it replays")


class Replayed(BaseModel):
    """What staging answered to one replayed request."""

    method: str
    path: str
    user_id: str | None
    request_id: str | None
    status: int | None
    ms: float
    error: str | None = None


def from_evidence(rows: list[dict[str, Any]]) -> list[ReplayRequest]:
    """The evidence rung's failing requests that can be replayed (method and path known), each
    user's request to an endpoint once."""
    out: list[ReplayRequest] = []
    seen: set[tuple[str, str, str | None]] = set()
    for row in rows:
        method, path = (row.get("method") or "").upper(), row.get("path")
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE") or not path:
            continue
        try:
            params = json.loads(row["params"]) if row.get("params") else {}
        except ValueError:
            params = {}
        if not isinstance(params, dict):
            params = {}
        params = {k: v for k, v in params.items() if k not in _ROUTING_KEYS}
        key = (method, path.split("?", 1)[0], row.get("user_id"))
        if key in seen:  # the same user's same request: once is enough
            continue
        seen.add(key)
        out.append(
            ReplayRequest(
                method=method,  # type: ignore[arg-type]
                path=path.split("?", 1)[0],
                params=params,
                user_id=row.get("user_id"),
                request_id=row.get("request_id"),
            )
        )
    return out


def _query(params: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """Params as a query string takes them: nested values as JSON text."""
    plain = (str, int, float, bool)
    return {k: v if isinstance(v, plain) else json.dumps(v) for k, v in params.items()}


def replay(
    base_url: str, requests: list[ReplayRequest], identity: Identity, timeout: float = 30
) -> list[Replayed]:
    """Send each request to ``base_url`` in turn; a request that cannot be sent is recorded."""
    import httpx

    done = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for req in requests:
            headers, cookies = identity.apply(req.user_id)
            url = urljoin(base_url.rstrip("/") + "/", req.path.lstrip("/"))
            as_query = req.method in ("GET", "DELETE")
            started = time.monotonic()
            status, error = None, None
            try:
                client.cookies.clear()
                res = client.request(
                    req.method,
                    url,
                    params=_query(req.params) if as_query else None,
                    json=None if as_query else req.params,
                    headers=headers,
                    cookies=cookies,
                )
                status = res.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            done.append(
                Replayed(
                    method=req.method,
                    path=req.path,
                    user_id=req.user_id,
                    request_id=req.request_id,
                    status=status,
                    ms=round((time.monotonic() - started) * 1000, 1),
                    error=error,
                )
            )
    if done and all(r.error for r in done):
        raise ConnectorError(f"staging app {base_url} did not answer: {done[0].error}")
    return done

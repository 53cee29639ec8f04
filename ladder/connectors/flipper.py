"""Flipper, through the adapter an environment configures: the app's ActiveRecord tables or a
flipper-api endpoint. Ladder only ever reads a feature and adds or removes **one actor gate**.

Both connectors have the :class:`~ladder.connectors.base.Connection` shape (no I/O in
``__init__``, opened on first use, ``close()`` safe twice, usable as ``with``) and the same
methods: :meth:`feature` (what the feature holds, ``None`` when it does not exist),
:meth:`enable_actor`, :meth:`disable_actor` and :meth:`remove_feature`. Every value is bound
(psycopg parameters, JSON bodies), never pasted into SQL or a URL.

- :class:`FlipperTables`: ``flipper_features`` / ``flipper_gates`` (see FACTS.md). Enabling writes
  the feature row if it is missing and the gate row, with their timestamps (the tables have no
  defaults), ``ON CONFLICT DO NOTHING``; real Flipper sees it on the next request.
- :class:`FlipperHttp`: flipper-api's routes (``GET /api/v1/features/{name}``, ``POST
  /api/v1/features``, ``POST|DELETE /api/v1/features/{name}/actors``, ``DELETE
  /api/v1/features/{name}``) with the environment's auth header; error code 1 (feature not
  found) on enabling creates the feature first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import psycopg

from ladder.connectors.base import Connection, one_line
from ladder.connectors.flipper_config import FlipperConfig
from ladder.errors import FlipperError
from ladder.secrets import describe_server, resolve, resolve_dsn

__all__ = ["FeatureState", "FlipperHttp", "FlipperTables", "open_flipper"]

ACTORS = "actors"


@dataclass(frozen=True)
class FeatureState:
    """What a feature holds: its gates as ``{gate key: set of values}`` (``actors``, ``boolean``,
    ``groups``, ``percentage_of_actors``, ...), empty gates left out."""

    key: str
    gates: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def actors(self) -> frozenset[str]:
        return self.gates.get(ACTORS, frozenset())

    def has_gates(self) -> bool:
        return any(self.gates.values())


# --- ActiveRecord tables -------------------------------------------------------------------------


class FlipperTables(Connection[psycopg.Connection]):
    """Flipper's ActiveRecord tables in the app's database, with psycopg (autocommit; each write
    in one transaction)."""

    vendor_errors = (psycopg.Error,)

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn

    @property
    def address(self) -> str:
        return f"Flipper tables on {describe_server(self._dsn)}"

    def _open(self) -> psycopg.Connection:
        return psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)

    def _close(self, handle: psycopg.Connection) -> None:
        handle.close()

    def translate(self, exc: BaseException, doing: str) -> FlipperError:
        return FlipperError(f"{doing} failed on {self.address}: {one_line(exc)}")

    def feature(self, key: str) -> FeatureState | None:
        with self.errors(f"reading feature {key!r}"):
            conn = self.handle
            found = conn.execute("SELECT 1 FROM flipper_features WHERE key = %s", [key]).fetchone()
            rows = conn.execute(
                "SELECT key, value FROM flipper_gates WHERE feature_key = %s", [key]
            ).fetchall()
        gates: dict[str, set[str]] = {}
        for gate, value in rows:
            gates.setdefault(gate, set()).add(value)
        if found is None and not gates:
            return None
        return FeatureState(key, {k: frozenset(v) for k, v in gates.items()})

    def enable_actor(self, key: str, actor: str) -> None:
        # Rails keeps UTC in `timestamp without time zone`
        with self.errors(f"enabling {key!r} for {actor}"), self.handle.transaction() as tx:
            tx.connection.execute(
                "INSERT INTO flipper_features (key, created_at, updated_at) VALUES "
                "(%s, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC') ON CONFLICT DO NOTHING",
                [key],
            )
            tx.connection.execute(
                "INSERT INTO flipper_gates (feature_key, key, value, created_at, updated_at) VALUES "
                "(%s, %s, %s, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC') "
                "ON CONFLICT DO NOTHING",
                [key, ACTORS, actor],
            )

    def disable_actor(self, key: str, actor: str) -> None:
        with self.errors(f"disabling {key!r} for {actor}"):
            self.handle.execute(
                "DELETE FROM flipper_gates WHERE feature_key = %s AND key = %s AND value = %s",
                [key, ACTORS, actor],
            )

    def remove_feature(self, key: str) -> None:
        """Remove the feature row, only while it holds no gate (nobody else used it since)."""
        with self.errors(f"removing feature {key!r}"):
            self.handle.execute(
                "DELETE FROM flipper_features WHERE key = %s AND NOT EXISTS "
                "(SELECT 1 FROM flipper_gates WHERE feature_key = %s)",
                [key, key],
            )


# --- flipper-api ---------------------------------------------------------------------------------

FEATURE_NOT_FOUND = 1


class FlipperHttp(Connection[httpx.Client]):
    """A flipper-api endpoint (``url`` is where it is mounted; routes under ``/api/v1`` are
    appended unless ``url`` ends with them), with one auth header."""

    vendor_errors = (httpx.HTTPError,)

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, timeout: float = 10
    ) -> None:
        super().__init__()
        base = url.rstrip("/")
        self._base = base if base.endswith("/api/v1") else f"{base}/api/v1"
        self._headers = headers or {}
        self._timeout = timeout

    @property
    def address(self) -> str:
        return f"flipper-api {self._base}"

    def _open(self) -> httpx.Client:
        return httpx.Client(base_url=self._base, headers=self._headers, timeout=self._timeout)

    def _close(self, handle: httpx.Client) -> None:
        handle.close()

    def translate(self, exc: BaseException, doing: str) -> FlipperError:
        return FlipperError(f"{doing} failed on {self.address}: {type(exc).__name__}")

    def _call(self, method: str, path: str, doing: str, body: dict[str, Any] | None = None) -> Any:
        with self.errors(doing):
            response = self.handle.request(method, path, json=body)
        if response.is_success:
            return response.json() if response.content else None
        code, message = _api_error(response)
        raise _ApiError(code, f"{doing} failed on {self.address}: HTTP {response.status_code}"
                        + (f", code {code}: {message}" if code is not None else ""))  # fmt: skip

    def feature(self, key: str) -> FeatureState | None:
        try:
            data = self._call("GET", f"/features/{quote(key, safe='')}", f"reading feature {key!r}")
        except _ApiError as exc:
            if exc.code == FEATURE_NOT_FOUND:
                return None
            raise
        gates: dict[str, frozenset[str]] = {}
        for gate in data.get("gates", []):
            value = gate.get("value")
            off = value is None or value is False or value in (0, "0", "")  # percentages at 0
            values = value if isinstance(value, list) else [] if off else [value]
            if values:
                gates[gate["key"]] = frozenset(str(v) for v in values)
        return FeatureState(key, gates)

    def enable_actor(self, key: str, actor: str) -> None:
        path, doing = f"/features/{quote(key, safe='')}/actors", f"enabling {key!r} for {actor}"
        try:
            self._call("POST", path, doing, {"flipper_id": actor})
        except _ApiError as exc:
            if exc.code != FEATURE_NOT_FOUND:
                raise
            self._call("POST", "/features", f"adding feature {key!r}", {"name": key})
            self._call("POST", path, doing, {"flipper_id": actor})

    def disable_actor(self, key: str, actor: str) -> None:
        path = f"/features/{quote(key, safe='')}/actors"
        try:
            self._call("DELETE", path, f"disabling {key!r} for {actor}", {"flipper_id": actor})
        except _ApiError as exc:
            if exc.code != FEATURE_NOT_FOUND:  # no feature: no gate either
                raise

    def remove_feature(self, key: str) -> None:
        """Remove the feature, only while it holds no gate (read just before)."""
        state = self.feature(key)
        if state is None or state.has_gates():
            return
        self._call("DELETE", f"/features/{quote(key, safe='')}", f"removing feature {key!r}")


class _ApiError(FlipperError):
    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code


def _api_error(response: httpx.Response) -> tuple[int | None, str]:
    """flipper-api's error body ``{"code": N, "message": ...}``, when the response has one."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        return None, ""
    return body["code"], str(body.get("message", ""))[:200]


# --- from an environment -------------------------------------------------------------------------


def open_flipper(config: FlipperConfig) -> FlipperTables | FlipperHttp:
    """The connector ``config`` names, its secret references resolved now (not opened yet)."""
    if config.database is not None:
        return FlipperTables(resolve_dsn(config.database.dsn))
    assert config.api is not None  # one of the two, by FlipperConfig's validator
    headers = {config.api.auth_header: resolve(config.api.auth)} if config.api.auth else {}
    return FlipperHttp(config.api.url, headers)


def describe(config: FlipperConfig) -> str:
    """Where the flags are, for a person: never a credential."""
    if config.database is not None:
        dsn = config.database.dsn
        return f"Flipper tables in {dsn.describe() if not isinstance(dsn, str) else describe_server(dsn)}"
    assert config.api is not None
    return f"flipper-api at {config.api.url}"

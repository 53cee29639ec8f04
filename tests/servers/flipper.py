"""Flipper for the tests: real Ruby Flipper reading the tables, and a flipper-api-compatible
HTTP server.

- :func:`ruby_enabled` runs ``flipper_check.rb`` (argv, no shell) with Debian's ruby-flipper and
  its ActiveRecord adapter against a database: what a Rails app would answer to
  ``Flipper.enabled?(feature, actor)``. ``flipper_tables`` gives a database with Flipper's tables.
- :class:`FlipperApiServer` follows flipper-api's documented routes and error codes (``GET
  /api/v1/features/{name}``, ``POST /api/v1/features``, ``POST|DELETE
  /api/v1/features/{name}/actors``, ``DELETE /api/v1/features/{name}``; code 1 feature not
  found, 4 flipper_id missing, 5 name missing) on 127.0.0.1, behind an auth header like the mount
  a shop puts in front of it (flipper-api has none of its own). The hosted-API shape is the one
  thing stood in for: Debian has no flipper-api.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from ladder.sandbox.shop import activerecord_url, flipper_available
from servers import not_installed

CHECK = Path(__file__).with_name("flipper_check.rb")
TOKEN = "Bearer test-flipper-token"


def require_flipper() -> None:
    missing = flipper_available()
    if missing:
        not_installed("Ruby Flipper", missing)


def ruby_enabled(dsn: str, feature: str, *actors: str) -> dict[str, bool]:
    """Real Flipper's answer for each actor, from the tables in ``dsn``."""
    argv = ["ruby", str(CHECK), activerecord_url(dsn), feature, *actors]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def flipper_tables(pg_db: str) -> str:
    """A fresh database with the shop's tables, Flipper's among them; its DSN."""
    from ladder.connectors.postgres import connect
    from ladder.sandbox.shop_schema import create_tables

    require_flipper()
    with connect(pg_db) as conn:
        create_tables(conn)
    return pg_db


ERRORS = {
    1: (404, "Feature not found."),
    4: (422, "Required parameter flipper_id is missing."),
    5: (422, "Required parameter name is missing."),
}
GATES = ("boolean", "actors", "groups", "percentage_of_actors", "percentage_of_time")


class FlipperApiServer:
    """flipper-api's routes over an in-memory store ``features: {name: {gate: set}}``."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.features: dict[str, dict[str, set[str]]] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/flipper"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def feature_json(self, name: str) -> dict[str, Any]:
        gates = self.features[name]
        values = {
            g: sorted(gates[g]) if g in ("actors", "groups") else next(iter(gates[g]), None)
            for g in GATES
        }
        state = "on" if values["boolean"] else "conditional" if any(gates.values()) else "off"
        return {"key": name, "state": state,
                "gates": [{"key": g, "name": g.rstrip("s"), "value": values[g]} for g in GATES]}  # fmt: skip

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.split("?")[0].strip("/").split("/")]
        if parts[:3] != ["flipper", "api", "v1"] or len(parts) < 4 or parts[3] != "features":
            return 404, {}
        rest = parts[4:]
        with self._lock:
            if not rest and method == "POST":
                name = body.get("name")
                if not name:
                    return _error(5)
                self.features.setdefault(name, {g: set() for g in GATES})
                return 200, self.feature_json(name)
            if not rest or rest[0] not in self.features:
                return _error(1)
            name = rest[0]
            if len(rest) == 1 and method == "GET":
                return 200, self.feature_json(name)
            if len(rest) == 1 and method == "DELETE":
                del self.features[name]
                return 204, None
            if rest[1:] == ["actors"] and method in ("POST", "DELETE"):
                actor = body.get("flipper_id")
                if not actor:
                    return _error(4)
                gate = self.features[name]["actors"]
                gate.add(actor) if method == "POST" else gate.discard(actor)
                return 200, self.feature_json(name)
        return 404, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path))
                if self.headers.get("Authorization") != server.token:
                    status, payload = 401, {"error": "unauthorized"}
                else:
                    try:
                        body = json.loads(raw) if raw else {}
                    except ValueError:
                        body = {}
                    status, payload = server.answer(self.command, self.path, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        return Handler


def _error(code: int) -> tuple[int, dict[str, Any]]:
    status, message = ERRORS[code]
    return status, {
        "code": code,
        "message": message,
        "more_info": "https://flippercloud.io/docs/api",
    }


@pytest.fixture
def flipper_api() -> Iterator[FlipperApiServer]:
    server = FlipperApiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()

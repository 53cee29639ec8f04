"""nginx as the router of tagged requests: entries in a ``map`` include, a tested reload, probes.

The server's configuration (written once by whoever runs nginx; the README's rung 6 section has
the lines) maps ``"$http_x_debug_replica:$cookie_debug_replica"`` to ``$ladder_replica`` with
``include <map_include>;`` inside the map, proxies to ``$ladder_replica`` when it is set and to
the app's upstream otherwise, and answers ``X-Ladder-Replica: $ladder_replica`` (sent only when
set). Ladder adds one block per route to the include::

    # ladder route <id> begin
    "~^<token>:" "127.0.0.1:9001";
    "~:<token>$" "127.0.0.1:9001";
    # ladder route <id> end

(the header carrying the token, or the cookie). Then it checks the configuration
(``test_command``, e.g. ``nginx -t``) and sends SIGHUP to the master by PID: nginx starts new
workers with the new configuration and lets the old ones finish their requests, so a reload drops
no request. Tokens are hex and upstreams ``host:port``, both checked, so nothing from input
reaches nginx's syntax. Files are read and written byte for byte (base64 over the host's argv
interface; written to a temporary name and renamed).
"""

from __future__ import annotations

import base64
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ladder.connectors.hosts import Host
from ladder.errors import RoutingError

__all__ = [
    "REPLICA_HEADER", "Probe", "make_token", "probe", "read_bytes", "reload",
    "route_block", "wait_routed", "with_block", "without_block", "write_bytes",
]  # fmt: skip

#: The response header nginx answers with the replica's address (only for routed requests).
REPLICA_HEADER = "X-Ladder-Replica"
_TOKEN = re.compile(r"^[0-9a-f]{16,64}$")
_UPSTREAM = re.compile(r"^[A-Za-z0-9.\-]{1,253}:[0-9]{1,5}$")
_ROUTE_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def make_token() -> str:
    """A fresh routing token: 32 hex characters, nothing anyone could guess or already send."""
    return secrets.token_hex(16)


def route_block(route_id: str, token: str, upstream: str) -> bytes:
    """The include lines that send requests carrying ``token`` (header or cookie) to ``upstream``.

    >>> print(route_block("r1", "ab" * 8, "127.0.0.1:9001").decode(), end="")
    # ladder route r1 begin
    "~^abababababababab:" "127.0.0.1:9001";
    "~:abababababababab$" "127.0.0.1:9001";
    # ladder route r1 end
    """
    if not _TOKEN.match(token):
        raise RoutingError("a routing token must be 16-64 lowercase hex characters")
    if not _UPSTREAM.match(upstream):
        raise RoutingError(f"upstream {upstream!r} is not host:port")
    if not _ROUTE_ID.match(route_id):
        raise RoutingError(f"route id {route_id!r} is not a plain name")
    return (
        f"# ladder route {route_id} begin\n"
        f'"~^{token}:" "{upstream}";\n'
        f'"~:{token}$" "{upstream}";\n'
        f"# ladder route {route_id} end\n"
    ).encode()


def with_block(previous: bytes | None, block: bytes) -> bytes:
    """``previous`` (maybe absent, maybe without a final newline) with ``block`` appended."""
    text = previous or b""
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return text + block


def without_block(current: bytes, route_id: str) -> bytes:
    """``current`` with route ``route_id``'s block taken out (unchanged when it is not there)."""
    begin = f"# ladder route {route_id} begin\n".encode()
    end = f"# ladder route {route_id} end\n".encode()
    start = current.find(begin)
    if start < 0:
        return current
    stop = current.find(end, start)
    if stop < 0:
        raise RoutingError(f"route {route_id}: its block in the include has no end line")
    return current[:start] + current[stop + len(end) :]


# --- files on the host ------------------------------------------------------------------------


def read_bytes(host: Host, path: str) -> bytes | None:
    """The bytes of ``path`` on ``host``, or None when there is no such file."""
    if not host.run(["test", "-e", path], timeout=30).ok:
        return None
    res = host.run(["base64", "-w0", "--", path], timeout=30)
    if not res.ok:
        raise RoutingError(f"{host.label}: cannot read {path}: {res.tail(2)}")
    return base64.b64decode(res.stdout.strip())


def write_bytes(host: Host, path: str, data: bytes | None) -> None:
    """Make ``path`` on ``host`` hold exactly ``data`` (None: no file), its mode kept."""
    if data is None:
        res = host.run(["rm", "-f", "--", path], timeout=30)
        if not res.ok:
            raise RoutingError(f"{host.label}: cannot remove {path}: {res.tail(2)}")
        return
    staged = f"{path}.ladder-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="ladder-nginx-") as tmp:
        local = Path(tmp) / "include"
        local.write_bytes(data)
        host.put(local, staged)
    script = 'if [ -e "$1" ]; then chmod --reference="$1" "$0"; fi && mv -f -- "$0" "$1"'
    res = host.run(["sh", "-c", script, staged, path], timeout=30)
    if not res.ok:
        host.run(["rm", "-f", "--", staged], timeout=30)
        raise RoutingError(f"{host.label}: cannot write {path}: {res.tail(2)}")


def _workers(host: Host, master: str) -> set[str]:
    res = host.run(["ps", "-o", "pid=", "--ppid", master], timeout=30)
    return set(res.stdout.split()) if res.ok else set()


def reload(
    host: Host, pid_file: str, test_command: Sequence[str] | None, settle: float = 30
) -> int:
    """Check the configuration (``test_command``), SIGHUP nginx's master, and wait (up to
    ``settle`` s) until the workers that ran the old configuration have exited: until then an
    old worker may still take a new connection and route it the old way. The master's pid."""
    if test_command:
        res = host.run(list(test_command), timeout=60)
        if not res.ok:
            raise RoutingError(
                f"{host.label}: nginx refused the configuration: {res.tail(3)}".replace("\n", " ")
            )
    res = host.run(["cat", "--", pid_file], timeout=30)
    pid = res.stdout.strip()
    if not res.ok or not pid.isdigit():
        raise RoutingError(f"{host.label}: no nginx master pid in {pid_file}: {res.tail(2)}")
    old = _workers(host, pid)
    res = host.run(["kill", "-HUP", pid], timeout=30)
    if not res.ok:
        raise RoutingError(f"{host.label}: cannot reload nginx (pid {pid}): {res.tail(2)}")
    deadline = time.monotonic() + settle
    while old & _workers(host, pid) and time.monotonic() < deadline:
        time.sleep(0.1)  # an old worker finishing a long request is left to finish it
    return int(pid)


# --- probes -----------------------------------------------------------------------------------


class Probe:
    """Requests through the load balancer at ``url`` that say where nginx sent them."""

    def __init__(self, url: str, path: str, header: str, cookie: str) -> None:
        self.url = url.rstrip("/") + path
        self.header = header
        self.cookie = cookie

    def served_by(self, token: str | None, *, by_cookie: bool = False) -> tuple[int, str | None]:
        """``(status, replica address or None)`` of one GET, tagged with ``token`` if given."""
        import httpx

        headers, cookies = {}, {}
        if token and by_cookie:
            cookies[self.cookie] = token
        elif token:
            headers[self.header] = token
        try:
            with httpx.Client(timeout=5, cookies=cookies) as client:
                res = client.get(self.url, headers=headers)
        except httpx.HTTPError as exc:
            raise RoutingError(f"probe of {self.url} failed: {type(exc).__name__}: {exc}") from None
        return res.status_code, res.headers.get(REPLICA_HEADER)


def probe(p: Probe, token: str, upstream: str) -> list[str]:
    """Check once that tagged requests (header, cookie) reach ``upstream`` and an untagged one
    does not; the lines that say so, or RoutingError naming what went astray."""
    out = []
    for how, by_cookie in (("header", False), ("cookie", True)):
        status, seen = p.served_by(token, by_cookie=by_cookie)
        if seen != upstream or status >= 500:
            raise RoutingError(
                f"a request tagged by {how} reached {seen or 'the app'} (HTTP {status}), "
                f"not the replica at {upstream}"
            )
        out.append(f"a request tagged by {how} reached the replica at {upstream} (HTTP {status})")
    status, seen = p.served_by(None)
    if seen is not None:
        raise RoutingError(f"an untagged request reached {seen}: the route is not tag-only")
    out.append(f"an untagged request reached the app, not the replica (HTTP {status})")
    return out


def wait_routed(
    p: Probe,
    token: str,
    upstream: str | None,
    timeout: float = 60,
    still_worth_it: Callable[[], bool] = lambda: True,
) -> None:
    """Poll until a request tagged with ``token`` is served by ``upstream`` (None: by no
    replica, i.e. the route is gone); RoutingError at ``timeout``, or as soon as
    ``still_worth_it()`` says False (the replica died)."""
    deadline = time.monotonic() + timeout
    status, seen = 0, None
    while time.monotonic() < deadline and still_worth_it():
        try:
            status, seen = p.served_by(token)
        except RoutingError:
            status, seen = 0, None
            if upstream is None:
                raise
        if seen == upstream and (upstream is None or status < 500):
            return
        time.sleep(0.2)
    want = f"the replica at {upstream}" if upstream else "the app again"
    raise RoutingError(
        f"a tagged request still reached {seen or 'the app'} (HTTP {status}), not {want} "
        f"(waited up to {timeout:.0f} s)"
    )

"""The tunnel keeper: one process that holds one SSH local forward until its lease ends.

    python -m ladder.tunnel.keeper RUN_DIR      (its KeeperSpec as one JSON line on stdin)

Started by :mod:`ladder.tunnel.process`, never by hand. It reads its spec, opens the SSH
connection (host keys pinned, through the bastion) and forwards ``127.0.0.1:local_port`` to the
replica. It stops when told (SIGTERM, SIGINT, SIGHUP), when its lease is no longer open or has
expired (read from the ledger every few seconds, so an *extend* at the hold keeps it up), and
after ``max_reconnects`` failed attempts in a row to reconnect a dropped connection. A host key
that does not match is never retried. What it does is in ``RUN_DIR/status.json`` (``state``,
``reconnects``, ``error``, recent ``events``), written atomically, and its log.
"""

from __future__ import annotations

import contextlib
import gc
import json
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.5
LEASE_CHECK_SECONDS = 2.0
BACKOFF = (1, 2, 4, 8)
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Status:
    """``status.json``: the keeper's state, for the process that leased it and for people."""

    def __init__(self, run_dir: Path, local_port: int) -> None:
        self.path = run_dir / "status.json"
        self.data: dict[str, Any] = {"state": "connecting", "local_port": local_port,
                                     "reconnects": 0, "error": None, "events": []}  # fmt: skip

    def set(self, state: str, event: str | None = None, **fields: Any) -> None:
        self.data.update(state=state, **fields)
        if event:
            at = f"{datetime.now(UTC):%H:%M:%S}"
            self.data["events"] = [*self.data["events"], f"{at} {event}"][-20:]
            print(f"{at} {state}: {event}", flush=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)


class _Lease:
    """Whether the lease still wants the tunnel: open and not expired (cached between reads)."""

    def __init__(self, lease_id: str, ledger_url: str) -> None:
        from ladder.leases import LeaseLedger

        self.lease_id = lease_id
        self.ledger = LeaseLedger(ledger_url)
        self.expires_at = self.ledger.get(lease_id).expires_at
        self.open = True
        self._checked = 0.0

    def wanted(self, now: float) -> bool:
        from ladder.errors import LeaseError

        if now - self._checked >= LEASE_CHECK_SECONDS:
            self._checked = now
            try:
                lease = self.ledger.get(self.lease_id)
                self.expires_at, self.open = lease.expires_at, lease.is_open
            except LeaseError:
                pass  # the ledger is busy or away: keep the last expiry we read
        return self.open and datetime.now(UTC) < self.expires_at

    def give_up(self) -> None:
        """Revert the lease from inside: its undo sees it runs in the keeper and only records."""
        from ladder.errors import LeaseError

        # when the ledger is away, the run's end or the janitor reverts it later
        with contextlib.suppress(LeaseError):
            self.ledger.revert(self.lease_id)


def keep(spec: Any, status: _Status, stop: threading.Event) -> int:
    """Hold the forward until stopped, expired or out of retries; the process's exit code."""
    import time

    from ladder.connectors.ssh import SSHConnection
    from ladder.errors import HostKeyError, SSHError

    lease = _Lease(spec.lease_id, spec.ledger_url.get_secret_value())
    key = spec.private_key.get_secret_value() if spec.private_key else None
    ever_ready, failures, reconnects = False, 0, 0
    while not stop.is_set() and lease.wanted(time.monotonic()):
        # a forward whose thread died (a client met the dropped connection) keeps its listening
        # socket in a reference cycle: free it before listening on the same port again
        gc.collect()
        conn = SSHConnection(spec.ssh, private_key=key)
        try:
            with conn, conn.forward_local(spec.local_port, spec.remote_host, spec.remote_port):
                if ever_ready:
                    reconnects += 1
                    status.set("ready", f"reconnected (reconnect {reconnects})",
                               reconnects=reconnects, error=None)  # fmt: skip
                else:
                    status.set("ready", f"forwarding 127.0.0.1:{spec.local_port} to "
                               f"{spec.remote_host}:{spec.remote_port} via {conn.address}")  # fmt: skip
                ever_ready, failures = True, 0
                while not stop.is_set() and conn.is_connected and lease.wanted(time.monotonic()):
                    stop.wait(POLL_SECONDS)
                if not conn.is_connected and not stop.is_set():
                    status.set("reconnecting", "the SSH connection dropped")
        except HostKeyError as exc:  # never retried: the host is not the one pinned
            status.set("failed", str(exc), error=str(exc), host_key=True)
            if ever_ready:  # it changed while the tunnel was held
                lease.give_up()
            return 2
        except SSHError as exc:
            if not ever_ready:  # the first connection failed: the opener reports why
                status.set("failed", str(exc), error=str(exc))
                return 1
            failures += 1
            if failures > spec.max_reconnects:
                why = f"gave up after {spec.max_reconnects} reconnect attempts: {exc}"
                status.set("failed", why, error=why)
                lease.give_up()  # the hold and the report learn the tunnel is gone
                return 1
            status.set("reconnecting", f"attempt {failures} of {spec.max_reconnects} failed: "
                       f"{exc}", error=str(exc))  # fmt: skip
            stop.wait(BACKOFF[min(failures, len(BACKOFF)) - 1])
    why = "told to stop" if stop.is_set() else "its lease ended or expired"
    status.set("closed", why)
    return 0


def _exit_now(*_: object) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    from ladder.tunnel.process import KeeperSpec

    run_dir = Path(argv[1])
    stop = threading.Event()
    for sig in SIGNALS:  # idle, nothing opened yet: a signal ends the process at once
        signal.signal(sig, _exit_now)
    line = sys.stdin.readline()
    sys.stdin.close()
    if not line.strip():
        return 0  # the parent went away before it leased us: nothing was opened
    spec = KeeperSpec.model_validate_json(line)
    for sig in SIGNALS:  # from here on a signal closes the forward and the connection first
        signal.signal(sig, lambda *_: stop.set())
    status = _Status(run_dir, spec.local_port)
    status.set("connecting", f"keeper started for lease {spec.lease_id}")
    try:
        return keep(spec, status, stop)
    except Exception as exc:  # a bug: say so in the status, where the parent looks
        status.set("failed", f"unexpected {type(exc).__name__}: {exc}", error=f"unexpected {type(exc).__name__}")
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv))

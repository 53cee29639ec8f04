"""``ladder tunnel open``: rung 3 from a terminal — a read-only tunnel until Ctrl-C or its TTL."""

from __future__ import annotations

import getpass
import os
import re
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.errors import LadderGroup
from ladder.errors import ConfigError, SSHError

app = typer.Typer(
    cls=LadderGroup,
    help="Read-only SSH tunnels to an environment's replica (rung 3 from a terminal).",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL = timedelta(days=7)


def parse_ttl(text: str) -> timedelta:
    """``30m``, ``2h``, ``90s``, ``1d`` or a bare number of minutes; at most 7 days.

    >>> parse_ttl("90s"), parse_ttl("2h"), parse_ttl("45")
    (datetime.timedelta(seconds=90), datetime.timedelta(seconds=7200), datetime.timedelta(seconds=2700))
    """
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text.lower())
    ttl = timedelta(seconds=int(m[1]) * _UNITS[m[2] or "m"]) if m else None
    if ttl is None or not timedelta(0) < ttl <= MAX_TTL:
        raise ConfigError(
            f"--ttl {text!r}: expected a duration above zero and at most 7 days, like 30m, 2h or 90s"
        )
    return ttl


_STOP = threading.Event()  # Ctrl-C or SIGTERM: close the tunnel at the next check


def _ask_stop(*_: Any) -> None:
    # A flag, not an exception: an exception raised at any point (inside a ledger transaction,
    # say) left SQLite locked, and closing the tunnel then waited on its own lock.
    _STOP.set()


@app.command("open")
def open_tunnel(
    runbook: Annotated[
        Path, typer.Option("--runbook", help="runbook whose environment names ssh and the replica")
    ],
    ttl: Annotated[
        str | None,
        typer.Option(
            help="how long it stays open: 30m, 2h, 90s "
            "(default: the runbook's rungs.tunnel.ttl_minutes, else 30m)"
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1024, max=65535, help="local port on 127.0.0.1 (default: a free one)"),
    ] = None,
) -> None:
    """Open a read-only tunnel to the runbook's replica, print its DSN, and keep it open until
    Ctrl-C or its TTL. It is a lease: `ladder leases list` shows it, the janitor closes it if
    this command dies."""
    from ladder.config import bind_environment, load_runbook
    from ladder.leases import LeaseLedger
    from ladder.rungs.tunnel import TunnelSettings
    from ladder.tunnel import open_read_only_tunnel, read_status, tunnel_target

    chosen = parse_ttl(ttl) if ttl is not None else None
    loaded = load_runbook(runbook)
    env, _ = bind_environment(loaded)
    try:
        tunnel_target(env)
    except ConfigError as exc:
        raise ConfigError(f"{loaded.environment_path}: {exc}") from None
    settings = loaded.runbook.rungs.settings("tunnel") or TunnelSettings()
    lifetime = chosen or timedelta(minutes=settings.ttl_minutes)  # type: ignore[attr-defined]
    ledger = LeaseLedger()
    _STOP.clear()
    previous = {sig: signal.signal(sig, _ask_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        tunnel = open_read_only_tunnel(
            env,
            owner=f"cli:{getpass.getuser()}@{os.getpid()}",
            ttl=lifetime,
            local_port=port or settings.local_port,  # type: ignore[attr-defined]
            ledger=ledger,
        )
        expires = tunnel.lease.expires_at
        out.print(f"tunnel [bold]127.0.0.1:{tunnel.local_port}[/bold] → {tunnel.target} "
                  f"via {tunnel.via} (lease {tunnel.lease.id})")  # fmt: skip
        out.print(f"read-only: {tunnel.read_only}")
        out.print(f"psql '{tunnel.dsn}'")
        out.print(f"open until {expires:%H:%M:%S} UTC; Ctrl-C closes it now")
        why = _watch(tunnel, read_status, ledger)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if "tunnel" in locals():
            lease = ledger.revert(tunnel.lease.id)
            out.print(f"{lease.outcome}")
        ledger.close()
    if why.startswith("failed"):
        raise SSHError(f"the tunnel {why}")
    out.print(why)


def _watch(tunnel: Any, read_status: Any, ledger: Any) -> str:
    """Print the keeper's events until its lease expires or it stops; why it ended."""
    from ladder.procs import pid_alive

    seen = len(read_status(tunnel.keeper.run_dir).get("events", []))
    while not _STOP.wait(0.5):
        status = read_status(tunnel.keeper.run_dir)
        events = status.get("events", [])
        for event in events[seen:] if len(events) > seen else []:
            out.print(f"  {event}")
        seen = len(events)
        if status.get("state") == "failed":
            return f"failed: {status.get('error')}"
        lease = ledger.get(tunnel.lease.id)
        if not lease.is_open:
            return "closed: its lease was reverted elsewhere"
        if lease.expires_at <= datetime.now(UTC):
            return "closed: its TTL passed"
        if status.get("state") == "closed" or not pid_alive(tunnel.keeper.pid):
            return "closed: its keeper stopped"
    return "closed on request"

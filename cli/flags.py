"""``ladder flags list``: the Flipper flags Ladder holds on now, with actor, approver and expiry.

Reads the lease ledger (the ``flipper_actor_gate`` leases rung 5 takes), not Flipper: what Ladder
changed and will undo, whoever else uses Flipper. Revert one with ``ladder leases revert ID``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import LadderGroup
from cli.leases import _relative
from ladder.leases import OPEN_STATES, Lease, LeaseLedger

app = typer.Typer(
    cls=LadderGroup,
    help="Flipper flags Ladder enabled (rung 5), each held by a lease with a TTL.",
    no_args_is_help=True,
)

KIND = "flipper_actor_gate"  # ladder.connectors.flipper_leases.KIND, without importing psycopg


def flag_rows(leases: list[Lease]) -> list[dict[str, Any]]:
    """One row per flag lease: feature, actor, approver, incident, run, state, expiry, lease id."""
    return [
        {
            "lease": lease.id,
            "feature": lease.undo.get("feature", ""),
            "actor": lease.undo.get("actor", ""),
            "approver": lease.undo.get("approver") or "",
            "incident": lease.undo.get("incident") or "",
            "was_enabled_before": bool(lease.undo.get("was_enabled")),
            "owner": lease.owner,
            "state": lease.state.value,
            "expires_at": lease.expires_at.isoformat(),
        }
        for lease in leases
        if lease.kind == KIND
    ]


@app.command("list")
def list_flags(
    every: Annotated[
        bool, typer.Option("--all", help="Also flags already reverted (the audit trail).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the flags Ladder holds on now (--all: every flag it ever enabled), oldest first."""
    ledger = LeaseLedger()
    try:
        leases = [x for x in ledger.list() if every or x.state in OPEN_STATES]
    finally:
        ledger.close()
    rows = flag_rows(leases)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    now = datetime.now(UTC)
    table = Table(title=f"{len(rows)} flag(s) {'enabled by Ladder' if every else 'held on now'}")
    for column in ("feature", "actor", "approver", "incident", "expires", "state", "lease"):
        table.add_column(column, overflow="fold")
    for row in rows:
        expires = datetime.fromisoformat(row["expires_at"])
        table.add_row(row["feature"], row["actor"], row["approver"] or "-", row["incident"],
                      f"{expires:%Y-%m-%d %H:%M:%S} UTC ({_relative(expires, now)})",
                      row["state"], row["lease"])  # fmt: skip
    Console().print(table)

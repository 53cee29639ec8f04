"""``ladder leases list|revert``: look at the lease ledger and undo changes by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import LadderGroup
from ladder.errors import LeaseError
from ladder.leases import Lease, LeaseLedger, LeaseState

app = typer.Typer(
    cls=LadderGroup,
    help="The lease ledger: every change Ladder made to a shared environment.",
    no_args_is_help=True,
)

_STATE_STYLE = {
    LeaseState.PENDING: "yellow",
    LeaseState.ACTIVE: "cyan",
    LeaseState.REVERTED: "green",
    LeaseState.REVERT_FAILED: "bold red",
}


def _relative(when: datetime, now: datetime) -> str:
    """``in 4m 10s`` or ``2h 5m ago``: the two largest units."""
    seconds = int((when - now).total_seconds())
    span = abs(seconds)
    units = [(span // 86400, "d"), (span % 86400 // 3600, "h"), (span % 3600 // 60, "m")]
    units.append((span % 60, "s"))
    while len(units) > 1 and units[0][0] == 0:
        units.pop(0)
    text = " ".join(f"{n}{unit}" for n, unit in units[:2] if n) or "0s"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def _table(leases: list[Lease]) -> Table:
    now = datetime.now(UTC)
    table = Table(title=f"{len(leases)} lease(s)")
    for column in ("id", "kind", "target", "owner", "state", "expires", "outcome"):
        table.add_column(column, overflow="fold")
    for lease in leases:
        style = _STATE_STYLE[lease.state]
        table.add_row(
            lease.id,
            lease.kind,
            lease.target,
            lease.owner,
            f"[{style}]{lease.state.value}[/]",
            _relative(lease.expires_at, now),
            lease.outcome or "",
        )
    return table


@app.command("list")
def list_leases(
    state: Annotated[
        LeaseState | None, typer.Option("--state", help="Only leases in this state.")
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Only leases of this owner (a flow run id).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List leases, oldest first."""
    ledger = LeaseLedger()
    try:
        leases = ledger.list(state=state, owner=owner)
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps([lease.to_dict() for lease in leases], indent=2))
    else:
        Console().print(_table(leases))


@app.command("revert")
def revert(
    lease_id: Annotated[str | None, typer.Argument(help="The lease to revert.")] = None,
    expired: Annotated[
        bool, typer.Option("--expired", help="Revert every expired lease (what the janitor does).")
    ] = False,
    run: Annotated[
        str | None, typer.Option("--run", help="Revert every open lease of this flow run.")
    ] = None,
) -> None:
    """Revert one lease (ID), every expired lease (--expired) or a run's leases (--run RUN_ID).

    Exits 1 when any revert failed; run it again to retry.
    """
    chosen = [
        name for name, given in (("ID", lease_id), ("--expired", expired), ("--run", run)) if given
    ]
    if len(chosen) != 1:
        what = "none given" if not chosen else f"got {' and '.join(chosen)}"
        raise typer.BadParameter(
            f"give exactly one of ID, --expired or --run RUN_ID ({what})",
            param_hint="lease selector",
        )
    ledger = LeaseLedger()
    try:
        if lease_id:
            leases = [ledger.revert(lease_id)]
        elif expired:
            leases = ledger.revert_expired()
        else:
            if not ledger.list(owner=str(run)):
                raise LeaseError(
                    f"--run {run}: the ledger has no lease of this run "
                    "(`ladder leases list` shows the owners)"
                )
            leases = ledger.revert_owner(str(run))
    finally:
        ledger.close()

    if not leases:
        typer.echo("nothing to revert")
    failed = [lease for lease in leases if lease.state is LeaseState.REVERT_FAILED]
    for lease in leases:
        if lease.state is LeaseState.REVERTED:
            typer.echo(f"reverted {lease.id} ({lease.kind} {lease.target}): {lease.outcome}")
    for lease in failed:
        typer.echo(
            f"FAILED {lease.id} ({lease.kind} {lease.target}) after {lease.attempts} "
            f"attempt(s): {lease.outcome}",
            err=True,
        )
    if failed:
        raise typer.Exit(1)

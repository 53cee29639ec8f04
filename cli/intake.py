"""``ladder intake serve|list``: the alert webhook receiver and its inbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.entrypoints import runbook_path
from cli.errors import LadderGroup

app = typer.Typer(
    cls=LadderGroup,
    help="Alert webhooks (Sentry, Datadog, Alertmanager, PagerDuty, Standard Webhooks) start runs.",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 8787,
    config: Annotated[
        Path | None,
        typer.Option(help="intake configuration (default: the project's runbooks/intake.yaml)"),
    ] = None,
    max_backoff: Annotated[
        float,
        typer.Option(help="longest wait, in seconds, between tries to start a run", min=0.1),
    ] = 30.0,
) -> None:
    """Receive alerts on /hooks/{sentry,datadog,alertmanager,pagerduty,generic} until Ctrl-C.

    Every alert is committed to the inbox (the ledger database) before the 202; the same
    fingerprint within a runbook's dedup_window_minutes starts one run; runs are created in the
    background, retried until Prefect (PREFECT_API_URL) has them. A source without a secret is
    disabled (404).
    """
    from ladder.intake.server import serve as run_serve

    run_serve(config or runbook_path("intake.yaml"), host, port, max_backoff=max_backoff,
              say=typer.echo)  # fmt: skip


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table(title=f"{len(rows)} incident record(s)")
    for column in (
        "record",
        "source",
        "title",
        "runbook",
        "state",
        "count",
        "last seen",
        "flow run",
    ):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["id"])[:12], str(r["source"]), str(r["title"])[:60],
            Path(str(r["runbook"])).name if r["runbook"] else "(no match)",
            str(r["state"]) + (" (closed)" if r["closed_at"] else ""),
            str(r["count"]), str(r["last_seen"])[:19], str(r["flow_run_id"] or r["last_error"] or ""),
        )  # fmt: skip
    return table


@app.command("list")
def list_alerts(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    limit: Annotated[int, typer.Option(help="at most this many, newest first", min=1)] = 200,
) -> None:
    """The incident records of the inbox: state, alert count and flow run id, newest first."""
    from ladder.intake.inbox import Inbox

    inbox = Inbox()
    try:
        rows = [r.as_json() for r in inbox.records(limit=limit)]
    finally:
        inbox.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        Console().print(_table(rows))

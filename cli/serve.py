"""``ladder serve``: the Prefect UI with Ladder's deployments, on one machine."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="address of the local Prefect server")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the local Prefect server")] = 4200,
    runbook: Annotated[
        str | None,
        typer.Option(
            help="default runbook of the escalate-incident form (default: prefect.yaml's)"
        ),
    ] = None,
) -> None:
    """Serve the deployments of prefect.yaml against one Prefect server, until Ctrl-C.

    The server is PREFECT_API_URL when that is set, else one already answering on HOST:PORT,
    else a `prefect server start` started here (its log in $PREFECT_HOME/ladder-server.log)
    and stopped on the way out. Open the UI, start escalate-incident from Deployments, and
    answer its checkpoints from the paused run's ⋮ menu → Resume.
    """
    from cli.serving import serve as run_serve

    run_serve(host, port, runbook, say=typer.echo)

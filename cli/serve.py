"""``ladder serve``: the Prefect UI with Ladder's deployments, on one machine."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.entrypoints import runbook_path


def serve(
    host: Annotated[str, typer.Option(help="address of the local Prefect server")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the local Prefect server")] = 4200,
    runbook: Annotated[
        str, typer.Option(help="default runbook of the escalate-incident form")
    ] = str(runbook_path("demo.yaml")),
) -> None:
    """Start a Prefect server (unless PREFECT_API_URL is set) and serve Ladder's deployments.

    Open the UI, start escalate-incident from Deployments, and answer its checkpoints with
    Resume. Ctrl-C stops everything.
    """
    from cli.run import quiet_prefect
    from cli.serving import serve as run_serve

    with quiet_prefect():
        run_serve(host, port, runbook, say=typer.echo)

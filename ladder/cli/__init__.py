"""The ``ladder`` command. Each sub-command group lives in its own module and is added here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ladder",
    help="Climb the production-debugging ladder, least invasive rung first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Sub-command groups register themselves below, one line each:
# from ladder.cli import sandbox as _sandbox  ->  app.add_typer(_sandbox.app, name="sandbox")
from ladder.cli import run as _run  # noqa: E402
from ladder.cli import runbook as _runbook  # noqa: E402
from ladder.cli import serve as _serve  # noqa: E402

app.command("demo")(_run.demo)
app.command("escalate")(_run.escalate)
app.command("serve")(_serve.serve)
app.add_typer(_runbook.app, name="runbook")
from ladder.cli import leases as _leases  # noqa: E402

app.add_typer(_leases.app, name="leases")
from ladder.cli import replica as _replica  # noqa: E402

app.add_typer(_replica.app, name="replica")
from ladder.cli import policy as _policy  # noqa: E402

app.add_typer(_policy.app, name="policy")
from ladder.cli import sandbox as _sandbox  # noqa: E402

app.add_typer(_sandbox.app, name="sandbox")


def main() -> None:
    """Console-script entry point: Ladder's own errors print one clear line and exit 1."""
    from rich.console import Console

    from ladder.errors import LadderError

    try:
        app()
    except LadderError as exc:
        Console(stderr=True, highlight=False).print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise SystemExit(exc.exit_code) from None

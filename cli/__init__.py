"""The ``ladder`` command. Each sub-command group lives in its own module and is added here."""

from __future__ import annotations

import typer

from cli.errors import LadderGroup

app = typer.Typer(
    name="ladder",
    cls=LadderGroup,
    help="Climb the production-debugging ladder, least invasive rung first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# The commands, in the order `ladder --help` lists them.
from cli import flags, intake, leases, policy, replica, run, runbook, sandbox, serve, tunnel  # noqa: E402

app.command("demo")(run.demo)
app.command("escalate")(run.escalate)
app.command("serve")(serve.serve)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(runbook.app, name="runbook")
app.add_typer(policy.app, name="policy")
app.add_typer(replica.app, name="replica")
app.add_typer(leases.app, name="leases")
app.add_typer(tunnel.app, name="tunnel")
app.add_typer(flags.app, name="flags")
app.add_typer(intake.app, name="intake")


def main() -> None:
    """Console-script entry point. Every failure ends in :class:`cli.errors.LadderGroup`: one
    ``error:`` line on stderr and exit 1, never a traceback."""
    app(prog_name="ladder")  # `python -m cli` too: messages say `ladder ... --help`

"""``ladder runbook check``: validate a runbook and everything it references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cli.errors import LadderGroup
from ladder.config import bind_environment, check_runbook, load_runbook
from ladder.errors import LadderError
from ladder.secrets import scrub

app = typer.Typer(cls=LadderGroup, help="Validate runbooks.", no_args_is_help=True)
err = Console(stderr=True)


def _live(file: Path) -> list[tuple[str, str]]:
    """The runbook's checks against its live environment; a stopped sandbox is not started."""
    from ladder import sandbox
    from ladder.live_checks import live_findings

    loaded = load_runbook(file)
    skipped = f"{file}: checks against the environment skipped"
    if loaded.environment.sandbox:
        box = sandbox.status()
        if box is None or not box.running:  # a check starts nothing
            return [("note", f"{skipped}: the sandbox is not running (`ladder sandbox up`)")]
    try:
        env, _ = bind_environment(loaded)
    except LadderError as exc:
        return [("note", f"{skipped}: {exc}")]
    return live_findings(loaded, env)


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="runbook YAML file")],
    strict: Annotated[bool, typer.Option(help="treat warnings as errors")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print findings as JSON")] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="do not connect: skip the policy check against the source database"
        ),
    ] = False,
) -> None:
    """Check a runbook, its environment and its policy; one line per problem, with file:line.

    When the source database is reachable (and not --offline), rung 2's policy is checked
    against it: every column of every table the copy reads needs an entry. When it is not,
    a note says the check was skipped.
    """
    errors, warnings = check_runbook(file)
    notes: list[str] = []
    if not errors and not offline:
        for severity, line in _live(file):
            {"error": errors, "warning": warnings}.get(severity, notes).append(scrub(line))
    elif offline:
        notes.append(f"{file}: --offline: the policy was not checked against the source")
    failed = bool(errors) or (strict and bool(warnings))
    if as_json:
        payload = {"ok": not failed, "errors": errors, "warnings": warnings, "notes": notes}
        typer.echo(json.dumps(payload, indent=2))
    else:
        for line in errors:
            err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        for line in warnings:
            err.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
        for line in notes:
            err.print(f"note: {escape(line)}", highlight=False, soft_wrap=True)
        if not failed:
            note = f" ({len(warnings)} warnings)" if warnings else ""
            typer.echo(f"{file}: ok{note}")
    raise typer.Exit(1 if failed else 0)

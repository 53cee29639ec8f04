"""How a ``ladder`` command ends when something is wrong: one line on stderr, exit 1, no traceback.

Every command runs inside :meth:`LadderGroup.main`, the one place that turns

- a :class:`~ladder.errors.LadderError` into ``error: <message>`` (a ``ConfigError`` or
  ``PolicyError`` with several findings prints one ``error: file:line: ...`` line per finding),
- a usage error (unknown option, bad value, missing argument) into ``error: <what>: <why> (see
  `ladder ... --help`)`` instead of click's usage block and Rich panel,
- an ``OSError`` (a directory that cannot be created, a file that cannot be read) into
  ``error: <path>: <reason>``,
- any other exception into ``error: unexpected <Type>: <message> - a bug in Ladder ...``.

Exit code 1 in every case (130 for Ctrl-C). Messages pass :func:`ladder.secrets.scrub`, so a
password that slipped into one is masked. ``LADDER_DEBUG=1`` lets an unexpected exception through
with its traceback, for a bug report. A command with no arguments prints its help and exits 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from ladder.errors import ConfigError, LadderError, PolicyError
from ladder.secrets import scrub

DEBUG_ENV = "LADDER_DEBUG"


def debug_enabled() -> bool:
    """``LADDER_DEBUG`` is set to a true value (false when the settings themselves are wrong:
    the error that says so is the one to show)."""
    from ladder.settings import settings

    try:
        return settings().debug
    except Exception:
        return False


def one_line(text: str) -> str:
    """``text`` on one line, whitespace collapsed and any password masked."""
    return " ".join(scrub(text).split())


def messages(exc: LadderError) -> list[str]:
    """What to print for ``exc``: one line per finding, else one line."""
    if isinstance(exc, ConfigError | PolicyError) and exc.findings:
        return [one_line(f) for f in exc.findings if f.strip()]
    return [one_line(str(exc)) or type(exc).__name__]


def usage_message(exc: UsageError) -> str:
    """A usage error as one line that says where to look for help."""
    text = one_line(exc.format_message()).replace("Value error, ", "")
    text = text[:1].lower() + text[1:]
    if exc.ctx is not None:
        text += f" (see `{exc.ctx.command_path} --help`)"
    return text


def say(lines: Sequence[str]) -> None:
    for line in lines:
        typer.echo(f"{typer.style('error:', fg='red')} {line}", err=True)


def exit_code_for(exc: Exception) -> int:
    """Print what went wrong and return the exit code; re-raise only a bug under LADDER_DEBUG."""
    if isinstance(exc, NoArgsIsHelpError):
        typer.echo(exc.format_message())
        return 0
    if isinstance(exc, UsageError):
        say([usage_message(exc)])
        return 1
    if isinstance(exc, ClickException):
        say([one_line(exc.format_message())])
        return 1
    if isinstance(exc, typer.Abort):
        say(["aborted"])
        return 1
    if isinstance(exc, LadderError):
        say(messages(exc))
        return exc.exit_code
    if isinstance(exc, OSError) and exc.strerror:  # the machine's problem, not Ladder's
        where = f"{exc.filename}: " if exc.filename else ""
        say([one_line(f"{where}{exc.strerror}")])
        return 1
    if debug_enabled():
        raise exc
    what = one_line(str(exc))
    say(
        [
            f"unexpected {type(exc).__name__}{': ' + what if what else ''} - a bug in Ladder; "
            f"run again with {DEBUG_ENV}=1 for the traceback, and report it"
        ]
    )
    return 1


class LadderGroup(TyperGroup):
    """The ``ladder`` group: runs a command and ends any failure as described in this module."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except Exception as exc:  # the one place every failure ends
            code = exit_code_for(exc)
        if standalone_mode:
            sys.exit(code)
        return code

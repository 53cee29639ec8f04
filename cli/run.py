"""``ladder demo``, ``ladder escalate`` and ``ladder serve``: running the flows."""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cli import entrypoints
from cli.errors import debug_enabled
from ladder import progress
from ladder.errors import ConfigError
from ladder.sandbox.limits import MIN_USERS

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_STYLE = {
    "done": "green",
    "skipped": "yellow",
    "not_built": "dim",
    "unavailable": "magenta",
    "failed": "red",
}


#: Prefect settings for a terminal run, unless the user set them: no chatter, no analytics, and
#: a patient temporary server (without PREFECT_API_URL Prefect starts one; 20 s is short on a
#: busy laptop). The ``DO_NOT_TRACK`` variable, which Prefect's client reads from the environment
#: only, is the user's to set (the Makefile does).
_QUIET = {
    "logging.level": "WARNING",
    "server.ephemeral.startup_timeout_seconds": 120,
    "server.analytics_enabled": False,
}


@contextmanager
def quiet_prefect() -> Iterator[None]:
    """Prefect settings for a terminal run, for the duration of the ``with`` block only.

    They go into a Prefect settings context (``temporary_settings``), never into ``os.environ``,
    so nothing outlives the command; a value the user set in the environment or profile wins.
    """
    from prefect.settings import get_current_settings, temporary_settings

    current = get_current_settings()
    updates = {key: value for key, value in _QUIET.items() if not _user_set(current, key)}
    previous = logging.getLogger("prefect").level
    with temporary_settings(updates=updates):  # type: ignore[arg-type]
        if "logging.level" in updates:
            # Prefect configured its loggers when it was imported, before this context existed
            logging.getLogger("prefect").setLevel(updates["logging.level"])
        try:
            yield
        finally:
            logging.getLogger("prefect").setLevel(previous)


def _user_set(current: Any, dotted: str) -> bool:
    """Whether the user set Prefect's setting ``dotted`` (environment, .env or profile)."""
    section, _, name = dotted.rpartition(".")
    node = current
    for part in section.split(".") if section else ():
        node = getattr(node, part)
    return name in node.model_fields_set


def check_until(until: str | None) -> str | None:
    """``--until``, checked against the rung registry; a typo gets the closest rung suggested."""
    from ladder.rungs import rung_names

    names = rung_names()
    if until is None or until in names:
        return until
    close = difflib.get_close_matches(until, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"--until {until!r}: no such rung; {hint}the rungs are: {', '.join(names)}")


def load_incident(path: Path) -> Any:
    """The incident in a YAML or JSON file; errors say ``file:line: field: why``."""
    from ladder.incident import Incident
    from ladder.yamlfile import load_yaml, parse_model

    return parse_model(load_yaml(path), Incident)


def _print_progress(event: str, fields: dict[str, Any]) -> None:
    if event == "rung":
        r = fields["rung"]
        style = _STYLE.get(r.status, "white")
        text = r.summary or r.reason or ""
        out.print(f"  {r.number}. {r.name:<17} [{style}]{r.status:<11}[/{style}] {text}")
    elif event == "checkpoint":
        out.print(f"  … checkpoint before {fields['rung']}")


def _run_escalate(**parameters: Any) -> dict[str, Any]:
    flow = entrypoints.load_flow(entrypoints.ESCALATE)
    with _prefect_console_hushed():
        return flow(**parameters)


@contextmanager
def _prefect_console_hushed() -> Iterator[None]:
    """A flow run in this terminal prints Ladder's lines, not Prefect's: each rung, then the
    report or one `error:` line. Its full logs, tracebacks included, still reach the Prefect
    API (the UI shows them); LADDER_DEBUG=1 shows them here too. Only for the ``with`` block."""
    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    levels = [h.level for h in handlers]
    if not debug_enabled():
        for handler in handlers:
            handler.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


class _Customers:
    """While rung 5 climbs, the sandbox's customers use the shop (the incident's users, so the
    flagged one is among them): rung 5 then finds that user's debug lines in the logs."""

    def __init__(self, live: Any) -> None:
        self.live = live

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        if event == "checkpoint" and fields.get("rung") == "production_flags":
            self.live.start()
        elif event == "rung" and getattr(fields.get("rung"), "name", "") == "production_flags":
            self.live.stop()

    def stop(self) -> None:
        self.live.stop()


def _customers(info: Any) -> _Customers:
    from ladder.sandbox import shop
    from ladder.sandbox.customers import LiveCustomers

    url = str((shop.running(info.directory) or {}).get("url") or "")
    users = list(info.incident.params.get("user_ids") or [])[:3] if url else []
    return _Customers(LiveCustomers(url, users))


def demo(
    users: Annotated[
        int, typer.Option(min=MIN_USERS, help="users to seed in a new sandbox")
    ] = 5000,
    sandbox_dir: Annotated[Path | None, typer.Option("--dir", help="sandbox directory")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Run the whole ladder on the embedded sandbox, approvals given automatically."""
    from ladder import sandbox
    from ladder.leases import LeaseLedger

    say = err.print if as_json else out.print
    say("[bold]Ladder demo[/bold] — the checkout incident on the embedded sandbox")
    info = sandbox.up(sandbox_dir, users=users, progress=lambda m: say(f"  {m}"))
    from cli.sandbox import serve_shop

    why = serve_shop(info, lambda m: say(f"  {m}"))
    if why:
        say(f"  {why}: rung 4 will be unavailable")
    say(f"  incident [bold]{info.incident.id}[/bold]: {info.incident.title}")
    unsubscribe = None if as_json else progress.subscribe(_print_progress)
    customers = _customers(info)
    stop_customers = progress.subscribe(customers)
    try:
        with quiet_prefect():
            result = _run_escalate(
                runbook=str(entrypoints.runbook_path("demo.yaml")),
                approve_all=True,
                sandbox_dir=str(info.directory),
            )
    finally:
        stop_customers()
        customers.stop()
        if unsubscribe:
            unsubscribe()
    report = result["report"]
    left = [
        lease
        for lease in LeaseLedger().list(owner=report["flow_run_id"])
        if lease.state in ("pending", "active", "revert_failed")
    ]
    if as_json:
        typer.echo(json.dumps({**report, "report_path": result["report_path"]}, indent=2))
    else:
        if report.get("hold"):
            out.print(f"  hold: {report['hold']}")
        out.print(f"  report: {result['report_path']}")
        taken = len(report["leases"])
        out.print(
            f"  leases: {taken} taken, {taken - len(left)} reverted, "
            + ("[green]none left[/green]" if not left else f"[red]{len(left)} LEFT[/red]")
        )
        out.print(f"  sandbox: still running in {info.directory} (`ladder sandbox down` stops it)")
    if left:
        raise typer.Exit(1)


def escalate(
    runbook: Annotated[Path, typer.Argument(help="runbook YAML file")],
    incident: Annotated[
        Path | None, typer.Option(help="incident as a JSON or YAML file (optional on the sandbox)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="highest rung to climb")] = None,
    approve_all: Annotated[
        bool, typer.Option(help="approve every checkpoint (sandbox and tests only)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Climb a runbook's rungs for one incident, in this process.

    Checkpoints pause the run until someone answers in the Prefect UI (see `ladder serve`).
    """
    from ladder.config import load_runbook

    parameters: dict[str, Any] = {
        "runbook": str(runbook),
        "until": check_until(until),
        "approve_all": approve_all,
    }
    load_runbook(runbook)  # bad input ends here, with file:line, before a flow run starts
    if incident is not None:
        parameters["incident"] = load_incident(incident)
    unsubscribe = None if as_json else progress.subscribe(_print_progress)
    try:
        with quiet_prefect():
            result = _run_escalate(**parameters)
    finally:
        if unsubscribe:
            unsubscribe()
    if as_json:
        typer.echo(json.dumps(result["report"], indent=2))
    else:
        if result["report"].get("hold"):
            out.print(f"hold: {result['report']['hold']}")
        out.print(f"report: {result['report_path']}")

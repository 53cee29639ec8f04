"""``ladder sandbox up|down|status``: the self-contained shop to try the ladder on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli import entrypoints
from cli.errors import LadderGroup
from ladder import sandbox
from ladder.errors import SandboxError
from ladder.sandbox.limits import MIN_REQUESTS, MIN_USERS
from ladder.secrets import redact_dsn

app = typer.Typer(
    cls=LadderGroup, help="A throwaway shop (PostgreSQL + Rails logs) with an incident in it."
)
out = Console()
err = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Sandbox directory (default: $LADDER_SANDBOX_DIR, else sandbox/ in $LADDER_HOME).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the sandbox as JSON.")]


@app.command()
def up(
    directory: DirOption = None,
    users: Annotated[int, typer.Option(min=MIN_USERS, help="Customers to seed.")] = 5000,
    requests: Annotated[
        int | None, typer.Option(min=MIN_REQUESTS, help="Requests in the logs (default: 3000).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same data.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """Create the sandbox (or start the one that is there) and say what is in it."""
    info = sandbox.up(
        directory, users, requests, seed, progress=lambda m: err.print(f"[dim]{m}[/]")
    )
    why = serve_shop(info, lambda m: err.print(f"[dim]{m}[/]"))
    if why:
        err.print(f"[yellow]{why}: rung 4 (staging_trace) will be unavailable[/]")
    _show(sandbox.load(info.directory), as_json)


def serve_shop(info: sandbox.SandboxInfo, say: Callable[[str], None]) -> str | None:
    """Start the sandbox's staging app (the shop on Puma with rbtrace, staging filled with a
    sanitized copy of production first); why not, when the machine lacks a package."""
    from ladder.sandbox import shop

    return shop.serve(
        info.directory,
        info.production_dsn,
        info.staging_dsn,
        entrypoints.runbook_path("policies/shop.yaml"),
        info.pseudonym_key,
        say,
    )


@app.command()
def down(directory: DirOption = None) -> None:
    """Stop the sandbox's PostgreSQL and delete the sandbox."""
    target = directory or sandbox.default_dir()
    removed = sandbox.down(directory)
    out.print(f"removed the sandbox in {target}" if removed else f"no sandbox in {target}")


@app.command()
def status(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Show the sandbox; exit 1 when there is none."""
    target = directory or sandbox.default_dir()
    info = sandbox.status(directory)
    if info is None:
        raise SandboxError(f"no sandbox in {target}: run `ladder sandbox up`")
    _show(info, as_json)


def _show(info: sandbox.SandboxInfo, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(_as_dict(info)))
        return
    state = "[green]running[/]" if info.running else "[yellow]stopped[/]"
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("directory", str(info.directory))
    table.add_row("postgres", state)
    table.add_row("production", redact_dsn(info.production_dsn))
    table.add_row("staging", redact_dsn(info.staging_dsn))
    parts = sandbox.environment_parts(info)
    lacking = parts.get("sandbox_missing") or {}
    ssh, standby = parts.get("ssh"), parts.get("tunnel_db")
    table.add_row("sshd", f"{ssh.user}@{ssh.host}:{ssh.port} (rung 3's tunnel)" if ssh  # type: ignore[attr-defined]
                  else f"none (Debian package {lacking.get('ssh', 'openssh-server')})")  # fmt: skip
    table.add_row("standby", redact_dsn(standby.dsn) if standby  # type: ignore[attr-defined]
                  else f"none (Debian package {lacking.get('tunnel_db', 'postgresql-client')})")  # fmt: skip
    if info.shop and info.shop.get("url"):
        table.add_row("staging app", f"{info.shop['url']} (Puma with rbtrace)")
    elif info.shop:
        table.add_row("staging app", str(info.shop.get("unavailable")))
    sizes = ", ".join(f"{t} {n:,}" for t, n in info.sizes.items())
    table.add_row("rows", sizes or f"users {info.users:,}")
    for path in info.log_files:
        table.add_row("log", str(path))
    inc = info.incident
    table.add_row("incident", f"{inc.id}: {inc.title}")
    table.add_row("window", f"{inc.started_at:%Y-%m-%d %H:%M} to {inc.ended_at:%H:%M} UTC")
    table.add_row("customers", ", ".join(map(str, inc.params.get("user_ids", []))))
    out.print(table)


def _as_dict(info: sandbox.SandboxInfo) -> dict[str, object]:
    return {
        "directory": str(info.directory),
        "running": info.running,
        "production_dsn": info.production_dsn,
        "staging_dsn": info.staging_dsn,
        "log_files": [str(p) for p in info.log_files],
        "users": info.users,
        "sizes": info.sizes,
        "slow_user_id": info.slow_user_id,
        "shop": info.shop,
        "incident": info.incident.model_dump(mode="json"),
    }

"""``ladder replica create``: a sanitized copy of a database, subset or whole, swapped in atomically."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.errors import LadderGroup
from ladder.errors import ConfigError
from ladder.secrets import describe_server
from ladder.settings import settings

app = typer.Typer(
    cls=LadderGroup, help="Sanitized replicas of a production database.", no_args_is_help=True
)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; VALUE is JSON when it parses (``[1,2]``, ``42``), a list of integers
    when it is ``1,2,3``, else the string itself."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ConfigError(f"--param {pair!r}: expected NAME=VALUE, e.g. user_ids=[1,2,3]")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            parts = value.split(",")
            if len(parts) > 1 and all(p.strip().lstrip("-").isdigit() for p in parts):
                out[name.strip()] = [int(p) for p in parts]
            else:
                out[name.strip()] = value
    return out


def _distinct(source: str, target: str) -> None:
    """Refuse a target that is the source database: the copy would replace what it reads."""
    if describe_server(source) == describe_server(target):
        raise ConfigError(
            f"--source and --target name the same database ({describe_server(source)}): "
            "the replica would replace the data it is copied from"
        )


class _Bars:
    """Per-table progress bars: rows, rows/s and time left."""

    def __init__(self, console: Console):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>12}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.started: dict[str, float] = {}

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tasks:  # started on the first update: a failure before it prints nothing
            self.progress.stop()

    def __call__(self, table: str, done: int, total: int) -> None:
        if not self.tasks:
            self.progress.start()
        if table not in self.tasks:
            self.tasks[table] = self.progress.add_task(table, total=total, rate="")
            self.started[table] = time.monotonic()
        elapsed = max(time.monotonic() - self.started[table], 1e-6)
        self.progress.update(
            self.tasks[table], completed=done, total=total, rate=f"{done / elapsed:,.0f} rows/s"
        )


@app.command("create")
def create(
    source: Annotated[
        str | None,
        typer.Option("--source", help="source DSN (a read replica); env LADDER_SOURCE_DSN"),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="target DSN; its database is created or replaced; env LADDER_TARGET_DSN",
        ),
    ] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="sanitization policy YAML")] = None,
    seed: Annotated[
        list[str] | None,
        typer.Option("--seed", help="'TABLE: SQL condition' with :params (repeatable)"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="NAME=VALUE bound into the seeds (repeatable)"),
    ] = None,
    all_tables: Annotated[bool, typer.Option("--all", help="copy every table whole")] = False,
    schema: Annotated[
        list[str] | None,
        typer.Option(
            "--schema",
            help="schema of unqualified table names and of --all (repeatable; default public)",
        ),
    ] = None,
    child_depth: Annotated[int, typer.Option("--child-depth", help="levels of child rows")] = 2,
    keep_previous: Annotated[
        int, typer.Option("--keep-previous", help="previous copies to keep")
    ] = 0,
    statement_timeout: Annotated[
        float,
        typer.Option(
            "--statement-timeout",
            help="seconds each subset planning query may run on the source (0: no limit;"
            " --all has none)",
        ),
    ] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON summary")] = False,
) -> None:
    """Copy a sanitized subset (or --all) of SOURCE into TARGET, validated, swapped in atomically."""
    err = Console(stderr=True, highlight=False)
    if not policy:
        raise ConfigError("--policy is required: every copied column needs a rule")
    if not seed and not all_tables:
        raise ConfigError("give at least one --seed 'TABLE: condition', or --all")
    found = settings()
    source_dsn = found.dsn("source", source, "--source")
    target_dsn = found.dsn("target", target, "--target")
    _distinct(source_dsn, target_dsn)
    params = parse_params(param or [])
    from ladder.replica.pipeline import create_replica

    out = err if as_json else Console(highlight=False)
    bars = _Bars(err)
    with bars:
        result = create_replica(
            source_dsn,
            target_dsn,
            policy,
            seeds=seed or [],
            params=params,
            all_tables=all_tables,
            child_depth=child_depth,
            keep_previous=keep_previous,
            statement_timeout=statement_timeout,
            schemas=schema or ["public"],
            progress=bars,
            plan_printer=lambda text: out.print(text, soft_wrap=True, markup=False),
        )
    summary = {
        "target": result.target,
        "tables": result.tables,
        "seconds": round(result.seconds, 3),
        "rows_per_s": round(result.rows_per_s),
        "table_seconds": {t: round(s, 3) for t, s in result.table_seconds.items()},
        "step_seconds": result.step_seconds,
        "validation": {
            "passed": result.validation.passed,
            "checks": len(result.validation.checks),
            "failed": [c.model_dump() for c in result.validation.failed],
        },
        "lease_ids": result.lease_ids,
        "previous": result.previous,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    total = sum(result.tables.values())
    Console(highlight=False).print(
        f"replica ready: {result.target} - {total:,} rows in {result.seconds:.1f} s "
        f"({result.rows_per_s:,.0f} rows/s); validation passed "
        f"({len(result.validation.checks)} checks)",
        soft_wrap=True,
    )

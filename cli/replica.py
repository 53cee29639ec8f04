"""``ladder replica create``: a sanitized copy of a database, subset or whole, swapped in atomically."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console

from cli.errors import LadderGroup
from ladder.errors import ConfigError
from ladder.settings import settings

app = typer.Typer(
    cls=LadderGroup, help="Sanitized replicas of a production database.", no_args_is_help=True
)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs. VALUE is JSON when it parses (``[1,2]``, ``42``, ``"x"``), a list of
    integers when it is ``1,2,3``, else the string itself. A NAME given again adds its values to a
    list (``--param ids=1 --param ids=2`` is ``[1, 2]``). One value used in ``ANY(:ids)`` is bound
    as a one-element array by the seed (see ``ladder.replica.subset.seeds``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(f"--param {pair!r}: expected NAME=VALUE, e.g. user_ids=1,2,3")
        parsed: Any
        try:
            parsed = json.loads(value)
        except ValueError:
            parts = value.split(",")
            if len(parts) > 1 and all(p.strip().lstrip("-").isdigit() for p in parts):
                parsed = [int(p) for p in parts]
            else:
                parsed = value
        if name in out:
            before = out[name] if isinstance(out[name], list) else [out[name]]
            parsed = [*before, *(parsed if isinstance(parsed, list) else [parsed])]
        out[name] = parsed
    return out


def sandbox_key(source_dsn: str) -> tuple[SecretStr, str] | None:
    """The sandbox's pseudonymization key and where it lives, when ``source_dsn`` is the sandbox's
    production database (compared by what the servers say); else None."""
    from psycopg.conninfo import conninfo_to_dict

    from ladder import sandbox
    from ladder.errors import SandboxError
    from ladder.replica.guard import same_database

    try:
        info = sandbox.status()
    except SandboxError:  # a damaged sandbox is not this copy's business
        return None
    if info is None or not info.running:
        return None
    mine, theirs = conninfo_to_dict(source_dsn), conninfo_to_dict(info.production_dsn)
    if str(mine.get("port") or 5432) != str(theirs.get("port") or 5432):
        return None  # not the sandbox's server: no need to ask it
    if not same_database(source_dsn, info.production_dsn):
        return None
    return SecretStr(info.pseudonym_key), str(info.directory / sandbox.KEY_FILE)


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
            help="target DSN; its database is created, or replaced when Ladder made it (see"
            " --replace); never the source's; env LADDER_TARGET_DSN",
        ),
    ] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="sanitization policy YAML")] = None,
    seed: Annotated[
        list[str] | None,
        typer.Option("--seed", help="'TABLE: SQL condition' with :params (repeatable)"),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="NAME=VALUE bound into the seeds as :NAME (repeatable). One value or many:"
            " user_ids=877, user_ids=1,2,3, user_ids='[1,2]', or --param user_ids=1 --param"
            " user_ids=2; ANY(:user_ids) takes any of them. Strings as they are, or JSON",
        ),
    ] = None,
    whole: Annotated[
        list[str] | None,
        typer.Option("--whole", help="copy this table whole, e.g. a lookup table (repeatable)"),
    ] = None,
    all_tables: Annotated[bool, typer.Option("--all", help="copy every table whole")] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="replace a target database that exists and Ladder did not make (needed once)",
        ),
    ] = False,
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
    params = parse_params(param or [])
    from ladder.replica.guard import refuse_same_text
    from ladder.replica.pipeline import create_replica

    refuse_same_text(source_dsn, target_dsn)  # before anything is said or asked of a server
    out = err if as_json else Console(highlight=False)
    key = sandbox_key(source_dsn)
    if key is not None:
        out.print(f"using the sandbox's pseudonymization key ({key[1]})", soft_wrap=True)
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
            whole_tables=whole or [],
            key=key[0] if key else None,
            replace=replace,
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

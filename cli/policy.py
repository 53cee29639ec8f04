"""``ladder policy check|suggest``: hold a sanitization policy against a live source database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cli.errors import LadderGroup
from ladder.errors import ConfigError
from ladder.settings import settings

app = typer.Typer(
    cls=LadderGroup, help="Check or draft sanitization policies.", no_args_is_help=True
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="source PostgreSQL DSN (better: the LADDER_SOURCE_DSN variable, so no password "
        "shows in ps)",
    ),
]
SchemaOpt = Annotated[
    list[str] | None, typer.Option("--schema", help="schema to read (repeatable; default public)")
]
TableOpt = Annotated[
    list[str] | None, typer.Option("--table", help="copy only this table (repeatable)")
]


@app.command("check")
def check(
    policy_file: Annotated[Path, typer.Option("--policy", help="policy YAML file")],
    source: SourceOpt = None,
    table: TableOpt = None,
    schema: SchemaOpt = None,
    strict: Annotated[bool, typer.Option(help="treat warnings as errors")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print findings as JSON")] = False,
) -> None:
    """Fail closed: every column of every copied table needs a policy entry. Exit 1 on errors."""
    from ladder.connectors import pg_catalog as catalog
    from ladder.connectors.postgres import connect
    from ladder.sanitize.policy import check_policy, errors, load_policy

    source = settings().dsn("source", source, "--source")
    policy = load_policy(policy_file)
    named = [*policy.rules(), *(catalog.qualify(t) for t in table or [])]
    schemas = sorted({*(schema or ["public"]), *(t.split(".")[0] for t in named)})
    with connect(source) as conn:
        tables = catalog.list_tables(conn, schemas)
        cols = catalog.columns(conn, tables)
    findings = check_policy(policy, cols, table if table else None)
    failed = bool(errors(findings, strict=strict))
    if as_json:
        payload = {"ok": not failed, "findings": [f.to_dict() for f in findings]}
        typer.echo(json.dumps(payload, indent=2))
    else:
        for f in findings:
            colour = "red" if f.severity == "error" else "yellow"
            where = f"{f.location}: " if f.location else ""
            text = escape(f"{where}{f.message} [{f.code}]")  # a finding's [code] is not markup
            err.print(f"[{colour}]{f.severity}:[/{colour}] {text}")
        n_err = sum(f.severity == "error" for f in findings)
        summary = f"{n_err} errors, {len(findings) - n_err} warnings"
        typer.echo(f"{policy_file}: {'FAILED' if failed else 'ok'} ({summary})")
    raise typer.Exit(1 if failed else 0)


@app.command("suggest")
def suggest(
    source: SourceOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here (default: stdout)")
    ] = None,
    table: TableOpt = None,
    schema: SchemaOpt = None,
    sample: Annotated[int, typer.Option(min=0, help="rows sampled per table")] = 200,
    force: Annotated[bool, typer.Option(help="overwrite an existing --output file")] = False,
) -> None:
    """Draft a policy from column names, types and sampled values (never written to the file)."""
    from ladder.connectors import pg_catalog as catalog
    from ladder.connectors.postgres import connect
    from ladder.sanitize.suggest import guess_rule, render_policy
    from ladder.secrets import redact_dsn

    if output is not None and output.exists() and not force:
        raise ConfigError(f"--output {output} exists: pass --force to overwrite it")
    source = settings().dsn("source", source, "--source")
    with connect(source) as conn:
        tables = (
            [catalog.qualify(t) for t in table]
            if table
            else catalog.list_tables(conn, schema or ["public"])
        )
        cols = catalog.columns(conn, tables)
        missing = [t for t in tables if t not in cols]
        if missing:
            raise ConfigError(f"--table: no such table: {', '.join(missing)}")
        guesses = {}
        for tbl in tables:
            names = [c.name for c in cols[tbl]]
            samples = catalog.sample_values(conn, tbl, names, sample) if sample else {}
            guesses[tbl] = [
                (c.name, *guess_rule(tbl, c, samples.get(c.name, []))) for c in cols[tbl]
            ]
    text = render_policy(
        guesses,
        header=[
            f"Draft sanitization policy from `ladder policy suggest` ({redact_dsn(source)}).",
            f"Guessed from column names, types and up to {sample} sampled rows per table;",
            "no sampled value is written here. Review every line, then run `ladder policy check`.",
        ],
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    n_cols = sum(len(v) for v in guesses.values())
    err.print(f"wrote {output}: {len(guesses)} tables, {n_cols} columns")

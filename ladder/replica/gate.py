"""The validation gate: great-expectations judges a loaded replica before it is swapped in.

Ladder measures, GX judges. Each check yields a number of failing rows for one column (or
table, or foreign key); the numbers form a one-row frame, one frame column per check, and the
GX suite expects every one of them to be 0. Measuring in Arrow/SQL keeps the gate fast (GX's
own set-membership expectation is ~300x slower at 1M values, see FACTS.md).

Checks:

* ``no_original_survives`` - per row, the value of a transformed column differs from the
  original in the same row (counted while the data streamed, for every row);
* ``email_on_reserved_domain`` - every value of an ``email`` column is an address on a reserved
  domain (SQL, every row);
* ``no_email_outside_reserved`` / ``no_card_number`` / ``no_phone_number`` /
  ``no_national_id`` / ``no_iban`` / ``no_ip_address`` / ``no_token`` - in every column
  scrubbed as ``text``/``json`` and every kept column of type text/json/jsonb (sampled: the
  first ``sample_rows`` rows that may hold one, ``MAY_HOLD_PII_GUARD``). What each looks like
  comes from :mod:`ladder.sanitize.patterns` (``PII_CHECKS``), the scrubber's own definitions;
* ``no_known_value`` - in the same columns, no original value of a transformed column of the
  copy is left (:mod:`ladder.sanitize.known`, sampled: the first ``sample_rows`` rows);
* ``foreign_key_resolves`` - no child row points at a missing parent (SQL anti-join);
* ``row_count_matches_plan`` - the table holds exactly the rows the plan selected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from pydantic import BaseModel

from ladder.connectors.postgres import connect
from ladder.errors import ValidationGateError
from ladder.replica.subset.graph import ForeignKey
from ladder.sanitize.detect import count_pii
from ladder.sanitize.known import KnownValues
from ladder.sanitize.patterns import MAY_HOLD_PII_GUARD, RESERVED_EMAIL_SQL
from ladder.sanitize.vectorized import re2_guard

_MAY_HOLD_PII = re2_guard(MAY_HOLD_PII_GUARD)

SCRUBBED = frozenset({"text", "json"})
FREE_TEXT_TYPES = ("text", "json", "jsonb")
SAMPLE_ROWS = 50_000
_BATCH = 20_000  # rows per fetch of the sample


@dataclass(frozen=True)
class GateColumn:
    """A copied column as the gate sees it: its transformer and SQL type."""

    table: str  # schema.relname
    column: str
    transformer: str
    sql_type: str


class GateCheck(BaseModel):
    check: str
    table: str
    column: str
    failures: int
    checked: int
    sampled: bool = False
    passed: bool = True


class ValidationResult(BaseModel):
    """The gate's outcome: one row per check (publishable as a table artifact)."""

    passed: bool
    checks: list[GateCheck]

    @property
    def failed(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]

    def rows(self) -> list[dict[str, Any]]:
        return [c.model_dump() for c in self.checks]

    def message(self) -> str:
        return "; ".join(
            f"expectation {c.check} failed on {c.table}{'.' + c.column if c.column else ''}: "
            f"{c.failures:,} of {c.checked:,} rows{' (sampled)' if c.sampled else ''}"
            for c in self.failed
        )


@dataclass
class RowMeasures:
    """The checks measured on the rows of a loaded database, and each table's row count."""

    checks: list[GateCheck]
    counts: dict[str, int]


def run_gate(
    target_dsn: str,
    columns: Sequence[GateColumn],
    fks: Sequence[ForeignKey],
    expected_rows: Mapping[str, int],
    survivors: Mapping[str, Mapping[str, int]],
    *,
    sample_rows: int = SAMPLE_ROWS,
    known: KnownValues | None = None,
) -> ValidationResult:
    """Measure every check on the loaded database ``target_dsn`` and let GX judge them.

    Returns the result whether it passed or not; :func:`enforce` turns a failure into an error.
    """
    rows = measure_rows(
        target_dsn, columns, expected_rows, survivors, sample_rows=sample_rows, known=known
    )
    return judge(rows.checks + measure_foreign_keys(target_dsn, fks, rows.counts))


def measure_rows(
    target_dsn: str,
    columns: Sequence[GateColumn],
    expected_rows: Mapping[str, int],
    survivors: Mapping[str, Mapping[str, int]],
    *,
    sample_rows: int = SAMPLE_ROWS,
    known: KnownValues | None = None,
) -> RowMeasures:
    """Every check but the foreign keys: survivors, row counts, emails and free text.

    It reads only rows, so it may run while indexes and constraints are still being built.
    """
    checks: list[GateCheck] = []
    for table, cols in survivors.items():
        for column, n in cols.items():
            checks.append(
                GateCheck(
                    check="no_original_survives",
                    table=table,
                    column=column,
                    failures=n,
                    checked=expected_rows.get(table, 0),
                )
            )
    with connect(target_dsn, autocommit=True) as conn:
        counts = {t: _count(conn, t) for t in expected_rows}
        for table, expected in expected_rows.items():
            checks.append(
                GateCheck(
                    check="row_count_matches_plan",
                    table=table,
                    column="",
                    failures=abs(counts[table] - expected),
                    checked=expected,
                )
            )
        for col in columns:
            if col.transformer == "email":
                checks.append(_reserved_emails(conn, col, counts[col.table]))
            if col.transformer in SCRUBBED or (
                col.transformer == "keep" and col.sql_type in FREE_TEXT_TYPES
            ):
                checks.extend(_free_text(conn, col, sample_rows, known))
    return RowMeasures(checks, counts)


def measure_foreign_keys(
    target_dsn: str, fks: Sequence[ForeignKey], counts: Mapping[str, int]
) -> list[GateCheck]:
    """One ``foreign_key_resolves`` check per foreign key, once the constraints are built."""
    with connect(target_dsn, autocommit=True) as conn:
        enforced = _validated_constraints(conn)
        return [
            _enforced(fk, counts.get(fk.child, 0))
            if (fk.child, fk.name) in enforced
            else _orphans(conn, fk, counts.get(fk.child, 0))
            for fk in fks
        ]


def enforce(result: ValidationResult) -> ValidationResult:
    """``result`` when it passed, else :class:`ValidationGateError` naming each failed check."""
    if not result.passed:
        err = ValidationGateError(
            f"validation gate failed, nothing was committed: {result.message()}"
        )
        err.result = result  # type: ignore[attr-defined]
        raise err
    return result


def judge(checks: list[GateCheck]) -> ValidationResult:
    """Run the GX suite over the measured checks; marks each check passed or failed.

    The frame has one row per checked column (or table, or foreign key) and one column per
    check; each check is one GX expectation ("every value is 0"; NaN where it does not apply).
    """
    import pandas as pd

    if not checks:
        return ValidationResult(passed=True, checks=[])
    targets = sorted({_target(c) for c in checks})
    kinds = sorted({c.check for c in checks})
    frame = pd.DataFrame(index=pd.Index(targets, name="target"), columns=kinds, dtype="float64")
    for c in checks:
        frame.loc[_target(c), c.check] = c.failures
    outcome = _gx_validate(frame.reset_index(), kinds)
    for c in checks:
        # GX judged the check kind; the measured number says which column failed it.
        c.passed = outcome[c.check] or c.failures == 0
    return ValidationResult(passed=all(outcome.values()), checks=checks)


def _target(c: GateCheck) -> str:
    return f"{c.table}.{c.column}" if c.column else c.table


def _gx_validate(frame: Any, kinds: list[str]) -> dict[str, bool]:
    import logging

    import great_expectations as gx  # 4-6 s to import: only when a gate runs
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets INFO on some of its own loggers; a gate's chatter is not the user's business
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("ladder-replica")
        .add_dataframe_asset("gate-measurements")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="replica-gate"))
    for kind in kinds:
        suite.add_expectation(
            gx.expectations.ExpectColumnValuesToBeBetween(column=kind, min_value=0, max_value=0)
        )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="replica-gate", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame})
    return {r.expectation_config.kwargs["column"]: bool(r.success) for r in result.results}


def _ident(table: str) -> sql.Identifier:
    schema, _, name = table.partition(".")
    return sql.Identifier(schema, name)


def _count(conn: psycopg.Connection, table: str) -> int:
    """Rows of ``table`` itself: an inheritance parent's without its children's (they are
    tables of the copy too), a partitioned table's with its partitions' (it has no others)."""
    kind = conn.execute(
        "SELECT relkind FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass(%s)",
        [_ident(table).as_string(conn)],
    ).fetchone()
    only = sql.SQL("" if kind and kind[0] == "p" else "ONLY ")
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}{}").format(only, _ident(table))).fetchone()
    return int(row[0]) if row else 0


def _reserved_emails(conn: psycopg.Connection, col: GateColumn, rows: int) -> GateCheck:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} IS NOT NULL AND lower({}::text) !~ %s").format(
            _ident(col.table), sql.Identifier(col.column), sql.Identifier(col.column)
        ),
        [RESERVED_EMAIL_SQL],
    ).fetchone()
    return GateCheck(
        check="email_on_reserved_domain",
        table=col.table,
        column=col.column,
        failures=int(row[0]) if row else 0,
        checked=rows,
    )


def _suspects(
    conn: psycopg.Connection, col: GateColumn, limit: int, every: bool
) -> tuple[pa.Array, bool]:
    """Up to ``limit`` values of the column that may hold PII (``every``: any value), read in
    batches from a server-side cursor and told apart by RE2 (PostgreSQL's regex engine took
    ~1.5 s per 200k rows); and whether the limit cut the sample short."""
    query = sql.SQL("SELECT {}::text FROM {} WHERE {} IS NOT NULL").format(
        sql.Identifier(col.column), _ident(col.table), sql.Identifier(col.column)
    )
    found: list[pa.Array] = []
    held = 0
    with conn.transaction(), conn.cursor(name="ladder_gate_sample") as cur:
        cur.execute(query)
        while held < limit and (rows := cur.fetchmany(_BATCH)):
            batch = pa.array([r[0] for r in rows], type=pa.string())
            if not every:
                batch = batch.filter(pc.match_substring_regex(batch, _MAY_HOLD_PII))
            found.append(batch[: limit - held])
            held += len(found[-1])
    values = pa.concat_arrays(found) if found else pa.array([], type=pa.string())
    return values, held >= limit


def _free_text(
    conn: psycopg.Connection, col: GateColumn, limit: int, known: KnownValues | None
) -> list[GateCheck]:
    # A known name needs no digit or @: with known values, the sample is every row (up to the
    # limit); the pattern checks' own RE2 guards pick the rows each one must look at.
    with_known = known is not None and len(known) > 0
    values, sampled = _suspects(conn, col, limit, every=with_known)
    counts = count_pii(values)
    if with_known:
        assert known is not None
        counts["no_known_value"] = known.count_survivors(values)
    return [
        GateCheck(
            check=name, table=col.table, column=col.column, checked=len(values), sampled=sampled,
            failures=n,
        )
        for name, n in counts.items()
    ]  # fmt: skip


def _validated_constraints(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """(schema.table, constraint) of every foreign key PostgreSQL has validated in this database.

    A validated constraint is PostgreSQL's own proof that no row is orphaned, so the gate needs
    no anti-join for it (that would scan both tables again right after the constraint did).
    """
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, con.conname FROM pg_constraint con "
        "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE con.contype = 'f' AND con.convalidated"
    ).fetchall()
    return {(table, name) for table, name in rows}


def _enforced(fk: ForeignKey, rows: int) -> GateCheck:
    return GateCheck(
        check="foreign_key_resolves",
        table=fk.child,
        column=",".join(fk.child_columns) + f" -> {fk.parent} (validated constraint)",
        failures=0,
        checked=rows,
    )


def _orphans(conn: psycopg.Connection, fk: ForeignKey, rows: int) -> GateCheck:
    child_cols = [sql.Identifier("c", n) for n in fk.child_columns]
    match = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("p", p), sql.Identifier("c", ch))
        for p, ch in zip(fk.parent_columns, fk.child_columns, strict=True)
    )
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(c) for c in child_cols)
    query = sql.SQL(
        "SELECT count(*) FROM {child} AS c WHERE {not_null} AND NOT EXISTS "
        "(SELECT 1 FROM {parent} AS p WHERE {match})"
    ).format(child=_ident(fk.child), parent=_ident(fk.parent), not_null=not_null, match=match)
    row = conn.execute(query).fetchone()
    return GateCheck(
        check="foreign_key_resolves",
        table=fk.child,
        column=",".join(fk.child_columns) + f" -> {fk.parent}",
        failures=int(row[0]) if row else 0,
        checked=rows,
    )

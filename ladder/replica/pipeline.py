"""A sanitized replica of a production database: plan, check, copy, validate, swap.

::

    result = create_replica(source_dsn, "host=... dbname=shop_dev", "runbooks/policies/shop.yaml",
                            seeds=["users: id = ANY(:user_ids)"], params={"user_ids": [42]})

One job per step, in this order, and nothing reaches the target before the last one:

1. the subset plan (FK closure, or every table whole with ``all_tables``) computed in one
   exported snapshot of the source, and handed to ``plan_printer``;
2. the policy checked against the catalog for exactly the copied tables: any missing or stale
   entry raises :class:`PolicyError` before a database exists (fail closed);
3. a new database ``<target>__ladder_<id>``, leased (``postgres_database``) *before* it is
   created, so the janitor drops it if this process dies;
4. the source's schema from ``pg_dump --schema-only`` (pre-data: every table, the copied ones
   and the rest left empty, with the types, extensions and functions they use), rows by COPY
   streams with PII transformed
   (:mod:`ladder.replica.copy`), then indexes and constraints (post-data), sequences and materialized
   views (refreshed from the sanitized rows);
5. the great-expectations gate (:mod:`ladder.replica.gate`): its row checks run while step 4 builds
   the indexes, its foreign-key checks after; a failure drops the new database;
6. the atomic swap into the target's name (:mod:`ladder.replica.swap`), keeping ``keep_previous`` copies.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from ladder.connectors import pg_catalog as catalog
from ladder.connectors.postgres import connect, with_dbname
from ladder.errors import ConfigError, PolicyError
from ladder.leases import LeaseLedger
from ladder.replica.copy import Progress, TableCopy, copy_tables
from ladder.replica.gate import (
    GateColumn,
    enforce,
    judge,
    measure_foreign_keys,
    measure_rows,
)
from ladder.replica.guard import check_target, create_marked, read_only_dsn, refuse_same_text
from ladder.replica.known_values import add_known_values
from ladder.replica.result import ReplicaResult
from ladder.replica.schema import (
    dump_schema,
    refresh_materialized_views,
    restore_list,
    restore_section,
    set_sequences,
)
from ladder.replica.subset import build_plan, execute_plan
from ladder.replica.subset.graph import ForeignKey
from ladder.replica.subset.virtual import VirtualReference
from ladder.replica.swap import new_database_name, swap, target_dbname
from ladder.sanitize.policy import Policy, check_policy, load_policy, raise_for_errors
from ladder.secrets import describe_server, redact_dsn
from ladder.settings import settings

PlanPrinter = Callable[[str], None]
SCHEMAS = ("public",)  # where unqualified table names are looked up, and what --all copies
DEFAULT_STATEMENT_TIMEOUT = 300.0  # seconds, for each subset planning query on the source


def default_owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}"


def create_replica(
    source_dsn: str,
    target_dsn: str,
    policy: Policy | str | Path,
    *,
    seeds: Sequence[str] = (),
    params: Mapping[str, object] | None = None,
    all_tables: bool = False,
    child_depth: int = 2,
    caps: Mapping[str, int] | None = None,
    whole_tables: Sequence[str] = (),
    keep_previous: int = 0,
    owner: str | None = None,
    ttl: timedelta = timedelta(hours=4),
    progress: Progress | None = None,
    plan_printer: PlanPrinter | None = None,
    ledger: LeaseLedger | None = None,
    workers: int = 2,
    server_ref: str | dict[str, str] | None = None,
    statement_timeout: float | None = DEFAULT_STATEMENT_TIMEOUT,
    schemas: Sequence[str] = SCHEMAS,
    key: SecretStr | None = None,
    virtual_references: Sequence[VirtualReference] = (),
    replace: bool = False,
) -> ReplicaResult:
    """Copy a sanitized subset (or, with ``all_tables``, everything) of ``source_dsn`` into the
    database ``target_dsn`` names, replacing it atomically if it exists.

    ``server_ref`` is how the lease's undo reaches the target server (a password-free DSN or
    ``{"env": NAME}``); by default the target DSN without its password. ``statement_timeout``
    (seconds; None or 0: none) bounds each planning query of a subset on the source (catalog,
    seeds, foreign keys, counts), so a seed condition that scans a huge production table is
    cancelled instead of holding a snapshot open for hours. With ``all_tables`` it does not
    apply (counting whole tables takes as long as they are big), nor to the COPY streams.
    ``schemas``: where unqualified table names are looked up and what ``all_tables`` copies;
    a qualified name (``app.badges``) and foreign keys reach any schema. ``key``: the
    pseudonymization key to use instead of the one the policy's ``key`` reference names (the
    sandbox's own key comes this way, as data, never through the environment). ``replace``:
    replace a target database Ladder did not make (see :mod:`ladder.replica.guard`, which
    also refuses a target that is the source; the source is read with read-only sessions).
    ``virtual_references`` (with the policy's) are followed like foreign keys.
    """
    if statement_timeout is not None and statement_timeout < 0:
        raise ConfigError(
            f"the statement timeout must be 0 (none) or more seconds, not {statement_timeout}"
        )
    refuse_same_text(source_dsn, target_dsn)  # before anything else: a plain mistake, said first
    started = time.perf_counter()
    clock = _StepClock()
    if not all_tables:
        _prewarm_gate()  # a subset: the source's plan queries are the longest wait
    policy = load_policy(policy) if isinstance(policy, str | Path) else policy
    key_bytes = policy.key_bytes(key)
    target = target_dbname(target_dsn)
    owner = owner or default_owner()
    ledger = ledger or LeaseLedger()
    ref = server_ref or lease_server(target_dsn)
    source_dsn = read_only_dsn(source_dsn)  # every session on the source: psycopg, psql, pg_dump
    with (
        connect(source_dsn, autocommit=True) as src,
        tempfile.TemporaryDirectory(prefix="ladder-replica-") as tmp,
    ):
        found = check_target(source_dsn, target_dsn, target, replace=replace, source_conn=src)
        if plan_printer:
            plan_printer(f"source and target told apart by the servers: {found.source.method}")
        _limit_statements(src, None if all_tables else statement_timeout)
        plan = build_plan(
            src,
            list(seeds),
            schemas=list(schemas),
            depth=child_depth,
            caps=dict(caps or {}),
            whole_tables=list(whole_tables),
            all_tables=all_tables,
            params=dict(params or {}),
            virtual_references=[*policy.virtual_references, *virtual_references],
        )
        columns = _check_policy(src, policy, plan.order, plan_printer)
        with execute_plan(src, plan, dict(params or {})) as subset:
            if plan_printer:
                plan_printer(subset.render())
            clock.lap("plan")
            dump = dump_schema(source_dsn, subset.snapshot_id, Path(tmp) / "schema.dump")
            new = new_database_name(target)
            lease = ledger.take(
                "postgres_database",
                f"{new} on {_server_label(target_dsn)}",
                owner=owner,
                ttl=ttl,
                undo={"server": ref, "dbname": new},
                description=f"replica being loaded for {target}",
            )
            try:
                create_marked(target_dsn, new, f"copy of {describe_server(source_dsn)}")
                ledger.activate(lease.id)
                new_dsn = with_dbname(target_dsn, new)
                entries = Path(tmp) / "schema.list"
                warnings = [
                    f"warning: extension {name} is not available on the target server:"
                    " left out (what needs it will fail, naming it)"
                    for name in restore_list(new_dsn, dump, entries)
                ]
                for line in warnings:
                    if plan_printer:
                        plan_printer(line)
                restore_section(new_dsn, dump, "pre-data", entries=entries)
                clock.lap("schema")
                copies = [
                    _table_copy(subset, plan.table(t).table, columns[t], policy) for t in plan.order
                ]
                copies, known = add_known_values(source_dsn, subset.snapshot_id, copies, key_bytes)
                copy_started = time.perf_counter()
                stats = copy_tables(
                    source_dsn,
                    subset.snapshot_id,
                    new_dsn,
                    copies,
                    key_bytes,
                    workers=workers,
                    progress=progress,
                )
                copy_seconds = time.perf_counter() - copy_started
                clock.lap("copy")
                counts = dict(subset.counts)
                description = subset.describe()
            except BaseException:
                ledger.revert(lease.id)
                raise
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate") as gate:
                # The row checks overlap the index builds (run by pg_restore).
                if all_tables:
                    _prewarm_gate()  # not before: it would slow the copy and add to its memory
                row_checks = gate.submit(
                    measure_rows,
                    new_dsn,
                    _gate_columns(columns, policy),
                    counts,
                    {t: s.survivors for t, s in stats.items() if s.survivors},
                    known=known,
                )
                restore_section(new_dsn, dump, "post-data", jobs=workers, entries=entries)
                set_sequences(new_dsn)
                refresh_materialized_views(new_dsn)
                clock.lap("post_data")
                measured = row_checks.result()
            fk_checks = measure_foreign_keys(new_dsn, _gate_fks(plan), measured.counts)
            result = judge(measured.checks + fk_checks)
            clock.lap("gate")
            enforce(result)
            previous = swap(target_dsn, new, target, keep_previous, replace=replace)
            clock.lap("swap")
        except BaseException:
            ledger.revert(lease.id)
            raise
    ledger.revert(lease.id)  # the name it drops is gone: recorded as done
    seconds = time.perf_counter() - started
    rows = {t: stats[t].rows for t in plan.order}
    return ReplicaResult(
        target=redact_dsn(target_dsn),
        database=target,
        tables=rows,
        table_seconds={t: stats[t].seconds for t in plan.order},
        seconds=seconds,
        copy_seconds=copy_seconds,
        step_seconds=clock.laps,
        rows_per_s=sum(rows.values()) / seconds if seconds else 0.0,
        validation=result,
        lease_ids=[lease.id],
        previous=previous,
        plan=description,
        warnings=warnings,
    )


def _prewarm_gate() -> None:
    """Import great-expectations (~3 s of CPU, ~150 MB) in a background thread, for the gate.

    Started while this process mostly waits: on a subset's plan queries (half the run of a
    small subset otherwise), on the index builds of a whole copy. A failed import is reported
    by the gate, which imports it again.
    """

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module("great_expectations")

    threading.Thread(target=load, name="gx-import", daemon=True).start()


def _limit_statements(conn: Any, seconds: float | None) -> None:
    """``statement_timeout`` for the rest of this session (``seconds`` None or 0: no limit)."""
    millis = round(seconds * 1000) if seconds else 0
    conn.execute("SELECT pg_catalog.set_config('statement_timeout', %s, false)", [str(millis)])


class _StepClock:
    """Seconds spent in each named step, measured from the end of the previous one."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _check_policy(
    src: Any, policy: Policy, tables: list[str], printer: PlanPrinter | None
) -> dict[str, list[catalog.Column]]:
    """Catalog columns of the copied tables; :class:`PolicyError` lists every uncovered column.

    The catalog read covers every schema a copied table or a policy entry is in, so an entry
    for a table that no longer exists is found wherever it was.
    """
    named = [*tables, *(catalog.qualify(t) for t in policy.rules())]
    schemas = sorted({*SCHEMAS, *(catalog.split(t)[0] for t in named)})
    every = catalog.columns(src, catalog.list_tables(src, schemas))
    findings = check_policy(policy, every, tables)
    raise_for_errors(findings)
    for finding in findings:  # only warnings are left: say them with the plan
        if printer:
            printer(str(finding))
    missing = [t for t in tables if t not in every]
    if missing:
        raise PolicyError([f"{t}: the table has no columns the copy can read" for t in missing])
    return {t: every[t] for t in tables}


def _table_copy(subset: Any, table: Any, cols: list[catalog.Column], policy: Policy) -> TableCopy:
    transforms = {}
    types = {}
    survival = set()
    for col in cols:
        rule = policy.rule(table.name, col.name)
        assert rule is not None  # check_policy made sure
        if rule.transformer == "keep":
            continue
        t = rule.build(unique=col.is_unique)
        transforms[col.name] = t
        types[col.name] = col.type
        if t.keyed and t.replaces_pii:
            survival.add(col.name)
    names = tuple(c.name for c in cols)
    return TableCopy(
        name=table.name,
        schema=table.schema,
        relname=table.relname,
        columns=names,
        query=subset.copy_query(table.name, list(names)),
        transforms=transforms,
        survival=frozenset(survival),
        types=types,
        expected_rows=int(subset.counts.get(table.name, 0)),
        partitioned=table.partitioned,
    )


def _gate_columns(columns: Mapping[str, list[catalog.Column]], policy: Policy) -> list[GateColumn]:
    out = []
    for table, cols in columns.items():
        for col in cols:
            rule = policy.rule(table, col.name)
            assert rule is not None
            out.append(GateColumn(table, col.name, rule.transformer, col.type))
    return out


def _gate_fks(plan: Any) -> list[ForeignKey]:
    inside = set(plan.order)
    return [fk for fk in plan.graph.fks if {fk.child, fk.parent} <= inside and not fk.virtual]


def _server_label(dsn: str) -> str:
    p = conninfo_to_dict(dsn)
    return f"{p.get('host') or 'localhost'}:{p.get('port') or 5432}"


def lease_server(target_dsn: str) -> str | dict[str, str]:
    """How the janitor reaches the target server: the DSN without its password, or the
    ``LADDER_TARGET_DSN`` variable when the DSN came from there (passwords never hit the ledger)."""
    params = conninfo_to_dict(target_dsn)
    if "password" not in params:
        return make_conninfo(**{**params, "dbname": "postgres"})
    env = settings().target_dsn
    if env and conninfo_to_dict(env.get_secret_value()).get("password") == params["password"]:
        return {"env": "LADDER_TARGET_DSN"}
    params.pop("password")
    return make_conninfo(**{**params, "dbname": "postgres"})


__all__ = ["ReplicaResult", "create_replica", "default_owner", "lease_server"]

"""Rung 2, local replica: the incident's rows, sanitized and validated, in a database of its own.

The database is leased to the run and handed to the engineer: the run holds it (its DSN in the
hold form and the report) until they release it or its TTL passes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ladder.errors import ConfigError, PostgresError
from ladder.replica.references import VirtualReference
from ladder.rungs.base import (
    ClimbState,
    Finding,
    Held,
    LiveFinding,
    Minutes,
    Need,
    Rung,
    RungResult,
    RungSettings,
    Where,
)
from ladder.secrets import BlockRef, Dsn, resolve_dsn, without_password

if TYPE_CHECKING:
    from ladder.config import Environment, LoadedRunbook


class LocalReplicaSettings(RungSettings):
    policy: str | None = Field(
        None, description="sanitization policy file, relative to the runbook"
    )
    seeds: list[str] = Field(
        default_factory=list,
        description="seed conditions, 'TABLE: SQL condition' with :params from the incident",
    )
    child_depth: int = Field(2, ge=0, le=10, description="levels of child rows to follow")
    caps: dict[str, int] = Field(default_factory=dict, description="row cap per child table")
    whole_tables: list[str] = Field(default_factory=list, description="lookup tables copied whole")
    virtual_references: list[VirtualReference] = Field(
        default_factory=list,
        description="references the database does not declare (polymorphic, STI), followed "
        "like foreign keys: {from: 'comments(commentable_id)', to: 'posts(id)', where: ...}",
    )
    ttl_minutes: Minutes = Field(240, description="how long the replica database lives")
    target: Dsn | None = Field(
        None,
        description="server to create the replica database on; each run gets a new database "
        "(default: beside the source, which only the sandbox allows)",
    )


class GateSummary(BaseModel):
    passed: bool
    checks: int


class LocalReplicaResult(RungResult):
    database: str = ""
    dsn: str = Field("", description="the replica's DSN, without any password")
    rows: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0
    validation: GateSummary | None = None


def replica_dbname(incident_id: str, owner: str) -> str:
    """``ladder_replica_<incident>_<run>``: one database per run, within 63 bytes."""
    slug = re.sub(r"[^a-z0-9]+", "_", incident_id.lower()).strip("_")[:30]
    run = re.sub(r"[^a-z0-9]+", "", owner.lower())[:8]
    return f"ladder_replica_{slug}_{run}"


def missing_seed_params(seeds: list[str], params: dict[str, Any]) -> list[str]:
    """The ``:params`` the seed conditions use that ``params`` does not supply."""
    from ladder.replica.subset import compile_condition, parse_seed

    names = {
        name for seed in seeds for name in compile_condition(parse_seed(seed).condition).params
    }
    return sorted(name for name in names if name not in params)


def run(state: ClimbState, settings: LocalReplicaSettings) -> RungResult:
    """Copy the incident's rows (seeded from ``settings.seeds`` with the climb's parameters),
    sanitized and validated, into a new database leased to the run."""
    from ladder.connectors.postgres import with_dbname
    from ladder.errors import ValidationGateError
    from ladder.leases import LeaseLedger
    from ladder.replica.pipeline import create_replica, lease_server

    environment, incident = state.environment, state.incident
    if environment.production_db is None:
        return RUNG.result("unavailable", reason="the environment has no production_db")
    if settings.policy is None:
        return RUNG.result("unavailable", reason="the runbook names no sanitization policy")
    params = state.params()
    missing = missing_seed_params(settings.seeds, params)
    if missing:
        return RUNG.result(
            "unavailable",
            reason=f"the incident has no {', '.join(missing)} to seed the subset with "
            "(and the evidence rung found none)",
        )
    server = settings.target if settings.target is not None else environment.production_db.dsn
    dbname = replica_dbname(incident.id, state.owner)
    target = with_dbname(resolve_dsn(server), dbname)
    ttl = timedelta(minutes=settings.ttl_minutes)
    ledger = LeaseLedger()
    undo_server = server if not isinstance(server, str) else lease_server(target)
    if not isinstance(undo_server, str):
        undo_server = undo_server if isinstance(undo_server, dict) else undo_server.model_dump()
    # The final database is leased too: the swap gives it its name, the run's end drops it.
    lease = ledger.take(
        "postgres_database",
        f"{dbname} (local replica of {incident.id})",
        owner=state.owner,
        ttl=ttl,
        undo={"server": undo_server, "dbname": dbname},
        description=f"sanitized local replica for incident {incident.id}",
    )
    progress = state.publish.progress("replica-progress", f"Copying rows for {incident.id}")
    try:
        result = create_replica(
            resolve_dsn(environment.production_db.dsn),
            target,
            str(state.resolve(settings.policy)),
            seeds=settings.seeds,
            params=params,
            child_depth=settings.child_depth,
            caps=settings.caps,
            whole_tables=settings.whole_tables,
            virtual_references=settings.virtual_references,
            owner=state.owner,
            ttl=ttl,
            progress=progress,
            ledger=ledger,
            key=environment.pseudonym_key,
        )
    except ValidationGateError as exc:
        gate = getattr(exc, "result", None)
        if gate is not None:
            state.publish.table(
                "replica-validation",
                gate.rows(),
                f"Validation gate for {incident.id}: FAILED, nothing committed",
            )
        raise
    ledger.activate(lease.id)
    state.publish.table(
        "replica-plan",
        result.plan,
        f"Subset plan for {incident.id}: tables, estimated and actual rows",
    )
    state.publish.table(
        "replica-validation", result.validation.rows(), f"Validation gate for {incident.id}: passed"
    )
    dsn = without_password(target)
    rows = result.tables
    expires = ledger.get(lease.id).expires_at
    table = "\n".join(f"| {t} | {n} |" for t, n in rows.items())
    details = (
        f"Replica: `{dsn}` — held for you until {expires:%Y-%m-%d %H:%M} UTC or until you "
        "release it at the hold checkpoint.\n\n"
        f"Validation gate: {len(result.validation.checks)} checks, "
        f"{'passed' if result.validation.passed else 'FAILED'}\n\n"
        f"| table | rows |\n|---|---:|\n{table}"
    )
    return LocalReplicaResult(
        summary=f"{sum(rows.values())} rows in {len(rows)} tables, sanitized and validated, "
        f"in {result.seconds:.1f} s → database {dbname}",
        details_markdown=details,
        held=[
            Held(
                lease_id=lease.id,
                what=f"replica database {dbname}",
                use=f"psql '{dsn}'",
                expires_at=expires,
            )
        ],
        database=dbname,
        dsn=dsn,
        rows=rows,
        seconds=round(result.seconds, 3),
        validation=GateSummary(
            passed=result.validation.passed, checks=len(result.validation.checks)
        ),
    )


def check(settings: LocalReplicaSettings, loaded: LoadedRunbook, where: Where) -> list[Finding]:
    """A policy is required outside the sandbox, and the policy it names must load."""
    from ladder.sanitize.policy import load_policy

    if settings.policy is None:
        if loaded.environment.sandbox:
            return []
        return [("error", f"{where()}: a policy file is required")]
    try:
        load_policy(loaded.resolve(settings.policy))
    except ConfigError as exc:
        return [("error", f) for f in exc.findings]
    return []


def check_source(
    settings: LocalReplicaSettings, loaded: LoadedRunbook, env: Environment, where: Where
) -> list[LiveFinding]:
    """The policy against the live source, for the tables the seeds reach (every table when the
    environment has staging: refresh-staging copies them all with this policy). A source that
    cannot be reached is a note saying the check was skipped, not a failure."""
    from ladder.errors import LadderError
    from ladder.replica.preflight import policy_findings
    from ladder.sanitize.policy import load_policy

    if settings.policy is None:
        return []
    skipped = "policy not checked against the source: "
    if env.production_db is None:
        return [("note", f"{where('policy')}: {skipped}the environment has no production_db")]
    if isinstance(env.production_db.dsn, BlockRef) and not _prefect_api_url():
        # reading the block would start a Prefect server of its own: not for a check
        return [("note", f"{where('policy')}: {skipped}the source DSN is in a Prefect Secret"
                 " block and PREFECT_API_URL is not set")]  # fmt: skip
    try:
        policy = load_policy(loaded.resolve(settings.policy))
        source = resolve_dsn(env.production_db.dsn)
    except LadderError as exc:
        return [("note", f"{where('policy')}: {skipped}{exc}")]
    try:
        findings = policy_findings(
            source,
            policy,
            seeds=settings.seeds,
            depth=settings.child_depth,
            caps=settings.caps,
            whole_tables=settings.whole_tables,
            all_tables=env.staging is not None,
            virtual_references=settings.virtual_references,
        )
    except PostgresError as exc:
        return [("note", f"{where('policy')}: {skipped}{exc}")]
    out: list[LiveFinding] = [
        (f.severity, f"{f.location or where('policy')}: {f.message} [{f.code}]") for f in findings
    ]
    if not out:
        out.append(("note", f"{where('policy')}: the policy covers every column the copy reads"))
    return out


def _prefect_api_url() -> str | None:
    """The Prefect API this process would talk to (environment or profile), if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


RUNG = Rung(
    number=2,
    name="local_replica",
    title="Sanitized local replica",
    touches="reads only",
    approval_by_default=False,
    settings=LocalReplicaSettings,
    needs=(Need("production_db", lambda env: env.production_db),),
    run=run,
    hands_over=True,
    check=check,
    check_live=check_source,
)

"""Rung 2: a sanitized subset of production in a throwaway database leased to the flow run."""

from __future__ import annotations

import contextvars
import re
import threading
import time
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect import task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from ladder.config import Environment
from ladder.connectors.postgres import with_dbname
from ladder.errors import ConfigError, ValidationGateError
from ladder.incident import Incident
from ladder.leases import LeaseLedger
from ladder.replica.pipeline import ReplicaResult, create_replica, lease_server
from ladder.replica.schema import target_dbname
from ladder.replica.subset import compile_condition, parse_seed
from ladder.report import RungReport
from ladder.rungs import RUNGS, LocalReplicaSettings
from ladder.secrets import resolve_dsn
from tasks.naming import artifact_key

PROGRESS_EVERY = 1.0  # seconds between progress artifact updates


class ProgressArtifact:
    """A Prefect progress artifact following the copy: percent of all planned rows."""

    def __init__(self, key: str, description: str):
        # Copy threads call back; the run context (which run the artifact belongs to) lives in
        # context variables, so publish inside a copy of the task's context, one at a time.
        self.context = contextvars.copy_context()
        self.lock = threading.Lock()
        self.id: UUID | None = None
        self.key, self.description = key, description
        self.done: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self.last = 0.0

    def __call__(self, table: str, rows_done: int, rows_total: int) -> None:
        self.done[table], self.total[table] = rows_done, rows_total
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY and rows_done < rows_total:
            return
        self.last = now
        self.publish()

    def publish(self, final: bool = False) -> None:
        with self.lock:
            self.context.run(self._publish, final)

    def _publish(self, final: bool) -> None:
        total = sum(self.total.values())
        pct = 100.0 if final else (100.0 * sum(self.done.values()) / total if total else 0.0)
        if self.id is None:
            self.id = create_progress_artifact(pct, key=self.key, description=self.description)
        else:
            update_progress_artifact(self.id, pct)


def replica_dbname(incident_id: str, owner: str) -> str:
    """``ladder_replica_<incident>_<run>``: one database per run, within 63 bytes."""
    slug = re.sub(r"[^a-z0-9]+", "_", incident_id.lower()).strip("_")[:30]
    run = re.sub(r"[^a-z0-9]+", "", owner.lower())[:8]
    return f"ladder_replica_{slug}_{run}"


@task(name="create_local_replica", cache_policy=NO_CACHE)
def create_local_replica(
    environment: Environment,
    incident: Incident,
    settings: LocalReplicaSettings,
    policy_path: str,
    target_dsn: str,
    owner: str,
) -> dict[str, Any]:
    """Copy the incident's rows (seeded from ``settings.seeds`` with ``incident.params``),
    sanitized and validated, into the throwaway database ``target_dsn`` names, leased to
    ``owner`` (the flow run) so that reverting the run's leases drops it.

    Publishes the plan and the validation result as table artifacts and a progress artifact;
    returns ``{"target", "rows", "seconds", "validation"}``.
    """
    if environment.production_db is None:
        raise ConfigError(f"environment {environment.name!r} has no production_db to copy from")
    source_dsn = resolve_dsn(environment.production_db.dsn)
    ttl = timedelta(minutes=settings.ttl_minutes)
    ledger = LeaseLedger()
    target = target_dbname(target_dsn)
    # The final database is leased too: the swap gives it its name, the run's end drops it.
    ledger.take(
        "postgres_database",
        f"{target} (local replica of {incident.id})",
        owner=owner,
        ttl=ttl,
        undo={"server": lease_server(target_dsn), "dbname": target},
        description=f"sanitized local replica for incident {incident.id}",
    )
    progress = ProgressArtifact(
        artifact_key(incident.id, "replica-progress"), f"Copying rows for {incident.id}"
    )
    plans: list[str] = []
    try:
        result: ReplicaResult = create_replica(
            source_dsn,
            target_dsn,
            policy_path,
            seeds=settings.seeds,
            params=dict(incident.params),
            child_depth=settings.child_depth,
            caps=settings.caps,
            whole_tables=settings.whole_tables,
            owner=owner,
            ttl=ttl,
            progress=progress,
            plan_printer=plans.append,
            ledger=ledger,
        )
    except ValidationGateError as exc:
        gate = getattr(exc, "result", None)
        if gate is not None:
            create_table_artifact(
                table=gate.rows(),
                key=artifact_key(incident.id, "replica-validation"),
                description=f"Validation gate for {incident.id}: FAILED, nothing committed",
            )
        raise
    progress.publish(final=True)
    create_table_artifact(
        table=result.plan,
        key=artifact_key(incident.id, "replica-plan"),
        description=f"Subset plan for {incident.id}: tables, estimated and actual rows",
    )
    create_table_artifact(
        table=result.validation.rows(),
        key=artifact_key(incident.id, "replica-validation"),
        description=f"Validation gate for {incident.id}: passed",
    )
    return {
        "target": result.target,
        "rows": result.tables,
        "seconds": round(result.seconds, 3),
        "validation": {
            "passed": result.validation.passed,
            "checks": len(result.validation.checks),
        },
    }


def default_target(source_dsn: str, incident: Incident, owner: str) -> str:
    """A throwaway database on the same server as ``source_dsn`` (the sandbox's cluster)."""
    return with_dbname(source_dsn, replica_dbname(incident.id, owner))


def local_replica_rung(
    environment: Environment,
    incident: Incident,
    settings: LocalReplicaSettings,
    policy_path: str | None,
    owner: str,
) -> RungReport:
    """Rung 2 as the report shows it: a sanitized replica of the incident's rows, leased."""
    rung = RUNGS["local_replica"]
    if environment.production_db is None:
        return RungReport.of(rung, "unavailable", reason="the environment has no production_db")
    if policy_path is None:
        return RungReport.of(rung, "unavailable", reason="the runbook names no sanitization policy")
    missing = missing_seed_params(settings.seeds, incident.params)
    if missing:
        return RungReport.of(
            rung,
            "unavailable",
            reason=f"the incident has no {', '.join(missing)} to seed the subset with "
            "(and the evidence rung found none)",
        )
    server = settings.target if settings.target is not None else environment.production_db.dsn
    target = default_target(resolve_dsn(server), incident, owner)
    found = create_local_replica(environment, incident, settings, policy_path, target, owner)
    rows = found["rows"]
    summary = (
        f"{sum(rows.values())} rows in {len(rows)} tables, sanitized and validated, "
        f"in {found['seconds']:.1f} s → {found['target']}"
    )
    table = "\n".join(f"| {t} | {n} |" for t, n in rows.items())
    details = (
        f"Replica: `{found['target']}` (a lease: dropped when the run ends)\n\n"
        f"Validation gate: {found['validation']['checks']} checks, "
        f"{'passed' if found['validation']['passed'] else 'FAILED'}\n\n"
        f"| table | rows |\n|---|---:|\n{table}"
    )
    return RungReport.of(rung, "done", summary=summary, details_markdown=details, data=found)


def missing_seed_params(seeds: list[str], params: dict[str, Any]) -> list[str]:
    """The ``:params`` the seed conditions use that ``params`` does not supply."""
    names = {
        name for seed in seeds for name in compile_condition(parse_seed(seed).condition).params
    }
    return sorted(name for name in names if name not in params)

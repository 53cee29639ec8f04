"""refresh-staging: a sanitized copy of the production replica into staging, on a schedule.

Every table of the production replica is copied whole (``--all`` semantics: staging wants the
whole shape of production, not one incident's rows) through the same pipeline as
``ladder replica create``: policy check (fail closed), COPY streams with PII transformed, the
great-expectations gate, and the atomic swap into staging's database name. ``keep_previous``
earlier copies of staging are kept (``<db>__prev_<time>``), older ones dropped. Rows, time and
throughput per table are published as a table artifact.

Staging's database is replaced only when Ladder made it (its ``ladder replica`` comment, written
on every copy, see :mod:`ladder.replica.guard`). The first refresh of a staging database made by
someone else is refused; run it once with ``replace=True`` (a one-off run from the UI or
``prefect deployment run refresh-staging/refresh-staging -p replace=true``); the schedule never
passes it. A staging DSN that reaches the production database is refused whatever ``replace``.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from ladder.config import bind_environment, load_runbook
from ladder.errors import ConfigError
from ladder.replica.pipeline import create_replica
from ladder.secrets import resolve_dsn
from tasks.naming import lease_owner


@flow(name="refresh-staging", description="Sanitized production data into staging.")
def refresh_staging(
    runbook: str = "runbooks/demo.yaml",
    keep_previous: int = 1,
    sandbox_dir: str | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Replace staging's database with a sanitized, validated copy of the production replica.

    Args:
        runbook: Runbook YAML file (relative to the project directory or absolute) whose
            environment names the production replica and staging, and whose
            `rungs.local_replica.policy` says how every column is sanitized.
        keep_previous: How many earlier copies of staging to keep (renamed
            `<db>__prev_<time>`); older ones are dropped. 0 keeps none.
        sandbox_dir: On the sandbox environment, the sandbox's directory (default:
            LADDER_SANDBOX_DIR, else the sandbox in Ladder's state directory).
        replace: Replace staging's database even though Ladder did not make it: needed once,
            for the first refresh of an existing staging database.
    """
    logger = get_run_logger()
    loaded = load_runbook(runbook)
    env, _ = bind_environment(loaded, sandbox_dir=sandbox_dir)
    if env.staging is None:
        raise ConfigError(f"{loaded.environment_path}: environment {env.name!r} has no staging")
    if env.production_db is None:
        raise ConfigError(
            f"{loaded.environment_path}: environment {env.name!r} has no production_db to copy"
        )
    settings = loaded.runbook.rungs.settings("local_replica")
    policy = getattr(settings, "policy", None)
    if not policy:
        raise ConfigError(
            f"{loaded.path}: refresh-staging needs a sanitization policy: set "
            "rungs.local_replica.policy"
        )
    result = create_replica(
        resolve_dsn(env.production_db.dsn),
        resolve_dsn(env.staging.database.dsn),
        loaded.resolve(policy),
        all_tables=True,
        keep_previous=keep_previous,
        owner=lease_owner(),
        plan_printer=logger.info,
        key=env.pseudonym_key,
        replace=replace,
    )
    rows = result.throughput()
    rows.append(
        {
            "table": "(all)",
            "rows": sum(result.tables.values()),
            "seconds": round(result.seconds, 3),
            "rows_per_s": round(result.rows_per_s),
        }
    )
    create_table_artifact(
        table=rows,
        key=f"refresh-staging-{env.name}".lower().replace("_", "-"),
        description=f"Staging refresh of {result.target}: rows, seconds and rows/s per table",
    )
    logger.info(
        "staging refreshed: %s rows in %.1f s (%s rows/s); previous copies kept: %s",
        f"{sum(result.tables.values()):,}",
        result.seconds,
        f"{result.rows_per_s:,.0f}",
        ", ".join(result.previous) or "none",
    )
    return {
        "target": result.target,
        "rows": result.tables,
        "seconds": result.seconds,
        "rows_per_s": result.rows_per_s,
        "previous": result.previous,
        "validation": {"passed": result.validation.passed},
    }

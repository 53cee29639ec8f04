"""The policy held against a live source before any run: what ``ladder runbook check`` asks.

:func:`policy_findings` plans the subset a runbook's seeds would copy (or every table, for
refresh-staging) on a read-only session of the source and checks the policy against exactly
those tables, the way :func:`ladder.replica.pipeline.create_replica` will; nothing is copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ladder.connectors import pg_catalog as catalog
from ladder.connectors.postgres import connect
from ladder.replica.guard import read_only_dsn
from ladder.replica.subset import build_plan
from ladder.replica.subset.virtual import VirtualReference
from ladder.sanitize.policy import Finding, Policy, check_policy


def policy_findings(
    source_dsn: str,
    policy: Policy,
    *,
    seeds: Sequence[str] = (),
    depth: int = 2,
    caps: Mapping[str, int] | None = None,
    whole_tables: Sequence[str] = (),
    all_tables: bool = False,
    schemas: Sequence[str] = ("public",),
    virtual_references: Sequence[VirtualReference] = (),
) -> list[Finding]:
    """Every finding of ``policy`` for the tables the plan copies (errors and warnings)."""
    with connect(read_only_dsn(source_dsn), autocommit=True) as conn:
        plan = build_plan(
            conn,
            list(seeds),
            schemas=list(schemas),
            depth=depth,
            caps=dict(caps or {}),
            whole_tables=list(whole_tables),
            all_tables=all_tables or not seeds,
            virtual_references=[*policy.virtual_references, *virtual_references],
        )
        named = [*plan.order, *(catalog.qualify(t) for t in policy.rules())]
        every = catalog.columns(
            conn,
            catalog.list_tables(conn, sorted({*schemas, *(catalog.split(t)[0] for t in named)})),
        )
    return check_policy(policy, every, list(plan.order))


__all__ = ["policy_findings"]

"""The ``postgres_database`` lease kind: a database Ladder created, undone by dropping it.

Registered here, next to the connector that creates and drops databases; the janitor finds it
by importing :data:`ladder.leases.UNDO_PACKAGES`.
"""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, ConfigDict

from ladder.connectors.postgres import drop_database
from ladder.leases import register_undo
from ladder.secrets import Dsn, resolve_dsn


class PostgresDatabaseUndo(BaseModel):
    """Undo payload of ``postgres_database``: drop ``dbname`` on ``server``.

    ``server`` is a password-free DSN or a secret reference resolved when the lease is reverted.
    """

    model_config = ConfigDict(extra="forbid")
    server: Dsn
    dbname: str


def _server_label(dsn: str) -> str:
    params = conninfo_to_dict(dsn)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


@register_undo("postgres_database", payload=PostgresDatabaseUndo)
def _drop_postgres_database(payload: dict[str, Any]) -> str:
    spec = PostgresDatabaseUndo.model_validate(payload)
    dsn = resolve_dsn(spec.server)
    where = spec.server.describe() if not isinstance(spec.server, str) else _server_label(dsn)
    if drop_database(dsn, spec.dbname):
        return f"dropped database {spec.dbname} on {where}"
    return f"database {spec.dbname} on {where} was already gone"

"""Secret references: YAML names where a secret lives, never the secret itself.

A reference is ``{env: NAME}`` (an environment variable) or ``{secret: NAME}`` (a Prefect
``Secret`` block). :func:`resolve` returns the value; errors name the reference, never the value.
"""

from __future__ import annotations

import os
import re
from typing import Annotated

from psycopg.conninfo import conninfo_to_dict
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ladder.errors import SecretError

_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"


class EnvRef(BaseModel):
    """A secret held in an environment variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    env: Annotated[str, Field(pattern=_NAME)]

    def describe(self) -> str:
        return f"environment variable {self.env}"


class BlockRef(BaseModel):
    """A secret held in a Prefect ``Secret`` block."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    secret: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]*$")]

    def describe(self) -> str:
        return f"Prefect Secret block '{self.secret}'"


SecretRef = EnvRef | BlockRef


def resolve(ref: SecretRef) -> str:
    """The value behind ``ref``; :class:`SecretError` names the reference when it is unset."""
    if isinstance(ref, EnvRef):
        value = os.environ.get(ref.env)
        if not value:
            raise SecretError(f"{ref.describe()} is not set")
        return value
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(ref.secret, validate=False).get()
    except Exception as exc:  # Prefect raises ValueError/ObjectNotFound/HTTP errors here
        raise SecretError(f"cannot load {ref.describe()}: {type(exc).__name__}") from None
    if not isinstance(value, str) or not value:
        raise SecretError(f"{ref.describe()} is empty or not a string")
    return value


def is_set(ref: SecretRef) -> bool:
    """True when ``ref`` resolves (a cheap check for ``runbook check``)."""
    try:
        resolve(ref)
    except SecretError:
        return False
    return True


def _no_password(dsn: str) -> str:
    try:
        params = conninfo_to_dict(dsn)
    except Exception as exc:
        raise ValueError(f"not a valid PostgreSQL connection string: {exc}") from None
    if "password" in params or re.search(r"://[^/@:]+:[^/@]+@", dsn):
        raise ValueError(
            "a connection string in YAML must not hold a password: "
            "use {env: NAME} or {secret: NAME} for the whole DSN"
        )
    return dsn


PlainDsn = Annotated[str, AfterValidator(_no_password)]
Dsn = PlainDsn | SecretRef


def resolve_dsn(dsn: Dsn) -> str:
    return dsn if isinstance(dsn, str) else resolve(dsn)

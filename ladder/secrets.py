"""Secret references: YAML names where a secret lives, never the secret itself.

A reference is ``{env: NAME}`` (an environment variable) or ``{secret: NAME}`` (a Prefect
``Secret`` block). :func:`resolve` returns the value; errors name the reference, never the value.
"""

from __future__ import annotations

import os
import re
from typing import Annotated

from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

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


def _ref_tag(value: object) -> str | None:
    data = value if isinstance(value, dict) else getattr(value, "__dict__", {})
    if "env" in data:
        return "env-ref"
    if "secret" in data:
        return "secret-ref"
    return None


_REF_HELP = "must be a secret reference, {env: NAME} or {secret: NAME}: secrets never live in YAML"

SecretRef = Annotated[
    Annotated[EnvRef, Tag("env-ref")] | Annotated[BlockRef, Tag("secret-ref")],
    Discriminator(_ref_tag, custom_error_type="secret_ref", custom_error_message=_REF_HELP),
]


def resolve(ref: EnvRef | BlockRef) -> str:
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


def is_set(ref: EnvRef | BlockRef) -> bool:
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


def _dsn_tag(value: object) -> str | None:
    return "plain-dsn" if isinstance(value, str) else _ref_tag(value)


# The same rule for JSON-schema validators (the Prefect server checks a checkpoint's answer with
# it, so a password typed into a form is refused before it reaches the run).
_PASSWORD_IN_DSN = r"[Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd][ \t]*=|://[^/@:]+:[^/@]+@"  # noqa: S105 - a pattern, not a password
PlainDsn = Annotated[
    str,
    AfterValidator(_no_password),
    WithJsonSchema({"type": "string", "not": {"pattern": _PASSWORD_IN_DSN}}),
]
Dsn = Annotated[
    Annotated[PlainDsn, Tag("plain-dsn")]
    | Annotated[EnvRef, Tag("env-ref")]
    | Annotated[BlockRef, Tag("secret-ref")],
    Discriminator(
        _dsn_tag,
        custom_error_type="dsn",
        custom_error_message="must be a connection string without a password, "
        "or a secret reference {env: NAME} / {secret: NAME}",
    ),
]


def resolve_dsn(dsn: str | EnvRef | BlockRef) -> str:
    return dsn if isinstance(dsn, str) else resolve(dsn)

"""Secret references: YAML names where a secret lives, never the secret itself.

A reference is ``{env: NAME}`` (an environment variable) or ``{secret: NAME}`` (a Prefect
``Secret`` block). :func:`resolve` returns the value; errors name the reference, never the value.

The helpers at the end keep a password out of every message: :func:`redact_dsn` masks a DSN's
password, :func:`scrub` masks any password in free text (``password=...``, ``://user:pw@``), and
:func:`parse_dsn` checks a DSN given on the command line, naming the option, never its text.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

from ladder.errors import ConfigError, SecretError

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


T = TypeVar("T")


def _not_from_yaml(value: object) -> object:
    if value:
        raise ValueError("filled in by Ladder, never read from YAML (secrets are {env: NAME} "
                         "or {secret: NAME})")  # fmt: skip
    return value


#: A field Ladder fills in itself (the sandbox's keys), refused when a YAML file sets it.
NotFromYaml = Annotated[T, BeforeValidator(_not_from_yaml)]


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
    dsn_params(dsn)  # raises ValueError (without the DSN's text) when it does not parse
    if holds_password(dsn):
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


# --- keeping passwords out of messages -----------------------------------------------------------

MASK = "***"
#: ``password=value`` (quoted or not) in a conninfo string, or ``PGPASSWORD=value`` in a command.
_KEY_PASSWORD = re.compile(
    r"""(?P<key>\b(?:pg)?pass(?:word|wd)?\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|"[^"]*"?|[^\s,;'"]+)""",
    re.IGNORECASE,
)
#: ``scheme://user:password@`` in a URL.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/@\s:]*:)(?P<value>[^/@\n]+)@")
_CONNINFO_KEY = re.compile(r"(?:^|\s)(host|hostaddr|port|dbname|user|password|service)\s*=")
_PG_URI = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)


def scrub(text: str) -> str:
    """``text`` with every password it holds masked: ``password=***``, ``://user:***@``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _KEY_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)


def dsn_params(dsn: str) -> dict[str, str]:
    """The parts of a PostgreSQL DSN; ValueError says why it does not parse, without its text
    (psycopg's own message quotes the DSN's pieces, the password among them)."""
    try:
        return conninfo_to_dict(dsn)
    except psycopg.Error:
        pass
    if "=" not in dsn and "://" not in dsn:
        why = "expected key=value pairs (host=... dbname=...) or a postgresql:// URL"
    else:
        why = "it does not parse (a stray space, an unclosed quote or a bad URL?)"
    raise ValueError(f"not a valid PostgreSQL connection string: {why}") from None


def holds_password(text: str) -> bool:
    """True when ``text`` carries a password: a ``://user:pw@`` URL or a DSN with ``password``."""
    if _URL_PASSWORD.search(text):
        return True
    if _PG_URI.match(text) or _CONNINFO_KEY.search(text):
        try:
            return "password" in conninfo_to_dict(text)
        except psycopg.Error:  # not a parseable DSN after all: fall back to the keyword
            return re.search(r"\bpassword\s*=", text, re.IGNORECASE) is not None
    return False


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password masked, for reports and messages (scrubbed when it won't parse)."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return scrub(dsn)
    if "password" in params:
        params["password"] = MASK
    return make_conninfo(**params)


def without_password(dsn: str) -> str:
    """``dsn`` as an engineer may see and use it: every part but the password."""
    params = conninfo_to_dict(dsn)
    params.pop("password", None)
    return make_conninfo(**params)


def describe_server(dsn: str) -> str:
    """``host:port/dbname`` of a DSN: enough to say where, nothing secret."""
    params = conninfo_to_dict(dsn)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    where = f"{host}:{params.get('port') or 5432}"
    return f"{where}/{params['dbname']}" if params.get("dbname") else where


def parse_dsn(value: str, option: str) -> str:
    """A DSN given as ``option`` (e.g. ``--source``), checked: ConfigError names the option."""
    try:
        dsn_params(value)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None
    return value

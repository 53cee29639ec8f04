"""Sanitization policies: which transformer each column of each copied table goes through.

A policy is YAML, reviewed like code::

    key: {env: LADDER_PSEUDONYM_KEY}        # or {secret: prefect-block-name}
    tables:
      users:                                # or public.users
        id: keep
        email: email
        api_token: {transformer: fixed, value: "redacted"}

:func:`check_policy` fails closed: every copied column needs an entry, and every entry must name
a column that exists. It returns :class:`Finding` values rather than raising;
:func:`raise_for_errors` turns the errors into a :class:`PolicyError`. A first draft of a policy
for an existing database comes from :mod:`ladder.sanitize.suggest`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ladder.connectors.pg_catalog import Column, qualify
from ladder.errors import ConfigError, PolicyError, SecretError
from ladder.replica.references import VirtualReference
from ladder.sanitize.registry import Transformer, get_transformer, names, transformer_class
from ladder.secrets import SecretRef, resolve
from ladder.yamlfile import YamlDocument, load_yaml, parse_model

MIN_KEY_LENGTH = 16
_TABLE_NAME = re.compile(r"^[^.\s]+(\.[^.\s]+)?$")


def _error(kind: str, message: str, loc: tuple[str | int, ...], value: Any) -> ValidationError:
    detail = InitErrorDetails(
        type=PydanticCustomError(kind, "{msg}", {"msg": message}), loc=loc, input=value
    )
    return ValidationError.from_exception_data("ColumnRule", [detail])


class ColumnRule(BaseModel):
    """A transformer name with its options: ``email`` or ``{transformer: email, domain: example.org}``.

    A bare YAML ``null`` (which YAML reads as nothing) means the ``null`` transformer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    transformer: str
    options: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, ColumnRule):
            return data
        if data is None:  # YAML reads a bare `null` as nothing: `phone: null` means the transformer
            data = "null"
        if isinstance(data, str):
            name, options, name_loc = data, {}, ()
        elif (
            isinstance(data, dict) and "options" in data and set(data) <= {"transformer", "options"}
        ):
            name, options, name_loc = (
                data.get("transformer"),
                dict(data["options"]),
                ("transformer",),
            )
        elif isinstance(data, dict):
            options = dict(data)
            if "transformer" not in options:
                raise _error("missing", "a transformer is required", ("transformer",), data)
            name, name_loc = options.pop("transformer"), ("transformer",)
            name = "null" if name is None else name
        else:
            raise _error("rule_type", "expected a transformer name or a mapping", (), data)
        if not isinstance(name, str) or name not in names():
            choices = ", ".join(names())
            raise _error(
                "unknown_transformer",
                f"unknown transformer {name!r}: choose one of {choices}",
                name_loc,
                name,
            )
        try:
            transformer_class(name).Options.model_validate(options)
        except ValidationError as exc:
            fields = ", ".join(transformer_class(name).Options.model_fields)
            raise ValidationError.from_exception_data(
                "ColumnRule",
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "unknown_option" if e["type"] == "extra_forbidden" else e["type"],
                            "{msg}",
                            {
                                "msg": f"unknown option for transformer {name} (options: {fields})"
                                if e["type"] == "extra_forbidden"
                                else e["msg"].removeprefix("Value error, ")
                            },
                        ),
                        loc=tuple(e["loc"]),
                        input=e.get("input"),
                    )
                    for e in exc.errors()
                ],
            ) from None
        return {"transformer": name, "options": options}

    def build(self, *, unique: bool = False) -> Transformer:
        """The transformer; ``unique=True`` (a unique column) forces ``unique: true``."""
        options = dict(self.options)
        if unique:
            options["unique"] = True
        return get_transformer(self.transformer, options)


class Policy(BaseModel):
    """A parsed policy. Table keys are kept as written; :meth:`rules` qualifies them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: SecretRef
    tables: dict[str, dict[str, ColumnRule]]
    # References the database does not declare (polymorphic, STI), for the subset planner.
    virtual_references: list[VirtualReference] = []
    _doc: YamlDocument | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_entry_per_table(self) -> Policy:
        seen: dict[str, str] = {}
        for name in self.tables:
            if not _TABLE_NAME.match(name):
                raise ValueError(f"tables: {name!r} is not a table name (table or schema.table)")
            other = seen.setdefault(qualify(name), name)
            if other != name:
                raise ValueError(f"tables: {other!r} and {name!r} name the same table")
        return self

    def rules(self) -> dict[str, dict[str, ColumnRule]]:
        """Column rules per qualified table name (``public.users``)."""
        return {qualify(name): cols for name, cols in self.tables.items()}

    def rule(self, table: str, column: str) -> ColumnRule | None:
        return self.rules().get(qualify(table), {}).get(column)

    def where(self, table: str, column: str | None = None) -> str | None:
        """``file:line`` of a table or column entry, when the policy came from a file."""
        if self._doc is None:
            return None
        raw = next((n for n in self.tables if qualify(n) == qualify(table)), None)
        if raw is None:
            return f"{self._doc.path}:{self._doc.line_of(('tables',))}"
        loc: tuple[str, ...] = ("tables", raw) if column is None else ("tables", raw, column)
        return self._doc.where(loc)

    @property
    def source(self) -> Path | None:
        return self._doc.path if self._doc else None

    def key_bytes(self, key: SecretStr | None = None) -> bytes:
        """The pseudonym key: ``key`` when given (e.g. the sandbox's own), else the one the
        policy's reference names. :class:`SecretError` names where it came from, never the value.
        """
        if key is not None:
            return checked_key(key.get_secret_value(), "the pseudonymization key given")
        return checked_key(resolve(self.key), self.key.describe())


def checked_key(value: str, where: str) -> bytes:
    """``value`` as key bytes; :class:`SecretError` when it is too short to be a random key."""
    if len(value) < MIN_KEY_LENGTH:
        raise SecretError(
            f"{where} holds fewer than {MIN_KEY_LENGTH} characters: use a long random key"
        )
    return value.encode()


def load_policy(path: str | Path) -> Policy:
    """Read a policy file; every problem becomes one ``file:line: path: message`` line of a
    :class:`ConfigError` (unknown transformers and options included)."""
    doc = load_yaml(path)
    policy = parse_model(doc, Policy)
    policy._doc = doc
    return policy


# --- checking a policy against a catalog -----------------------------------------------------------

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem. ``code`` is stable (for scripts and ``--json``); ``message`` reads on its own."""

    severity: Severity
    code: str
    table: str
    column: str | None
    message: str
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{self.severity}: {where}{self.message} [{self.code}]"


ID_NAME = re.compile(r"(^id$|_id$|_ids$|^uuid$|_uuid$)", re.IGNORECASE)
_PII_CATEGORIES = frozenset({"", "S", "I", "U", "A"})


def looks_like_pii(column: str) -> bool:
    """True when a column's name says it holds PII or a secret (ids excepted)."""
    from ladder.sanitize.scrub import is_sensitive_key

    return not ID_NAME.search(column) and is_sensitive_key(column)


def check_policy(
    policy: Policy,
    catalog_columns: dict[str, list[Column]],
    tables: list[str] | None = None,
) -> list[Finding]:
    """Every finding for copying ``tables`` (default: every table in ``catalog_columns``).

    ``catalog_columns`` is the source's catalog (all tables the policy may name). Errors: a copied
    table or column with no entry, an entry for a table or column that does not exist, ``null``
    on a NOT NULL column, an output the column type cannot hold, a transformer that cannot keep a
    unique column unique. Warnings: ``keep`` on a column named like PII.
    """
    catalog = {qualify(t): cols for t, cols in catalog_columns.items()}
    rules = policy.rules()
    copied = [qualify(t) for t in tables] if tables is not None else sorted(catalog)
    findings: list[Finding] = []

    def add(sev: Severity, code: str, table: str, column: str | None, msg: str) -> None:
        # a missing entry is located at its table (or at ``tables:``), an extra one at itself
        where = policy.where(table, None if code.startswith("missing") else column)
        findings.append(Finding(sev, code, table, column, msg, where))

    for table in sorted(set(rules) - set(catalog)):
        add(
            "error",
            "unknown-table",
            table,
            None,
            f"{table}: the policy names a table that does not exist",
        )
    for table in copied:
        if table not in catalog:
            if table not in rules:
                add("error", "unknown-table", table, None, f"{table}: table to copy does not exist")
            continue
        cols = catalog[table]
        if table not in rules:
            listed = ", ".join(c.name for c in cols)
            add("error", "missing-table", table, None,
                f"{table}: no policy entry for the table (columns: {listed})")  # fmt: skip
            continue
        table_rules = rules[table]
        for col in cols:
            rule = table_rules.get(col.name)
            if rule is None:
                add(
                    "error",
                    "missing-column",
                    table,
                    col.name,
                    f"{table}.{col.name}: no policy entry",
                )
                continue
            findings.extend(_check_column(policy, table, col, rule))
        known = {c.name for c in cols}
        for name in table_rules:
            if name not in known:
                add("error", "unknown-column", table, name,
                    f"{table}.{name}: the policy names a column the table does not have "
                    "(renamed or dropped?)")  # fmt: skip
    return findings


def _check_column(policy: Policy, table: str, col: Column, rule: ColumnRule) -> list[Finding]:
    out: list[Finding] = []
    where = policy.where(table, col.name)
    name = f"{table}.{col.name}"
    cls = transformer_class(rule.transformer)

    def add(sev: Severity, code: str, msg: str) -> None:
        out.append(Finding(sev, code, table, col.name, f"{name}: {msg}", where))

    if rule.transformer == "null" and not col.nullable:
        add("error", "null-not-null", "null on a NOT NULL column: the load would fail")
    if not cls.accepts(col.type, col.category):
        add("error", "type-mismatch", f"{rule.transformer} writes text, the column is {col.type}")
    if col.is_unique and "unique" in cls.Options.model_fields:
        try:
            rule.build(unique=True)
        except ConfigError:
            add("error", "unique-broken",
                f"the column is unique and {rule.transformer} cannot keep it unique: use hash")  # fmt: skip
    if rule.transformer == "keep" and col.category in _PII_CATEGORIES and looks_like_pii(col.name):
        add("warning", "keep-pii", "kept as it is, but the name looks like PII: is it?")
    return out


def errors(findings: list[Finding], *, strict: bool = False) -> list[Finding]:
    """The findings that block a copy (warnings too when ``strict``)."""
    return [f for f in findings if strict or f.severity == "error"]


def raise_for_errors(findings: list[Finding], *, strict: bool = False) -> None:
    """Raise :class:`PolicyError` listing every blocking finding; return when there is none."""
    blocking = errors(findings, strict=strict)
    if blocking:
        raise PolicyError([str(f) for f in blocking])

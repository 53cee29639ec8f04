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
:func:`raise_for_errors` turns the errors into a :class:`PolicyError`.
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


_ID_NAME = re.compile(r"(^id$|_id$|_ids$|^uuid$|_uuid$)", re.IGNORECASE)
_PII_CATEGORIES = frozenset({"", "S", "I", "U", "A"})


def looks_like_pii(column: str) -> bool:
    """True when a column's name says it holds PII or a secret (ids excepted)."""
    from ladder.sanitize.scrub import is_sensitive_key

    return not _ID_NAME.search(column) and is_sensitive_key(column)


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


# --- suggesting a draft policy ---------------------------------------------------------------------

RuleSpec = str | dict[str, Any]

_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
_PHONE = re.compile(r"^\+?[\d\s().\-]{7,20}$")
_PERSON_TABLE = re.compile(
    r"(user|customer|person|people|member|employee|contact|account|author|admin|profile|"
    r"patient|client|student|staff|owner|subscriber|recipient)s?$"
)
_BY_NAME: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"e_?mail"), "email"),
    (re.compile(r"(^|_)(phone|mobile|cell|fax|tel|telephone)(_|$)|phone"), "phone"),
    (re.compile(r"(^|_)(first_?name|given_?name|forename)(_|$)"), "first_name"),
    (re.compile(r"(^|_)(last_?name|surname|family_?name)(_|$)"), "last_name"),
    (re.compile(r"(^|_)(user_?name|login|handle|nick_?name|screen_?name)(_|$)"), "username"),
    (re.compile(r"(^|_)(full_?name|display_?name|contact_?name|real_?name)(_|$)"), "name"),
    (re.compile(r"(^|_)(address|street|address_line_?\d?)(_|$)|address"), "address"),
    (re.compile(r"(^|_)ip(_|$)|ip_?address"), "ip"),
    (
        re.compile(
            r"token|password|passwd|secret|digest|salt|otp|api_?key|(^|_)(ssn|card_number|iban)(_|$)"
        ),
        "hash",
    ),
]
_WHAT = {"hash": "a secret or token (keyed hash)", "ip": "an IP address", "email": "an email"}
_LONG_TEXT = re.compile(r"(^|_)(notes?|body|description|comments?|bio|message|content|text)(_|$)")


def _share(samples: list[str], test: Any) -> float:
    return sum(1 for v in samples if test(v)) / len(samples) if samples else 0.0


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return False
    return True


def _is_json(value: str) -> bool:
    import json

    if value[:1] not in "{[":
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def guess_rule(table: str, col: Column, samples: list[str]) -> tuple[RuleSpec, str]:
    """A transformer for one column, from its name, type and sampled values, with the reason.

    The reason never quotes a sampled value.
    """
    from ladder.sanitize.scrub import scrub_text

    name = col.name.lower()
    n = len(samples)
    drop: RuleSpec = "null" if col.nullable else "keep"
    if col.is_pk:
        return "keep", "primary key"
    if _ID_NAME.search(name) and col.category != "S":
        return "keep", "identifier / foreign key"
    if col.type in ("json", "jsonb"):
        return "json", f"{col.type}: PII scrubbed by key name and pattern"
    if col.category == "I":
        return "ip", f"{col.type}: mapped into the documentation networks"
    if col.category == "A" or col.type == "bytea":
        return drop, f"REVIEW: {col.type} cannot be pseudonymized" + (
            ", dropped" if col.nullable else ", kept because NOT NULL"
        )
    if col.category not in ("S", ""):
        if looks_like_pii(name):
            return drop, f"REVIEW: {col.type} named like PII"
        return "keep", col.type
    for pattern, transformer in _BY_NAME:
        if pattern.search(name):
            return transformer, "named like " + _WHAT.get(
                transformer, transformer.replace("_", " ")
            )
    if name == "name" or name.endswith("_name"):
        if _PERSON_TABLE.search(table.rsplit(".", 1)[-1]):
            return "name", "a name in a table about people"
        return "keep", "REVIEW: a name, but not in a table about people"
    for test, transformer, what in (
        (_EMAIL.match, "email", "emails"),
        (_is_ip, "ip", "IP addresses"),
        (_is_json, "json", "JSON"),
        (lambda v: _PHONE.match(v) and sum(c.isdigit() for c in v) >= 7, "phone", "phone numbers"),
    ):
        if n and _share(samples, test) >= 0.8:
            return (
                transformer,
                f"{_share(samples, test):.0%} of {n} sampled values look like {what}",
            )
    pii = sum(1 for v in samples if scrub_text(v) != v)
    scrub: RuleSpec = "hash" if col.is_unique else "text"
    if not n:
        return scrub, "no values to sample: scrubbed to be safe"
    if pii:
        return scrub, f"PII found in {pii} of {n} sampled values"
    if _LONG_TEXT.search(name) or any(len(v) > 64 for v in samples):
        return scrub, "free text: scrubbed"
    return "keep", f"no PII seen in {n} sampled values"


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})


def _yaml_key(name: str) -> str:
    import json

    plain = _PLAIN_KEY.match(name) and name.lower() not in _YAML_WORDS
    return name if plain else json.dumps(name)


def _yaml_rule(rule: RuleSpec) -> str:
    import json

    if isinstance(rule, str):
        return _yaml_key(rule)
    return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in rule.items()) + "}"


def render_policy(
    guesses: dict[str, list[tuple[str, RuleSpec, str]]], *, header: list[str] | None = None
) -> str:
    """Policy YAML from ``{table: [(column, rule, reason), ...]}``, a comment on every line."""
    lines = [f"# {h}" for h in header or []]
    lines += ["key: {env: LADDER_PSEUDONYM_KEY}", "tables:"]
    for table, cols in guesses.items():
        shown = table.removeprefix("public.") if table.startswith("public.") else table
        lines.append(f"  {_yaml_key(shown)}:")
        entries = [(f"{_yaml_key(c)}: {_yaml_rule(r)}", why) for c, r, why in cols]
        width = max((len(e) for e, _ in entries), default=0)
        lines += [f"    {e.ljust(width)}  # {why}" for e, why in entries]
        if not cols:
            lines.append("    {}")
    return "\n".join(lines) + "\n"

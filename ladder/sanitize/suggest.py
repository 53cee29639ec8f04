"""A draft sanitization policy for an existing database (``ladder policy suggest``).

:func:`guess_rule` picks a transformer for one column from its name, its type and sampled
values, and says why (never quoting a value); :func:`render_policy` writes the guesses as policy
YAML with the reason as a comment on every line, for a person to review.
"""

from __future__ import annotations

import re
from typing import Any

from ladder.connectors.pg_catalog import Column
from ladder.sanitize.patterns import EMAIL
from ladder.sanitize.policy import ID_NAME, looks_like_pii

RuleSpec = str | dict[str, Any]

_PHONE = re.compile(r"^\+?[\d\s().\-]{7,20}$")
# Shapes of identifiers that a phone test would take for phone numbers, and of URLs.
_TAX_ID = re.compile(
    r"^(\d{3}-\d{2}-\d{4}|\d{2}-\d{7}|9\d{2}-[78]\d-\d{4}"  # US SSN, EIN, ITIN
    r"|[A-Z]{2}\d{8,12}|\d{3}\.\d{3}\.\d{3}-\d{2}|\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}"  # VAT, CPF, CNPJ
    r"|[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]|\d{3}[ -]\d{3}[ -]\d{3})$"  # UK NINO, Canada SIN
)
_IBAN = re.compile(r"^[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}$")
_URL = re.compile(r"^(https?|ftp)://\S+$", re.I)
# Columns that identify a person or an account however they look: hashed (keyed, so joins and
# uniqueness survive), or dropped where the value has no use once it is someone else's.
_SECRET = re.compile(
    r"token|password|passwd|secret|digest|salt|otp|api_?key|(^|_)(card_number|pan|cvv|pin)(_|$)"
)
_NATIONAL_ID = re.compile(
    r"(^|_)(tax_?(id|number|no|code)|tin|itin|ein|vat(_?(id|number|no))?|ssn|social_security"
    r"(_number)?|sin|nino|national_?(id|insurance|number)|passport(_?(no|number))?|"
    r"driver_?s?_?licen[cs]e(_?(no|number))?|id_?(card|number)|personal_?(id|number)|"
    r"cpf|cnpj|nif|nie|curp|rfc|bsn|pesel|aadhaar|pan_number)(_|$)"
)
_BANK = re.compile(r"(^|_)(iban|bic|swift(_code)?|bank_?account(_?(no|number))?|account_?number"
                   r"|routing(_?number)?|sort_?code)(_|$)")  # fmt: skip
_URL_NAME = re.compile(r"(^|_)(url|uri|website|homepage|web_?site|link|avatar|photo)(_|$)|_url$")
_POSTAL = re.compile(r"(^|_)(zip|zip_?code|postal_?code|post_?code|postcode|plz|cep)(_|$)")
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
    (_SECRET, "hash"),
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
    for pattern, what in (
        (_NATIONAL_ID, "a tax or national id"),
        (_BANK, "a bank account (IBAN, account or routing number)"),
    ):
        if not pattern.search(name):
            continue
        if col.category in ("S", ""):
            return "hash", f"named like {what} (keyed hash: joins and uniqueness survive)"
        return drop, f"REVIEW: {col.type} named like {what}" + (
            ", dropped" if col.nullable else ", kept because NOT NULL"
        )
    if ID_NAME.search(name) and col.category != "S":
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
    if _SECRET.search(name):
        return "hash", "named like " + _WHAT["hash"]
    for pattern, what in ((_URL_NAME, "a URL"), (_POSTAL, "a postal code")):
        if pattern.search(name):
            return _drop_or_hash(col), f"named like {what}, which can point at a person"
    for pattern, transformer in _BY_NAME:
        if pattern.search(name):
            return transformer, "named like " + _WHAT.get(
                transformer, transformer.replace("_", " ")
            )
    if name == "name" or name.endswith("_name"):
        if _PERSON_TABLE.search(table.rsplit(".", 1)[-1]):
            return "name", "a name in a table about people"
        return "keep", "REVIEW: a name, but not in a table about people"
    for test, rule, what in (
        (_TAX_ID.match, "hash", "tax or national ids"),
        (_IBAN.match, "hash", "IBANs"),
        (_URL.match, _drop_or_hash(col), "URLs"),
    ):
        if n and _share(samples, test) >= 0.8:
            return rule, f"{_share(samples, test):.0%} of {n} sampled values look like {what}"
    for test, transformer, what in (
        (EMAIL.fullmatch, "email", "emails"),
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


def _drop_or_hash(col: Column) -> RuleSpec:
    """``null`` where the column allows it, else a keyed ``hash``."""
    return "null" if col.nullable and not col.is_unique else "hash"


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

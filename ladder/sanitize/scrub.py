"""Scrub PII and secrets out of free text and JSON-like values.

Fails closed: a value that *might* be an email, a phone number, a card, an IBAN, a national id,
an address, a token or a password is replaced by a placeholder; a card-shaped number is a card
whether or not it passes the Luhn check, a bare run of 10-15 digits is a phone (so are Unix epoch
numbers, which cannot be told apart). What is kept on purpose: ordinary words, dates, times and
durations, Ruby constants and method names, ``file.rb:42`` frames, short numbers, prices, versions,
order ids with a letter (``R123456789``), UUID request ids and HTTP paths (see
:data:`ladder.sanitize.patterns.NUMBER`).

What PII looks like is defined once, in :mod:`ladder.sanitize.patterns`, shared with the gate.

Placeholders: ``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]``, ``[ID]``, ``[TOKEN]``, ``[IP]`` and
``[FILTERED]`` (the
value of a ``password=…``-style pair, or of a dict key whose name says secret or PII).

>>> scrub_text("password=hunter2 sent to ann+vip@Example.org from 203.0.113.5")
'password=[FILTERED] sent to [EMAIL] from [IP]'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from ladder.sanitize import patterns as P

__all__ = ["FILTERED", "STEPS", "is_sensitive_key", "scrub_series", "scrub_text", "scrub_value"]

FILTERED = "[FILTERED]"

# --- keys whose value is secret or PII -----------------------------------------------------------

# Matched anywhere in the key with separators removed ("X-Api-Key" -> "xapikey").
_KEY_SUBSTRINGS = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "privatekey",
    "authorization", "cookie", "session", "credential", "signature", "email", "phone", "address",
    "firstname", "lastname", "fullname", "middlename", "surname", "username", "displayname",
    "nickname", "givenname", "familyname", "cardnumber", "creditcard", "iban", "birth",
)  # fmt: skip
# Matched as a whole word of the key ("remote_ip" yes, "zip_code" yes, "shipping" no).
_KEY_WORDS = frozenset(
    {"ip", "card", "cvv", "cvc", "ssn", "pin", "pwd", "dob", "zip", "postcode", "postal",
     "street", "city", "tel", "auth", "otp", "name"}
)  # fmt: skip
_KEY_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@functools.lru_cache(maxsize=8192)
def _sensitive_name(key: str) -> bool:
    parts = [p.lower() for p in _KEY_PARTS.findall(key)]
    joined = "".join(parts)
    return any(s in joined for s in _KEY_SUBSTRINGS) or any(p in _KEY_WORDS for p in parts)


def is_sensitive_key(key: object) -> bool:
    """True when a key's name says its value is a secret or PII (case-insensitive, substring-aware).

    >>> [is_sensitive_key(k) for k in ("billing_email", "X-Api-Key", "remoteIp", "shipping_id")]
    [True, True, True, False]
    """
    return isinstance(key, str) and _sensitive_name(key)


# --- the scrubbing steps, applied in order -------------------------------------------------------

Repl = str | Callable[[re.Match[str]], str]

_QUOTED = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
_PAIR_VALUE = rf"""(?:{_QUOTED}|\{{[^{{}}]*\}}|\[[^\[\]]*\]|[^\s,;&{{}}\[\]"']+)"""
_KEY = r"[A-Za-z_][\w.\-\[\]%]*"


def _filter_pair(match: re.Match[str]) -> str:
    """Keep the key and separator of a ``key<sep>value`` pair; filter the value if the key says so."""
    value = match["value"]
    if value.strip("\"'") == FILTERED:
        return match[0]
    if not is_sensitive_key(match["key"]):
        if value[:1] in "{[":  # look inside: a nested key may be sensitive
            return match["head"] + value[0] + match.re.sub(_filter_pair, value[1:])
        return match[0]
    if value[:1] in "{[":
        return f'{match["head"]}"{FILTERED}"'
    if value[:1] in "\"'":
        return f"{match['head']}{value[0]}{FILTERED}{value[0]}"
    return f"{match['head']}{FILTERED}"


_NUMBER_PLACEHOLDERS = {"card": "[CARD]", "phone": "[PHONE]", "id": "[ID]"}


def _number(match: re.Match[str]) -> str:
    kind = P.classify_number(match[0])
    return match[0] if kind is None else _NUMBER_PLACEHOLDERS[kind]


def _iban(match: re.Match[str]) -> str:
    return "[IBAN]" if P.is_iban(match[0]) else match[0]


def _ipv6(match: re.Match[str]) -> str:
    return "[IP]" if P.is_ip_address(match[0]) else match[0]


def _secret(match: re.Match[str]) -> str:
    text = match[0]
    if re.fullmatch(r"[0-9a-fA-F]+", text):
        return "[TOKEN]"  # long hex: keys, digests, secret_key_base
    has_all = (any(c.isdigit() for c in text) and any(c.islower() for c in text)) and any(
        c.isupper() for c in text
    )
    path_like = any(re.fullmatch(r"[a-z_]{3,}", seg) for seg in text.split("/")[:-1])
    return "[TOKEN]" if has_all and not path_like else text


def _step(
    guard: str, pattern: str | re.Pattern[str], repl: Repl
) -> tuple[re.Pattern[str], re.Pattern[str], Repl]:
    """A scrubbing step; ``guard`` is a cheap test that any text ``pattern`` matches also matches."""
    return re.compile(guard), re.compile(pattern), repl


# (guard, pattern, replacement) per step, applied in this order by scrub_text and, column-wise,
# by ladder.sanitize.vectorized.
STEPS = [
    # Headers: everything after the name, to the end of the line or quote.
    _step(
        r"(?i:authorization|cookie)",
        r"(?P<h>(?i:\b(?:proxy-)?authorization|\bset-cookie|(?<![\w-])cookie))(?P<s>\s*[:=]\s*)"
        r"(?![\s\"']|\[FILTERED\])[^\n\"']+",
        rf"\g<h>\g<s>{FILTERED}",
    ),
    # URL credentials: scheme://user:password@host
    _step(r"://", r"(?<=://)[^\s/@:]+:[^\s/@]+@", f"{FILTERED}@"),
    # "key"=>value (Ruby hash inspect, old and 3.4 style) and "key": value (JSON).
    _step(
        r"""["']\s*(?:=>|:)""",
        rf"""(?P<head>(?P<q>["'])(?P<key>[^"'\n]{{1,80}})(?P=q)\s*(?:=>|:)\s*)(?P<value>{_PAIR_VALUE})""",
        _filter_pair,
    ),
    # ["key", value] (ActiveRecord's SQL binds in the debug log).
    _step(
        r"""\[["']""",
        rf"""(?P<head>\[(?P<q>["'])(?P<key>[^"'\n]{{1,80}})(?P=q),\s*)(?P<value>{_PAIR_VALUE})(?=\])""",
        _filter_pair,
    ),
    # :key=>value (Ruby symbol keys) and key=value (query strings, logfmt).
    _step(
        r"=",
        rf"(?P<head>(?<![\w\-\[\]%.:])(?::)?(?P<key>{_KEY})\s*(?:=>|=)\s*)(?P<value>{_PAIR_VALUE})",
        _filter_pair,
    ),
    # key: value (Ruby 3.4 symbol keys, YAML-ish text); "Foo::Bar" is not a pair.
    _step(
        r":",
        rf"""(?P<head>(?<![\w\-\[\]%.:"'])(?P<key>{_KEY}):(?!:)\s*)"""
        rf"""(?P<value>{_QUOTED}|\{{[^{{}}]*\}}|\[[^\[\]]*\]|(?![\s\[{{])[^\n,;|)}}\]"']+)""",
        _filter_pair,
    ),
    # Tokens with a known shape.
    _step(P.JWT_GUARD, P.JWT, "[TOKEN]"),
    _step(P.VENDOR_TOKEN_GUARD, P.VENDOR_TOKEN, "[TOKEN]"),
    _step(P.AUTH_SCHEME_GUARD, P.AUTH_SCHEME, r"\g<scheme> [TOKEN]"),
    _step(P.EMAIL_GUARD, P.EMAIL, "[EMAIL]"),
    # IP addresses: IPv6 (validated), then IPv4.
    _step(P.IPV6_GUARD, P.IPV6, _ipv6),
    _step(P.IPV4_GUARD, P.IPV4, "[IP]"),
    # Numbers with letters (IBANs, national ids), then cards, phones and digit ids.
    _step(P.IBAN_GUARD, P.IBAN, _iban),
    _step(P.NATIONAL_ID_GUARD, P.NATIONAL_ID, "[ID]"),
    _step(P.NUMBER_GUARD, P.NUMBER, _number),
    _step(P.LONG_SECRET_GUARD, P.LONG_SECRET, _secret),
]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NUMERIC = re.compile(r"\d(?:[\d \t.\-/()]{5,}\d|\.\d)")
_LETTER_IDS = re.compile(f"{P.IBAN_GUARD}|{P.NATIONAL_ID_GUARD}")
_LONG_RUN = re.compile(P.LONG_SECRET_GUARD)


def _suspect(text: str) -> bool:
    """False only for text that no step can change: one cheap test instead of fourteen passes.

    Every step needs one of: ``@ : = % [" ['``, a digit run or dotted number, an IBAN or national
    id prefix, a token prefix, or a 32-character run (kept in step with ``STEPS``). A lone UUID (a request id) is kept by every
    step, so it is let through at once.
    """
    if "@" in text or ":" in text or "=" in text or "%" in text or '["' in text or "['" in text:
        return True
    if _UUID.fullmatch(text):
        return False
    return bool(
        _NUMERIC.search(text)
        or _LETTER_IDS.search(text)
        or P.TOKEN_PREFIXES.search(text)
        or (len(text) >= 32 and _LONG_RUN.search(text))
    )


def scrub_text(text: str) -> str:
    """Replace PII and secrets in ``text`` with placeholders."""
    if not _suspect(text):
        return text
    for guard, pattern, repl in STEPS:
        if guard.search(text):
            text = pattern.sub(repl, text)
    return text


def scrub_series(s: pd.Series) -> pd.Series:
    """``scrub_text`` over a Series, vectorized per step; NaN/None stay None; dtype object."""
    mask = s.notna()
    out = pd.Series([None] * len(s), index=s.index, dtype=object)
    if not mask.any():
        return out
    # Scrub each distinct value once, and each step only where its guard says it may match.
    codes, uniques = pd.factorize(s[mask].astype(str))
    distinct = pd.Series(uniques, dtype=object)
    suspect = distinct.map(_suspect).astype(bool)
    values = distinct[suspect]
    for guard, pattern, repl in STEPS:
        hit = values.str.contains(guard, regex=True)
        if hit.any():
            values[hit] = values[hit].str.replace(pattern, repl, regex=True)
    distinct[suspect] = values
    out[mask] = distinct.to_numpy()[codes]
    return out


_scrub_key = functools.lru_cache(maxsize=8192)(scrub_text)
# Short strings repeat (alert payloads, log fields): scrub each once. scrub_text is pure.
_scrub_short = functools.lru_cache(maxsize=65536)(scrub_text)
_SHORT = 256


def scrub_value(obj: Any) -> Any:
    """Scrub a JSON-like value: sensitive keys' values become ``[FILTERED]``, strings are scrubbed.

    Recursive over dicts, lists and tuples. Keys are scrubbed as text too. Integers that look like
    a card or phone number become the placeholder string; other scalars are kept.
    """
    if isinstance(obj, dict):
        return {
            (_scrub_key(k) if isinstance(k, str) else k): (
                FILTERED if is_sensitive_key(k) and v is not None else scrub_value(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [scrub_value(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(scrub_value(v) for v in obj)
    if isinstance(obj, str):
        return _scrub_short(obj) if len(obj) <= _SHORT else scrub_text(obj)
    if isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) >= 1_000_000:
        text = str(obj)
        scrubbed = scrub_text(text)
        return obj if scrubbed == text else scrubbed
    return obj

"""What PII and secrets look like: one source for the scrubber and the validation gate.

The scrubber (:mod:`ladder.sanitize.scrub`, column-wise :mod:`ladder.sanitize.vectorized`)
replaces what these patterns find; the gate (:mod:`ladder.replica.gate`) counts what they still
find in a loaded replica; the ``email`` transformer only writes to a reserved domain. When one
changes its idea of an email, a card or a phone number, the others follow.

Reserved domains (RFC 2606/6761) can never reach a person: example.com/.net/.org and their
subdomains, and names under .test, .example, .invalid and .localhost.

>>> [is_reserved_domain(d) for d in ("example.org", "shop.test", "gmail.com", "example.com.evil")]
[True, True, False, False]
>>> [m["domain"] for m in EMAIL.finditer("ann%40gmail.com, bob@shop.example.org")]
['gmail.com', 'shop.example.org']
"""

from __future__ import annotations

import ipaddress
import re

# --- reserved domains ----------------------------------------------------------------------------

RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TLDS = ("test", "example", "invalid", "localhost")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_reserved_domain(domain: str) -> bool:
    """True for a reserved domain (see the module docstring); case-insensitive."""
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    return labels[-1] in RESERVED_TLDS or any(
        domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS
    )


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in words)


# A whole address on a reserved domain, as a PostgreSQL (POSIX) regex over lower(value).
RESERVED_EMAIL_SQL = (
    rf"^[^@[:space:]]+@(([a-z0-9-]+\.)*({_alternatives(RESERVED_DOMAINS)})"
    rf"|([a-z0-9-]+\.)+({_alternatives(RESERVED_TLDS)}))$"
)

# --- emails --------------------------------------------------------------------------------------

# Also URL-encoded ("ann%40example.org") and with an apostrophe ("o'neil@"); ``domain`` is named.
EMAIL_GUARD = r"@|%40"
EMAIL = re.compile(
    r"(?=[A-Za-z0-9._%+\-])(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+(?:'[A-Za-z0-9._%+\-]+)*(?:@|%40)"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,})"
)


def has_foreign_email(text: str) -> bool:
    """True when ``text`` holds an email address on a domain that is not reserved."""
    return any(not is_reserved_domain(m["domain"]) for m in EMAIL.finditer(text))


# --- numbers: cards, phones, national ids -----------------------------------------------------

# Fail closed: a number that has the shape of a card, a phone or an id is one. A run of digit
# groups (separated by one space, dot, dash or slash; "(0)"/"(415)" groups; an optional "+" or
# extension such as "x255", "ext. 12", "#3") is a candidate; :func:`classify_number` says what
# its digits make it:
#
# * 13-19 digits, no "+": a card, Luhn-valid or not (an order id of card length is scrubbed too);
# * "+" and 7-17 digits, or 10-15 digits (bare runs, "001-...", national formats): a phone;
# * 9 digits in groups ("123-45-6789", "046 454 286"): an SSN-like or national id;
# * 7 digits as 3-4 ("555-1234"): a phone.
#
# Kept: fewer digits, decimal numbers (one dot), 9-digit ids without separators, dates (a group that starts a date such as
# 2026-11-25, 25.11.2026 or 11/25/26 ends the run), times, versions, decimals, prices
# ("1,299.00": a comma ends a run), numbers after a time's colon, numbers inside words or paths ("R123456789", "/v1/12345",
# "ch_0050"), UUIDs, and runs of more than 19 digits.
_DATE = (
    r"(?:\d{4}[\-/.]\d{1,2}[\-/.]\d{1,2}|\d{1,2}[\-/.]\d{1,2}[\-/.](?:19|20)\d\d"
    r"|\d{1,2}/\d{1,2}/\d\d)(?!\d)"
)
_GROUP = rf"(?!{_DATE})(?:\(\d{{1,6}}\)|\d++)"
_EXT = r"(?:[ \t]?(?i:x|ext\.?|extension|\#)[ \t]?\d{1,6})"
NUMBER_GUARD = r"\d(?:[ \t.\-/()]*\d){6}"
# Each pattern below that starts with a look-behind starts with a look-ahead for its first
# character too: Python's re then skips to the places a match can start (1.7x on free text).
NUMBER = re.compile(
    rf"(?=[+(\d])(?<![\w.\-/+])(?<!\d:)(?:\+[ \t]?)?{_GROUP}(?:(?:[ \t]?[.\-/][ \t]?|[ \t])?{_GROUP})*"
    rf"{_EXT}?(?![\w]|[:.]\d)"
)
_EXT_TAIL = re.compile(_EXT + "$")
_DECIMAL = re.compile(r"\d+\.\d+")
_SEPARATED_3_4 = re.compile(r"\d{3}[ .\-]\d{4}")


def classify_number(candidate: str) -> str | None:
    """``"card"``, ``"phone"``, ``"id"`` or None for a :data:`NUMBER` match (see above)."""
    has_ext = "x" in candidate or "X" in candidate or "#" in candidate  # "x", "ext", "#"
    core = _EXT_TAIL.sub("", candidate) if has_ext else candidate
    if _DECIMAL.fullmatch(core):
        return None
    digits = sum(ch.isdigit() for ch in core)
    if core.startswith(("+", "00")) or (candidate != core and digits >= 7):
        return "phone" if 7 <= digits <= 17 else None  # international or with an extension
    if 13 <= digits <= 19:
        return "card"
    if 10 <= digits <= 15:
        return "phone"
    if digits == 9 and not core.isdigit():
        return "id"
    if digits == 7 and _SEPARATED_3_4.fullmatch(core):
        return "phone"
    return None


def luhn_valid(digits: str) -> bool:
    """True when the string of digits passes the Luhn check, as card numbers do."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card_number(candidate: str) -> bool:
    """True for a :data:`NUMBER` match with a card's 13-19 digits (Luhn or not: fail closed)."""
    return classify_number(candidate) == "card"


def is_phone_number(candidate: str) -> bool:
    return classify_number(candidate) == "phone"


def _has(kind: str, text: str) -> bool:
    return any(classify_number(m[0]) == kind for m in NUMBER.finditer(text))


def has_card_number(text: str) -> bool:
    return _has("card", text)


def has_phone_number(text: str) -> bool:
    return _has("phone", text)


# IBAN: country, check digits, 11-30 letters/digits (in groups of four or not), at least 8 of
# them digits (no mod-97 check: fail closed).
IBAN_GUARD = r"[A-Z]{2}\d{2}"
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")


def is_iban(candidate: str) -> bool:
    bban = candidate.replace(" ", "")[4:]
    return 11 <= len(bban) <= 30 and sum(ch.isdigit() for ch in bban) >= 8


# National ids with letters: UK NINO ("QQ 12 34 56 C"), Spanish DNI/NIE ("12345678Z",
# "X1234567L"), Italian codice fiscale ("RSSMRA85T10A562S"). Digit-only ids (SSN, SIN, BSN,
# NIR, Steuer-ID, CPF) are numbers above.
NATIONAL_ID_GUARD = r"[A-Z]{2} ?\d\d|\d{7}[ \-]?[A-Z]|[A-Z]{6}\d\d"
NATIONAL_ID = re.compile(
    r"\b(?:[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Z]|(?:[XYZ][ \-]?\d{7}|\d{8})[ \-]?[A-Z]"
    r"|[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z])\b"
)


def has_iban(text: str) -> bool:
    return any(is_iban(m[0]) for m in IBAN.finditer(text))


def has_national_id(text: str) -> bool:
    return bool(NATIONAL_ID.search(text)) or _has("id", text)


# --- addresses -----------------------------------------------------------------------------------

IPV6_GUARD = r"::|(?:[0-9A-Fa-f]{1,4}:){7}"
IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}"
    r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?)"
    r"(?:%\w+)?(?![\w:]|\.\d)"
)
IPV4_GUARD = r"\d\.\d+\.\d+\.\d"
IPV4 = re.compile(
    r"(?=\d)(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)

# --- tokens and secrets --------------------------------------------------------------------------

JWT_GUARD = r"eyJ"
JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
# Vendor keys with a known prefix (patterns, not secrets: Stripe, GitHub, GitLab, AWS, Slack, Google, SendGrid).
# Also OpenAI/Anthropic (sk-...), npm, Shopify, Mailgun (key-<hex>).
VENDOR_TOKEN_GUARD = (
    r"_live_|_test_|whsec_|gh[pousr]_|github_pat_|glpat-|AKIA|ASIA|xox|AIza|SG\.|sk-|npm_|shp|key-"  # noqa: S105
)
VENDOR_TOKEN = re.compile(
    r"\b(?:(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{8,}|whsec_[0-9A-Za-z]{16,}"
    r"|sk-(?:[a-z]+-)?[\w-]{20,}|npm_[0-9A-Za-z]{36}|shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}"
    r"|key-[0-9a-f]{32}"
    r"|gh[pousr]_[0-9A-Za-z]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}|xox[abposr]-[0-9A-Za-z-]{10,}|AIza[\w-]{35}"
    r"|SG\.[\w-]{16,}\.[\w-]{16,})"
)
AUTH_SCHEME_GUARD = r"Bearer|Basic"
AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[\w\-.~+/]{8,}=*")
# Hex or base64 runs of 32+ characters (keys, digests, secret_key_base).
LONG_SECRET_GUARD = r"[A-Za-z0-9+/_\-]{32}"  # noqa: S105 - a pattern, not a secret
LONG_SECRET = re.compile(r"(?<![\w+/=\-])[A-Za-z0-9+/_\-]{32,}={0,2}(?![\w+/=\-])")
# Any token prefix at all: the scrubber's cheap "could a token step match?" test.
TOKEN_PREFIXES = re.compile("|".join((JWT_GUARD, VENDOR_TOKEN_GUARD, AUTH_SCHEME_GUARD)))


# --- what the gate looks for ---------------------------------------------------------------------

_DOCUMENTATION_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def is_ip_address(candidate: str) -> bool:
    """True for an IPv4/IPv6 address (an :data:`IPV6` match must parse and hold a digit:
    ``Abc::Def`` is a Ruby constant)."""
    if ":" in candidate and not any(ch.isdigit() for ch in candidate):
        return False
    try:
        ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _reaches_someone(candidate: str) -> bool:
    """An address that is not loopback, unspecified or in a documentation network (what the
    ``ip`` transformer writes)."""
    if not is_ip_address(candidate):
        return False
    addr = ipaddress.ip_address(candidate.split("%", 1)[0])
    if addr.is_loopback or addr.is_unspecified:
        return False
    return not any(addr in net for net in _DOCUMENTATION_NETS if net.version == addr.version)


def has_ip_address(text: str) -> bool:
    return any(_reaches_someone(m[0]) for m in IPV4.finditer(text)) or any(
        _reaches_someone(m[0]) for m in IPV6.finditer(text)
    )


def has_token(text: str) -> bool:
    return bool(JWT.search(text) or VENDOR_TOKEN.search(text))


# Check name -> test on one text, for the gate; every shape the scrubbers replace, but long
# hex/base64 runs (digests a kept column may hold on purpose) and known values (per copy).
PII_CHECKS = {
    "no_email_outside_reserved": has_foreign_email,
    "no_card_number": has_card_number,
    "no_phone_number": has_phone_number,
    "no_national_id": has_national_id,
    "no_iban": has_iban,
    "no_ip_address": has_ip_address,
    "no_token": has_token,
}
# A guard true for every text one of PII_CHECKS may flag (the gate samples those).
MAY_HOLD_PII_GUARD = "|".join(("@", "%40", r"\d{2}", "::", JWT_GUARD, VENDOR_TOKEN_GUARD))


def find_pii(text: str) -> list[str]:
    """The names of the :data:`PII_CHECKS` that ``text`` fails."""
    return [name for name, check in PII_CHECKS.items() if check(text)]

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
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+(?:'[A-Za-z0-9._%+\-]+)*(?:@|%40)"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,})"
)


def has_foreign_email(text: str) -> bool:
    """True when ``text`` holds an email address on a domain that is not reserved."""
    return any(not is_reserved_domain(m["domain"]) for m in EMAIL.finditer(text))


# --- cards and phones ----------------------------------------------------------------------------

# 13-19 digits, starting 2-6, with optional space/dash groups; a card when Luhn-valid.
CARD_GUARD = r"\d(?:[ \-]?\d){12}"
CARD = re.compile(r"(?<![\w\-.])[2-6]\d{3}(?:[ \-]?\d){9,15}(?![\w\-]|\.\d)")


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
    """True for a :data:`CARD` match that is a card: 13-19 digits, Luhn-valid (else an order id)."""
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def has_card_number(text: str) -> bool:
    return any(is_card_number(m[0]) for m in CARD.finditer(text))


# International (+CC ...), national trunk 0..., North American 3-3-4; a phone with 7-15 digits.
PHONE_GUARD = r"\d[\d .\-()]{5,}\d"
PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}(?![\w]|\.\d)"
    r"|(?<![\w.+\-:/])0\d{2,4}[ .\-]\d{3,4}[ .\-]?\d{3,4}(?![\w.\-:])"
    r"|(?<![\w.+\-:/])(?:1[ .\-])?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}(?![\w.\-:])"
)


def is_phone_number(candidate: str) -> bool:
    """True for a :data:`PHONE` match with a phone's number of digits."""
    return 7 <= sum(ch.isdigit() for ch in candidate) <= 15


def has_phone_number(text: str) -> bool:
    return any(is_phone_number(m[0]) for m in PHONE.finditer(text))


# --- addresses -----------------------------------------------------------------------------------

IPV6_GUARD = r"::|(?:[0-9A-Fa-f]{1,4}:){7}"
IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}"
    r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?)"
    r"(?:%\w+)?(?![\w:]|\.\d)"
)
IPV4_GUARD = r"\d\.\d+\.\d+\.\d"
IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)

# --- tokens and secrets --------------------------------------------------------------------------

JWT_GUARD = r"eyJ"
JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
# Vendor keys with a known prefix (patterns, not secrets: Stripe, GitHub, GitLab, AWS, Slack, Google, SendGrid).
VENDOR_TOKEN_GUARD = r"_live_|_test_|whsec_|gh[pousr]_|github_pat_|glpat-|AKIA|ASIA|xox|AIza|SG\."  # noqa: S105
VENDOR_TOKEN = re.compile(
    r"\b(?:(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{8,}|whsec_[0-9A-Za-z]{16,}"
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

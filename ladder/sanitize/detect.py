"""The gate's PII checks over a whole column: RE2 finds the values a check could flag, Python
runs the check (:data:`ladder.sanitize.patterns.PII_CHECKS`) on those only.

Each check's guard is a test that every text the check flags also passes, spelled for RE2 by
:func:`ladder.sanitize.vectorized.re2_guard` so that non-ASCII text is read as Python reads it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ladder.sanitize import patterns as P
from ladder.sanitize.vectorized import re2_guard

__all__ = ["CHECK_GUARDS", "count_pii"]

# Check name -> a guard for every text the check flags (kept in step with PII_CHECKS).
CHECK_GUARDS = {
    "no_email_outside_reserved": P.EMAIL_GUARD,
    "no_card_number": P.NUMBER_GUARD,
    "no_phone_number": P.NUMBER_GUARD,
    "no_national_id": f"{P.NATIONAL_ID_GUARD}|{P.NUMBER_GUARD}",
    "no_iban": P.IBAN_GUARD,
    "no_ip_address": f"{P.IPV4_GUARD}|{P.IPV6_GUARD}",
    "no_token": f"{P.JWT_GUARD}|{P.VENDOR_TOKEN_GUARD}",
}
_RE2 = {name: re2_guard(guard) for name, guard in CHECK_GUARDS.items()}


_BY_NUMBER = ("no_card_number", "no_phone_number", "no_national_id")


def _number_checks(text: str) -> tuple[bool, bool, bool]:
    """Card, phone, national id: what :data:`PII_CHECKS` says of ``text``, in one pass of the
    number pattern instead of three."""
    kinds = {P.classify_number(m[0]) for m in P.NUMBER.finditer(text)}
    return "card" in kinds, "phone" in kinds, "id" in kinds or bool(P.NATIONAL_ID.search(text))


def count_pii(values: pa.Array) -> dict[str, int]:
    """Per check of ``PII_CHECKS``, how many of ``values`` (strings; NULLs ignored) it flags."""
    counts = dict.fromkeys(P.PII_CHECKS, 0)
    for name, check in P.PII_CHECKS.items():
        if name in _BY_NUMBER:
            continue
        hit = pc.fill_null(pc.match_substring_regex(values, _RE2[name]), False)
        counts[name] = sum(1 for v in values.filter(hit).to_pylist() if check(v))
    guards = "|".join(f"(?:{_RE2[name]})" for name in _BY_NUMBER)
    hit = pc.fill_null(pc.match_substring_regex(values, guards), False)
    for v in values.filter(hit).to_pylist():
        for name, flagged in zip(_BY_NUMBER, _number_checks(v), strict=True):
            counts[name] += flagged
    return counts

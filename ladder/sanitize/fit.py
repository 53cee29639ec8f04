"""Fitting transformed values into ``varchar(n)`` / ``char(n)`` columns.

A pseudonym can be longer than the original it replaces (a Faker phone number in a
``varchar(12)``). Where cutting is harmless - the column is not unique and the value is not an
email address or a JSON document that must stay valid - the value is cut to ``n`` characters;
otherwise the copy stops with the column, the length needed and what to change.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from ladder.errors import SanitizeError
from ladder.sanitize.registry import Transformer

__all__ = ["char_limit", "fit"]

_LIMITED = re.compile(r"^(?:character varying|varchar|character|char|bpchar)\((\d+)\)$")
_MUST_STAY_WHOLE = frozenset({"email", "json"})


def char_limit(sql_type: str) -> int | None:
    """``n`` of a ``character varying(n)`` or ``character(n)`` column type, else None."""
    m = _LIMITED.match(sql_type)
    return int(m[1]) if m else None


def fit(values: pa.Array, limit: int, column: str, sql_type: str, t: Transformer) -> pa.Array:
    """``values`` cut to ``limit`` characters, or :class:`SanitizeError` where cutting would
    break the column (unique) or the value (an email, a JSON document)."""
    if not pa.types.is_string(values.type):
        return values
    longest = pc.max(pc.utf8_length(values)).as_py()
    if longest is None or longest <= limit:
        return values
    if t.options.unique or t.name in _MUST_STAY_WHOLE:
        why = "is unique" if t.options.unique else f"holds {t.name} values that must stay whole"
        raise SanitizeError(
            f"{column}: the {t.name} transformer made a value of {longest} characters, which"
            f" does not fit {sql_type}, and the column {why}: widen the column in the copy or"
            f" use the hash transformer with length <= {limit}"
        )
    return pc.utf8_slice_codeunits(values, 0, limit)

"""Blank values (empty or whitespace-only strings) stay as they were, in every transformer.

A blank holds no PII, and replacing it invents data: every empty ``address2`` became one
street address (issue 8). Each transformer calls :func:`keep_blank` on its output; the copy's
"no original survives" count calls :func:`count_survivors`, which does not count a kept blank.

>>> import pyarrow as pa
>>> keep_blank(pa.array(["x", "y", "z", None]), pa.array(["", " \\t", "ann", None])).to_pylist()
['', ' \\t', 'z', None]
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["count_survivors", "is_blank", "keep_blank"]


def is_blank(values: pa.Array) -> pa.Array:
    """Per value, True for an empty or whitespace-only string (False for NULL and non-strings)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return pa.repeat(pa.scalar(False), len(values))
    return pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0), False)


def keep_blank(out: pa.Array, original: pa.Array) -> pa.Array:
    """``out`` with the original value wherever the original is blank."""
    blank = is_blank(original)
    if not pc.any(blank).as_py():
        return out
    if out.type != original.type:  # a blank is a string: the output column becomes one too
        out = out.cast(original.type)
    return pc.if_else(blank, original, out)


def count_survivors(original: pa.Array, new: pa.Array) -> int:
    """Rows whose new value equals the original, blanks (kept on purpose) left out."""
    same = pc.fill_null(pc.equal(original, new.cast(original.type)), False)
    same = pc.and_(same, pc.invert(is_blank(original)))
    return int(pc.sum(same).as_py() or 0)

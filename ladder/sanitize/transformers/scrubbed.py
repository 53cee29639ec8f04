"""Transformers that keep a value but scrub the PII inside it: ``text`` and ``json``.

Both give the output of :mod:`ladder.sanitize.scrub` (placeholders such as ``[EMAIL]``,
``[FILTERED]``), computed a column at a time by :mod:`ladder.sanitize.vectorized`, so their
output does not depend on the key. Neither can keep a unique column unique.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pyarrow.compute as pc
from pydantic import field_validator

from ladder.errors import SanitizeError
from ladder.sanitize.blank import is_blank
from ladder.sanitize.registry import ColumnValues, Transformer, TransformerOptions, register
from ladder.sanitize.scrub import scrub_text, scrub_value
from ladder.sanitize.transformers._vector import as_text, to_arrow
from ladder.sanitize.vectorized import scrub_text_column
from ladder.sanitize.vectorized_json import JsonScrubber


class _NotUniqueOptions(TransformerOptions):
    @field_validator("unique")
    @classmethod
    def _not_unique(cls, unique: bool) -> bool:
        if unique:
            raise ValueError(
                "scrubbing cannot keep distinct values distinct: use hash for a unique column"
            )
        return unique


class TextOptions(_NotUniqueOptions):
    pass


@register
class Text(Transformer):
    """Free text with emails, phones, cards, tokens, IPs and ``password=...`` values replaced."""

    name = "text"
    Options = TextOptions
    keyed = False
    replaces_pii = False  # what the patterns do not recognize (a bare name) stays

    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        arr, restore = to_arrow(values)
        return restore(scrub_text_column(as_text(arr)))


class JsonOptions(_NotUniqueOptions):
    on_invalid: Literal["error", "null", "scrub"] = "error"


@register
class Json(Transformer):
    """JSON text (as COPY writes a json/jsonb column) with PII scrubbed by key name and pattern.

    A value that is not JSON raises :class:`SanitizeError` naming the row (never the value);
    ``on_invalid: null`` writes NULL instead, ``on_invalid: scrub`` a scrubbed JSON string.
    """

    name = "json"
    Options = JsonOptions
    keyed = False
    replaces_pii = False

    @classmethod
    def accepts(cls, column_type: str, category: str) -> bool:
        return column_type in ("json", "jsonb") or category in ("", "S")

    def __init__(self, options: TransformerOptions | None = None):
        super().__init__(options)
        self._scrubber = JsonScrubber(self.scrub_one)

    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        arr, restore = to_arrow(values)
        text = as_text(arr)
        blank = is_blank(text)
        if not pc.any(blank).as_py():
            return restore(self._scrubber(text))
        done = self._scrubber(text.filter(pc.invert(blank)))  # '' is no JSON: kept, not an error
        return restore(pc.replace_with_mask(text, pc.invert(blank), done))

    def scrub_one(self, raw: str, row: int) -> str | None:
        """The reference for one value (``row``: its index in the chunk, for the error)."""
        try:
            doc: Any = json.loads(raw)
        except json.JSONDecodeError as exc:
            if self.options.on_invalid == "error":
                raise SanitizeError(
                    f"json: row {row} is not valid JSON ({exc.msg} at character {exc.pos})"
                ) from None
            return None if self.options.on_invalid == "null" else json.dumps(scrub_text(raw))
        return json.dumps(scrub_value(doc), ensure_ascii=False)

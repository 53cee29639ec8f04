"""Transformers that keep a value but scrub the PII inside it: ``text`` and ``json``.

Both use :mod:`ladder.sanitize.scrub` (placeholders such as ``[EMAIL]``, ``[FILTERED]``), so
their output does not depend on the key. Neither can keep a unique column unique.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
from pydantic import field_validator

from ladder.errors import SanitizeError
from ladder.sanitize.registry import ColumnValues, Transformer, TransformerOptions, register
from ladder.sanitize.transformers._vector import as_text, to_arrow


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
        from ladder.sanitize.scrub import scrub_series

        arr, restore = to_arrow(values)
        text = as_text(arr)
        scrubbed = scrub_series(pd.Series(text.to_pandas()))
        return restore(pa.array(scrubbed, type=pa.string(), from_pandas=True))


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

    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        from ladder.sanitize.scrub import scrub_text, scrub_value

        arr, restore = to_arrow(values)
        out: list[str | None] = []
        for row, raw in enumerate(as_text(arr).to_pylist()):
            if raw is None:
                out.append(None)
                continue
            try:
                doc: Any = json.loads(raw)
            except json.JSONDecodeError as exc:
                if self.options.on_invalid == "error":
                    raise SanitizeError(
                        f"json: row {row} is not valid JSON ({exc.msg} at character {exc.pos})"
                    ) from None
                out.append(
                    None if self.options.on_invalid == "null" else json.dumps(scrub_text(raw))
                )
                continue
            out.append(json.dumps(scrub_value(doc), ensure_ascii=False))
        return restore(pa.array(out, type=pa.string()))

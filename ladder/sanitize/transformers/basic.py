"""Transformers that keep, drop, fix or hash a value: ``keep``, ``null``, ``fixed``, ``hash``."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from ladder.sanitize.blank import keep_blank
from ladder.sanitize.registry import ColumnValues, Transformer, TransformerOptions, register
from ladder.sanitize.transformers._pseudonym import Pseudonymizer
from ladder.sanitize.transformers._vector import (
    base32,
    hexadecimal,
    join,
    to_arrow,
    with_nulls,
)


@register
class Keep(Transformer):
    """The value as it is. Explicit on purpose: a policy must say a column holds no PII."""

    name = "keep"
    categories = None
    keyed = False
    replaces_pii = False

    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        to_arrow(values)  # refuses what is not a column
        return values


@register
class Null(Transformer):
    """Every value becomes NULL (the column must be nullable); a blank string stays blank."""

    name = "null"
    categories = None
    keyed = False

    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        arr, restore = to_arrow(values)
        return restore(keep_blank(pa.nulls(len(arr), arr.type), arr))


class FixedOptions(TransformerOptions):
    value: str | int | float | bool

    @field_validator("unique")
    @classmethod
    def _not_unique(cls, unique: bool) -> bool:
        if unique:
            raise ValueError("fixed gives every row the same value: use hash for a unique column")
        return unique


@register
class Fixed(Transformer):
    """Every non-NULL, non-blank value becomes ``value`` (e.g. ``"redacted"``)."""

    name = "fixed"
    Options = FixedOptions
    categories = None
    keyed = False

    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        arr, restore = to_arrow(values)
        out = pa.repeat(pa.scalar(self.options.value), len(arr))
        return restore(keep_blank(with_nulls(out, arr), arr))


class HashOptions(TransformerOptions):
    length: Annotated[int, Field(ge=4, le=32)] = 16
    hex: bool = True

    @model_validator(mode="after")
    def _enough_bits_for_unique(self) -> HashOptions:
        bits = self.length * (4 if self.hex else 5)
        if self.unique and bits < 64:
            need = 16 if self.hex else 13
            raise ValueError(
                f"unique needs at least 64 bits: length {self.length} gives {bits}; use length >= {need}"
            )
        return self


@register
class Hash(Pseudonymizer):
    """A keyed hash of the value: ``length`` hex digits (or Crockford base32 with ``hex: false``).

    Not reversible without the key; 16 hex digits carry 64 bits, 32 carry 128.
    """

    name = "hash"
    Options = HashOptions
    replaces_pii = True

    def second_hash(self) -> bool:
        return True

    def render(self, h: np.ndarray, h2: np.ndarray | None, text: pa.Array) -> pa.Array:
        assert h2 is not None
        width = 16 if self.options.hex else 13
        encoder = hexadecimal if self.options.hex else base32
        out = join(encoder(h, width), encoder(h2, width))
        return pc.utf8_slice_codeunits(out, 0, self.options.length)

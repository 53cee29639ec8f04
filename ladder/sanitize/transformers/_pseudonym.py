"""The shared shape of keyed pseudonym transformers: hash each value once, render from hashes."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ladder.sanitize.blank import keep_blank
from ladder.sanitize.registry import ColumnValues, Transformer
from ladder.sanitize.transformers._vector import as_text, keyed_hash, to_arrow, with_nulls

_MAX_RETRIES = 4


class Pseudonymizer(Transformer):
    """Hashes every value with the key (one pass, no Faker call per row) and renders the output
    from the hash: the same input and key give the same output in every table and every run.

    Blank values (empty or whitespace) stay as they were (:mod:`ladder.sanitize.blank`).
    A value whose pseudonym happens to equal itself is rendered again from ``hash + 1``, so an
    original never survives in its own row.
    """

    def second_hash(self) -> bool:
        """True when :meth:`render` needs a second, independent hash (unique outputs)."""
        return bool(self.options.unique)

    @abstractmethod
    def render(self, h: np.ndarray, h2: np.ndarray | None, text: pa.Array) -> pa.Array:
        """Output strings for hashes ``h`` (and ``h2``) of the non-NULL-filled input ``text``."""

    def transform(self, values: ColumnValues, key: bytes) -> ColumnValues:
        arr, restore = to_arrow(values)
        text = as_text(arr)
        h = keyed_hash(text, key, self.name)
        h2 = keyed_hash(text, key, f"{self.name}/2") if self.second_hash() else None
        out = self.render(h, h2, text)
        for _ in range(_MAX_RETRIES):
            same = pc.fill_null(pc.equal(out, text), False)
            if not pc.any(same).as_py():
                break
            rows = np.flatnonzero(same.to_numpy(zero_copy_only=False))
            h = h.copy()
            h[rows] += np.uint64(1)
            again = self.render(h[rows], None if h2 is None else h2[rows], text.take(rows))
            out = pc.replace_with_mask(out, same, again)
        return restore(keep_blank(with_nulls(out, text), text))

"""Known values: the originals of the transformed columns, found inside free text and JSON.

Patterns cannot tell that "Call Ann Smith" names a customer; the copy can, because it knows the
``users.name`` values of the rows it copies. :class:`KnownValues` holds, for every column the
policy transforms (``name``, ``email``, ``address``, ``hash``, ``null``, ...), each original value
and the pseudonym its column gave it, in one Aho-Corasick automaton (``pyahocorasick``, C): one
pass over a text finds every known value in it, whatever their number. :meth:`KnownValues.replace`
puts the column's pseudonym in place of each (``null`` columns give ``[FILTERED]``), so "Call
Ann Smith" becomes "Call <the pseudonym users.name gave Ann Smith>".

What is looked up (bounded memory, few false hits):

* at most ``max_values`` originals (:data:`MAX_VALUES`; the automaton takes ~850 bytes per value
  with its lower-case and JSON forms: ~85 MB and ~1 s to build for 100,000 values); past the cap
  the rest are left to the patterns and :attr:`KnownValues.truncated` says so (a warning);
* originals of at least ``min_length`` characters (:data:`MIN_LENGTH`) holding a letter:
  digit-only values (phones, ids) are the patterns' business, and replacing a number inside a
  JSON document could break it;
* not single common words (:data:`COMMON_WORDS`: "Will", "May", "Rose", ...);
* a hit counts only as a whole word (no letter or digit just before or after it);
* the value as it is, and in lower case when it has several words or an ``@`` (names in a
  sentence keep their capitals; "will" is not "Will").

Overlapping hits: the longest, leftmost wins ("Ann Smith" over "Smith").
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import ahocorasick
import pyarrow as pa
import pyarrow.compute as pc

from ladder.sanitize.blank import is_blank
from ladder.sanitize.scrub import FILTERED

__all__ = ["COMMON_WORDS", "MAX_VALUES", "MIN_LENGTH", "KnownValues"]

MAX_VALUES = 100_000
MIN_LENGTH = 4
COMMON_WORDS = frozenset(
    """
    will may mark june july april august grace hope rose joy faith dawn bill summer winter
    autumn faith chase frank grant hunter lane long lee love major page park price rich
    rock star stone street storm wood young white black brown green gray grey king bell
    bishop baker cook day east west north south city home house main note order paid
    test user admin none null true false unknown other sent open this that with from have
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_Entry = tuple[int, str]  # (length of the matched text, replacement)


def _has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _escape(text: str) -> str:
    """``text`` as it appears inside a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _word_char(ch: str) -> bool:
    return ch.isalnum()


class KnownValues:
    """Originals -> pseudonyms, looked up in text in one pass. Add with :meth:`add`, then
    :meth:`freeze` once; lookups are safe from several threads after that."""

    def __init__(self, max_values: int = MAX_VALUES, min_length: int = MIN_LENGTH):
        self.max_values = max_values
        self.min_length = min_length
        self.truncated = False
        self._pairs: dict[str, str] = {}
        self._text: ahocorasick.Automaton | None = None
        self._outputs: ahocorasick.Automaton | None = None

    def __len__(self) -> int:
        return len(self._pairs)

    def wanted(self, original: str) -> bool:
        """True when ``original`` is worth looking up (see the module docstring)."""
        text = original.strip()
        if len(text) < self.min_length or not _has_letter(text):
            return False
        return " " in text or text.lower() not in COMMON_WORDS

    def add(self, originals: pa.Array | Iterable[str | None], pseudonyms: Iterable[object]) -> None:
        """Pairs of an original and its column's output (None, as ``null`` writes: ``[FILTERED]``)."""
        if self._text is not None:
            raise RuntimeError("known values are frozen")
        if isinstance(originals, pa.Array):
            originals = originals.to_pylist()
        for original, pseudonym in zip(originals, pseudonyms, strict=True):
            if original is None or original in self._pairs or not self.wanted(original):
                continue
            if len(self._pairs) >= self.max_values:
                self.truncated = True
                return
            self._pairs[original.strip()] = FILTERED if pseudonym is None else str(pseudonym)

    def freeze(self) -> KnownValues:
        """Build the automaton: one for text and JSON (a value whose JSON-escaped form differs is
        added in that form too, with its pseudonym escaped alike)."""
        automaton = ahocorasick.Automaton()
        for original, pseudonym in self._pairs.items():
            forms = {original}
            if " " in original or "@" in original:
                forms.add(original.lower())
            escaped = _escape(pseudonym)
            for form in forms:
                if form not in automaton:
                    automaton.add_word(form, (len(form), pseudonym, escaped))
                key = _escape(form)
                if key != form and key not in automaton:
                    automaton.add_word(key, (len(key), escaped, escaped))
        if len(automaton):
            automaton.make_automaton()
        self._text = automaton
        return self

    def _written(self) -> ahocorasick.Automaton:
        """The pseudonyms, as the copy wrote them (built on the gate's first call)."""
        if self._outputs is None:
            outputs = ahocorasick.Automaton()
            for pseudonym in set(self._pairs.values()):
                for form in {pseudonym, _escape(pseudonym)}:
                    outputs.add_word(form, (len(form), "\x00" * len(form), ""))
            if len(outputs):
                outputs.make_automaton()
            self._outputs = outputs
        return self._outputs

    def _hits(
        self, automaton: ahocorasick.Automaton, text: str, json_text: bool = False
    ) -> list[tuple[int, int, str]]:
        if not len(automaton):
            return []
        hits = []
        for end, (length, replacement, escaped) in automaton.iter_long(text):
            if json_text:
                replacement = escaped
            start = end + 1 - length
            if start > 0 and _word_char(text[start - 1]) and _word_char(text[start]):
                continue
            if end + 1 < len(text) and _word_char(text[end + 1]) and _word_char(text[end]):
                continue
            hits.append((start, end + 1, replacement))
        return hits

    def _replace_one(
        self, automaton: ahocorasick.Automaton, text: str, json_text: bool = False
    ) -> str:
        hits = self._hits(automaton, text, json_text)
        if not hits:
            return text
        out, pos = [], 0
        for start, end, replacement in hits:
            out += [text[pos:start], replacement]
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def replace(self, values: pa.Array, *, json_text: bool = False) -> pa.Array:
        """``values`` (strings; NULL stays NULL) with every known value replaced by its
        pseudonym; ``json_text``: the values are JSON documents (matched and written escaped)."""
        automaton = self._text
        if automaton is None:
            raise RuntimeError("freeze() the known values first")
        if not len(automaton) or len(values) == 0:
            return values
        todo = pc.and_(pc.is_valid(values), pc.invert(is_blank(values)))
        if not pc.any(todo).as_py():
            return values
        subset = values.filter(todo)
        distinct = pc.unique(subset)
        done = pa.array(
            [self._replace_one(automaton, v, json_text) for v in distinct.to_pylist()],
            type=pa.string(),
        )
        return pc.replace_with_mask(
            values, todo, done.take(pc.index_in(subset, value_set=distinct))
        )

    def count_survivors(self, values: pa.Array) -> int:
        """How many of ``values`` (strings; NULLs ignored) :meth:`survives` says hold a known
        value; a value in which the automaton finds nothing at all is cleared in C."""
        if self._text is None:
            raise RuntimeError("freeze() the known values first")
        if not len(self._text):
            return 0
        find = self._text.iter_long
        return sum(
            1
            for v in values.drop_null().to_pylist()
            if next(find(v), None) is not None and self.survives(v)
        )

    def survives(self, text: str) -> bool:
        """True when ``text`` still holds a known value (for the gate). The pseudonyms written
        by the copy are masked first: an original that is also some pseudonym (a last name the
        pools hold) is what the copy wrote, not a survivor."""
        if self._text is None:
            raise RuntimeError("freeze() the known values first")
        return bool(self._hits(self._text, self._replace_one(self._written(), text)))

"""Whole-column scrubbing of JSON with Arrow: :func:`ladder.sanitize.scrub.scrub_value` of each
``json.dumps`` text, computed per column with RE2.

Rows that share a layout (the same keys, nesting and literals, whatever the string and number
values) are matched by one anchored RE2 pattern built from the first such row. From the layout
alone it is known which values sit under a sensitive key (they become ``"[FILTERED]"``), which
strings must be scrubbed (via :func:`ladder.sanitize.vectorized.scrub_text_column`) and which
numbers may look like a card; the output is assembled column-wise in ``json.dumps`` form. A row no layout matches (a rare layout, an escape in a
string that must be scrubbed, invalid JSON) goes through the reference, row by row.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ladder.sanitize.scrub import FILTERED, is_sensitive_key, scrub_text, scrub_value
from ladder.sanitize.vectorized import map_distinct, scrub_text_column

__all__ = ["JsonScrubber", "Layout", "plan_layout"]

_STR = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_TOKEN = re.compile(
    rf"(?P<ws>[ \t\n\r]+)|(?P<str>{_STR})|(?P<num>{_NUM})|(?P<lit>true|false|null)|(?P<p>[{{}}\[\],:])"
)
_PLAIN_INT = r"^-?[1-9][0-9]{0,5}$|^0$"  # ints below 1e6: kept as they are by scrub_value
_MAX_GROUPS = 200
_MAX_LAYOUTS = 32  # remembered per transformer
_NEW_LAYOUTS_PER_CHUNK = 16
_MIN_ROWS_FOR_NEW_LAYOUT = 8

Piece = tuple[str, str]  # ("lit", text) | ("str", group) | ("num", group)


@dataclass(frozen=True)
class Layout:
    """One JSON layout: an anchored RE2 pattern with a named group per kept string or number,
    and the output as literal pieces and group references.

    ``prefixes`` holds, per group, the pattern up to the end of that group with only that group
    captured. RE2 finds a match with its fast DFA but needs a slower engine to extract groups;
    when the kept values sit early in long documents (an id before filtered personal fields),
    a DFA match of the whole pattern plus the extraction of short prefixes costs about half.
    """

    pattern: str
    pieces: tuple[Piece, ...]
    prefixes: tuple[str, ...] = ()

    @property
    def extract_by_prefix(self) -> bool:
        """True when extracting through the prefixes is cheaper than through the pattern
        (measured: DFA match ~0.4 of an extraction over the same length)."""
        return bool(self.prefixes) and sum(map(len, self.prefixes)) < 0.5 * len(self.pattern)

    @property
    def match_only(self) -> str:
        """The pattern with no capturing group (DFA only)."""
        return _capturing_only(self.pattern, "")


_GROUP = re.compile(r"\(\?P<v\d+>")


def _capturing_only(pattern: str, group: str) -> str:
    """``pattern`` with every named group but ``group`` made non-capturing."""
    return _GROUP.sub(lambda m: m[0] if m[0] == group else "(?:", pattern)


class _NotPlain(Exception):
    """The representative row cannot be handled column-wise (the reference takes it)."""


def _re2_literal(text: str) -> str:
    return "".join(ch if ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in text)


class _Planner:
    """Walks the tokens of one JSON text and produces its :class:`Layout`."""

    def __init__(self, raw: str):
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(raw):
            m = _TOKEN.match(raw, pos)
            if m is None:
                raise _NotPlain
            kind = m.lastgroup
            assert kind is not None
            self.tokens.append((kind, m[0]))
            pos = m.end()
        self.i = 0
        self.pattern: list[str] = ["^"]
        self.pieces: list[Piece] = []
        self.groups = 0
        self.group_ends: list[int] = []  # len(self.pattern) right after each group

    def layout(self) -> Layout:
        self._ws()
        self._value(skip=False)
        self._ws()
        if self.i != len(self.tokens) or self.groups > _MAX_GROUPS:
            raise _NotPlain
        self.pattern.append("$")
        prefixes = tuple(
            _capturing_only("".join(self.pattern[:end]), f"(?P<v{i}>")
            for i, end in enumerate(self.group_ends)
        )
        merged: list[Piece] = []
        for kind, text in self.pieces:
            if kind == "lit" and merged and merged[-1][0] == "lit":
                merged[-1] = ("lit", merged[-1][1] + text)
            else:
                merged.append((kind, text))
        return Layout("".join(self.pattern), tuple(merged), prefixes)

    def _next(self) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise _NotPlain
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _ws(self) -> None:
        while self.i < len(self.tokens) and self.tokens[self.i][0] == "ws":
            self.pattern.append(_re2_literal(self.tokens[self.i][1]))
            self.i += 1

    def _expect(self, punct: str) -> None:
        self._ws()
        kind, text = self._next()
        if kind != "p" or text != punct:
            raise _NotPlain
        self.pattern.append(_re2_literal(text))

    def _emit(self, text: str, skip: bool) -> None:
        if not skip:
            self.pieces.append(("lit", text))

    def _value(self, skip: bool) -> None:
        """Parse one value; with ``skip`` it only extends the pattern (a filtered value)."""
        self._ws()
        kind, text = self._next()
        if kind == "p" and text in "{[":
            self.pattern.append(_re2_literal(text))
            self._container(text, skip)
        elif kind == "str":
            if skip:
                self.pattern.append(f"(?:{_STR})")
            else:
                self.pattern.append(f"(?P<v{self.groups}>{_STR})")
                self.pieces.append(("str", f"v{self.groups}"))
                self.groups += 1
                self.group_ends.append(len(self.pattern))
        elif kind == "num":
            if skip:
                self.pattern.append(f"(?:{_NUM})")
            else:
                self.pattern.append(f"(?P<v{self.groups}>{_NUM})")
                self.pieces.append(("num", f"v{self.groups}"))
                self.groups += 1
                self.group_ends.append(len(self.pattern))
        elif kind == "lit":
            self.pattern.append(text)
            self._emit(text, skip)
        else:
            raise _NotPlain

    def _peek_value_is_null(self) -> bool:
        j = self.i
        while j < len(self.tokens) and self.tokens[j][0] == "ws":
            j += 1
        return j < len(self.tokens) and self.tokens[j] == ("lit", "null")

    def _container(self, opener: str, skip: bool) -> None:
        closer = "}" if opener == "{" else "]"
        self._emit(opener, skip)
        self._ws()
        if self.i < len(self.tokens) and self.tokens[self.i] == ("p", closer):
            self._expect(closer)
            self._emit(closer, skip)
            return
        seen: set[str] = set()
        shown: set[str] = set()
        first = True
        while True:
            if not first:
                self._emit(", ", skip)
            first = False
            if opener == "{":
                self._ws()
                kind, text = self._next()
                if kind != "str":
                    raise _NotPlain
                self.pattern.append(_re2_literal(text))
                key = json.loads(text)
                out_key = json.dumps(scrub_text(key), ensure_ascii=False)
                if (
                    key in seen or out_key in shown
                ):  # dict() would merge them: the reference decides
                    raise _NotPlain
                seen.add(key)
                shown.add(out_key)
                self._emit(out_key + ": ", skip)
                self._expect(":")
                if not skip and is_sensitive_key(key) and not self._peek_value_is_null():
                    self._emit(json.dumps(FILTERED), skip)
                    self._value(skip=True)
                else:
                    self._value(skip)
            else:
                self._value(skip)
            self._ws()
            kind, text = self._next()
            if kind != "p" or text not in (",", closer):
                raise _NotPlain
            self.pattern.append(_re2_literal(text))
            if text == closer:
                self._emit(closer, skip)
                return


def plan_layout(raw: str) -> Layout | None:
    """The :class:`Layout` of the JSON text ``raw``, or None when it must take the reference."""
    try:
        json.loads(raw)
        return _Planner(raw).layout()
    except (_NotPlain, json.JSONDecodeError, RecursionError):
        return None


def _json_string(raw: str) -> str:
    return json.dumps(scrub_text(json.loads(raw)), ensure_ascii=False)


def _json_number(raw: str) -> str:
    return json.dumps(scrub_value(json.loads(raw)), ensure_ascii=False)


def _scrub_strings(tokens: pa.Array) -> pa.Array:
    """JSON string tokens (quotes included) -> the tokens of their scrubbed text."""
    escaped = pc.match_substring(tokens, "\\")
    if pc.any(escaped).as_py():  # decoded by json, once per distinct token
        plain = pc.invert(escaped)
        done = map_distinct(tokens.filter(escaped), _json_string)
        rest = _scrub_strings(tokens.filter(plain)) if pc.any(plain).as_py() else None
        out = pc.replace_with_mask(tokens, escaped, done)
        return out if rest is None else pc.replace_with_mask(out, plain, rest)
    text = scrub_text_column(pc.utf8_slice_codeunits(tokens, 1, -1))
    if pc.any(pc.match_substring(text, "\\")).as_py():
        text = pc.replace_substring(text, "\\", "\\\\")
    if pc.any(pc.match_substring(text, '"')).as_py():
        text = pc.replace_substring(text, '"', '\\"')
    return pc.binary_join_element_wise('"', text, '"', "")


def _scrub_numbers(tokens: pa.Array) -> pa.Array:
    plain = pc.match_substring_regex(tokens, _PLAIN_INT)
    if pc.all(plain).as_py():
        return tokens
    other = pc.invert(plain)
    return pc.replace_with_mask(tokens, other, map_distinct(tokens.filter(other), _json_number))


def _render(layout: Layout, rows: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Output for the ``rows`` the layout matches, and the mask of those rows."""
    groups = [name for kind, name in layout.pieces if kind != "lit"]
    if not groups:
        matched = pc.fill_null(pc.match_substring_regex(rows, layout.pattern), False)
        text = "".join(t for _, t in layout.pieces)
        return pa.repeat(pa.scalar(text), int(pc.sum(matched).as_py() or 0)), matched
    if layout.extract_by_prefix:
        matched = pc.fill_null(pc.match_substring_regex(rows, layout.match_only), False)
        hits = rows.filter(matched)
        fields = {
            name: pc.extract_regex(hits, prefix).field(name)
            for name, prefix in zip(groups, layout.prefixes, strict=True)
        }
    else:
        parts = pc.extract_regex(rows, layout.pattern)
        matched = parts.is_valid()
        parts = parts.filter(matched)
        fields = {name: parts.field(name) for name in groups}
    cols: list[pa.Array | str] = []
    for kind, name in layout.pieces:
        if kind == "lit":
            cols.append(name)
            continue
        tokens = fields[name]
        cols.append(_scrub_strings(tokens) if kind == "str" else _scrub_numbers(tokens))
    if len(cols) == 1 and not isinstance(cols[0], str):
        return cols[0], matched
    return pc.binary_join_element_wise(*cols, ""), matched


class JsonScrubber:
    """Scrubs JSON columns chunk after chunk, remembering the layouts it has seen.

    ``reference(raw, row)`` is the row-wise fallback (``row`` is the row's index in the chunk,
    for error messages); it is called in row order. Safe to share between threads.
    """

    def __init__(self, reference: Callable[[str, int], str | None]):
        self.reference = reference
        self._layouts: list[Layout] = []
        self._lock = threading.Lock()

    def __call__(self, values: pa.Array) -> pa.Array:
        n = len(values)
        out_rows: list[np.ndarray] = []
        out_values: list[pa.Array] = []
        if values.null_count:
            todo = np.flatnonzero(values.is_valid().to_numpy(zero_copy_only=False))
            rest = values.take(todo)
        else:
            todo, rest = np.arange(n), values
        with self._lock:
            known = list(self._layouts)
        new = 0
        odd: list[int] = []  # rows whose own layout cannot be planned: the reference takes them
        while len(todo):
            if known:
                layout = known.pop(0)
            elif new < _NEW_LAYOUTS_PER_CHUNK and len(todo) >= _MIN_ROWS_FOR_NEW_LAYOUT:
                new += 1
                found = plan_layout(rest[0].as_py())
                if found is None:
                    odd.append(int(todo[0]))
                    todo, rest = todo[1:], rest[1:]
                    continue
                layout = found
                with self._lock:
                    if layout not in self._layouts:
                        self._layouts.insert(0, layout)
                        del self._layouts[_MAX_LAYOUTS:]  # the least recently useful
            else:
                break
            try:
                rendered, matched = _render(layout, rest)
            except pa.ArrowInvalid:  # e.g. a pattern beyond RE2's memory budget
                self._forget(layout)
                continue
            hit = matched.to_numpy(zero_copy_only=False)
            if hit.any():
                self._promote(layout)
                out_rows.append(todo[hit])
                out_values.append(rendered)
                todo, rest = todo[~hit], rest.filter(pc.invert(matched))
        if odd:
            todo = np.concatenate([np.array(odd, dtype=todo.dtype), todo])
            order = np.argsort(todo, kind="stable")
            todo = todo[order]
            rest = values.take(pa.array(todo))
        if len(todo):
            raws = rest.to_pylist()
            out_rows.append(todo)
            out_values.append(
                pa.array(
                    [self.reference(raw, int(row)) for raw, row in zip(raws, todo, strict=True)],
                    type=pa.string(),
                )
            )
        if len(out_rows) == 1 and len(out_rows[0]) == n:  # one layout took every row, in order
            return out_values[0].cast(pa.string())
        return _scatter(n, out_rows, out_values)

    def _promote(self, layout: Layout) -> None:
        """Try ``layout`` first on the next chunk."""
        with self._lock:
            if layout in self._layouts and self._layouts[0] != layout:
                self._layouts.remove(layout)
                self._layouts.insert(0, layout)

    def _forget(self, layout: Layout) -> None:
        with self._lock:
            if layout in self._layouts:
                self._layouts.remove(layout)


def _scatter(n: int, rows: list[np.ndarray], values: list[pa.Array]) -> pa.Array:
    """A length-``n`` array with ``values[i]`` at ``rows[i]`` and NULL elsewhere."""
    if not rows:
        return pa.nulls(n, pa.string())
    where = np.concatenate(rows)
    stacked = pa.concat_arrays([v.cast(pa.string()) for v in values])
    source = np.full(n, len(where), dtype=np.int64)  # index len(where): a NULL appended below
    source[where] = np.arange(len(where))
    stacked = pa.concat_arrays([stacked, pa.nulls(1, pa.string())])
    return stacked.take(pa.array(source))

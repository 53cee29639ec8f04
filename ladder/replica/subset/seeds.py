"""Seeds: where a subset starts. ``"users: id = :user_id"`` -> ``Seed("public.users", "id = :user_id")``.

The condition is SQL text from reviewed config or the operator's CLI flag; it is never built from
incident data. Incident values reach it only as ``:name`` parameters, which :func:`compile_condition`
turns into psycopg placeholders (bound server-side). A condition must be one expression: ``;``,
``--`` and ``/*`` are refused, quotes and parentheses must balance. Queries run in a READ ONLY
transaction (see ``execute.py``), so even a hostile expression cannot write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from psycopg import sql

from ladder.errors import ConfigError

_TABLE = r"[A-Za-z_][A-Za-z0-9_$]*"
_SEED = re.compile(
    rf"^\s*(?:(?P<schema>{_TABLE})\.)?(?P<table>{_TABLE})\s*:(?!:)\s*(?P<cond>.*?)\s*$", re.S
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_FORBIDDEN = (";", "--", "/*")
_ARRAY_BEFORE = re.compile(r"\b(?:ANY|ALL|SOME)\s*\(\s*$", re.I)  # ANY(:ids): an array
_ARRAY_AFTER = re.compile(r"\s*(?:::\s*[\w\s]+\[\s*\]\s*)?\)")
_EXAMPLE = "expected 'TABLE: CONDITION', e.g. 'users: id = :user_id'"


@dataclass(frozen=True)
class Seed:
    """Rows of ``table`` (schema-qualified) matching ``condition``; they start the subset."""

    table: str
    condition: str

    def __str__(self) -> str:
        return f"{self.table}: {self.condition}"

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the ``:name`` parameters the condition uses, in order of first use."""
        return compile_condition(self.condition).params


def parse_seed(text: str, *, default_schema: str = "public") -> Seed:
    """Parse ``"[schema.]table: condition"``; the condition is checked by :func:`compile_condition`."""
    table, condition = split_seed(text)
    return Seed(table if "." in table else f"{default_schema}.{table}", condition)


def split_seed(text: str) -> tuple[str, str]:
    """``(table as written, condition)`` of a seed string, the condition checked."""
    m = _SEED.match(text)
    if not m or not m["cond"]:
        raise ConfigError(f"cannot parse seed {text!r}: {_EXAMPLE}")
    table = f"{m['schema']}.{m['table']}" if m["schema"] else m["table"]
    compile_condition(m["cond"])
    return table, m["cond"]


@dataclass(frozen=True)
class Condition:
    """A checked condition: SQL with psycopg named placeholders, and the parameter names it uses."""

    query: sql.Composed
    params: tuple[str, ...]
    arrays: frozenset[str] = frozenset()  # used as ANY(:name)/ALL(:name): one value is [value]

    def bind(self, values: Mapping[str, object], *, what: str) -> dict[str, object]:
        """The parameter values this condition needs; names not supplied are an error. A
        single value of an array parameter (``ANY(:ids)`` with ``ids=877``) binds as ``[877]``."""
        missing = [p for p in self.params if p not in values]
        if missing:
            have = ", ".join(sorted(values)) or "none"
            raise ConfigError(
                f"{what} needs parameter(s) {', '.join(missing)} that were not supplied "
                f"(supplied: {have})"
            )
        return {
            p: [values[p]] if p in self.arrays and not isinstance(values[p], list | tuple)
            else values[p]
            for p in self.params
        }  # fmt: skip


def compile_condition(text: str) -> Condition:
    """Check ``text`` and turn its ``:name`` parameters into placeholders (``::type`` casts stay)."""
    for bad in _FORBIDDEN:
        if bad in text:
            raise ConfigError(
                f"seed condition {text!r} must be a single SQL expression: {bad!r} is not allowed"
            )
    parts: list[sql.Composable] = []
    names: list[str] = []
    arrays: set[str] = set()
    chunk: list[str] = []
    depth = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"" or (ch == "$" and _dollar_tag(text, i)):
            end = _end_of_quoted(text, i)
            chunk.append(text[i:end])
            i = end
            continue
        if ch == ":" and text.startswith("::", i):
            chunk.append("::")
            i += 2
            continue
        if ch == ":" and (m := _NAME.match(text, i + 1)):
            if _ARRAY_BEFORE.search("".join(chunk)) and _ARRAY_AFTER.match(text, m.end()):
                arrays.add(m[0])
            parts.append(sql.SQL("".join(chunk).replace("%", "%%")))
            chunk = []
            parts.append(sql.Placeholder(m[0]))
            if m[0] not in names:
                names.append(m[0])
            i = m.end()
            continue
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            break
        chunk.append(ch)
        i += 1
    if depth != 0:
        raise ConfigError(f"seed condition {text!r} has unbalanced parentheses")
    parts.append(sql.SQL("".join(chunk).replace("%", "%%")))
    return Condition(sql.Composed(parts), tuple(names), frozenset(arrays))


def _dollar_tag(text: str, i: int) -> str | None:
    m = _DOLLAR.match(text, i)
    return m[0] if m else None


def _end_of_quoted(text: str, i: int) -> int:
    """Index just past the quoted literal/identifier starting at ``i``."""
    tag = _dollar_tag(text, i) if text[i] == "$" else None
    if tag:
        end = text.find(tag, i + len(tag))
        if end < 0:
            raise ConfigError(f"seed condition {text!r} has an unterminated {tag} string")
        return end + len(tag)
    quote = text[i]
    backslash = quote == "'" and i > 0 and text[i - 1] in "eE"
    j = i + 1
    while j < len(text):
        if backslash and text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            if text.startswith(quote * 2, j):
                j += 2
                continue
            return j + 1
        j += 1
    raise ConfigError(f"seed condition {text!r} has an unterminated {quote} quote")


def coerce_seeds(seeds: Iterable[Seed | str]) -> list[Seed]:
    """Seeds given as strings split (tables as written), :class:`Seed` values checked."""
    out = []
    for s in seeds:
        seed = Seed(*split_seed(s)) if isinstance(s, str) else s
        compile_condition(seed.condition)
        out.append(seed)
    return out

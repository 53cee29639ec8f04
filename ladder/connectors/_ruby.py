"""Ruby ``Hash#inspect`` text (the classic Rails logger's "Parameters:") read into Python values.

Private to ``ladder.connectors``; ``parse_ruby_inspect`` is re-exported by ``logfiles``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_ruby_inspect"]

_RUBY_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")(?P<strlabel>:(?!:))?|(?P<arrow>=>)|(?P<punct>[{}\[\],])"""
    r"""|(?P<sym>:[A-Za-z_]\w*(?:[?!]|=(?!>))?)|(?P<label>[A-Za-z_]\w*[?!]?):(?!:)"""
    r"""|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])|(?P<word>nil|true|false)\b"""
    r"""|(?P<obj>\#<[^<>]*>))"""
)
_RUBY_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F ]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{1,2}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "e": "\x1b", "s": " ", "0": "\0"}


class _RubySyntaxError(ValueError):
    pass


def parse_ruby_inspect(text: str) -> Any:
    """Turn a Ruby ``inspect`` of params (``{"a"=>1, b: nil}``) into Python values.

    Returns the text itself when it is not a hash or array literal Ladder can read, so the caller
    still scrubs it as text.
    """
    tokens = [(m.lastgroup, m) for m in _RUBY_TOKEN.finditer(text)]
    consumed = sum(len(m[0]) for _, m in tokens)
    if not tokens or consumed != len(text.rstrip()):
        return text
    try:
        value, rest = _ruby_value(tokens, 0)
    except (_RubySyntaxError, IndexError):
        return text
    return value if rest == len(tokens) else text


def _ruby_value(tokens: list[tuple[str | None, re.Match[str]]], i: int) -> tuple[Any, int]:
    kind, m = tokens[i]
    if m["str"] is not None and m["strlabel"] is None:
        return _ruby_string(m["str"]), i + 1
    if kind == "num":
        number = m["num"]
        return (float(number) if "." in number or "e" in number.lower() else int(number)), i + 1
    if kind == "word":
        return {"nil": None, "true": True, "false": False}[m["word"]], i + 1
    if kind == "sym":
        return m["sym"][1:], i + 1
    if kind == "obj":
        return m["obj"], i + 1
    if kind == "punct" and m["punct"] == "[":
        items: list[Any] = []
        i += 1
        while not _is(tokens[i], "]"):
            item, i = _ruby_value(tokens, i)
            items.append(item)
            i = _separator(tokens, i, "]")
        return items, i + 1
    if kind == "punct" and m["punct"] == "{":
        result: dict[str, Any] = {}
        i += 1
        while not _is(tokens[i], "}"):
            key, i = _ruby_key(tokens, i)
            result[key], i = _ruby_value(tokens, i)
            i = _separator(tokens, i, "}")
        return result, i + 1
    raise _RubySyntaxError(m[0])


def _ruby_key(tokens: list[tuple[str | None, re.Match[str]]], i: int) -> tuple[str, int]:
    kind, m = tokens[i]
    if kind == "label":
        return m["label"], i + 1
    if m["str"] is not None and m["strlabel"] is not None:
        return _ruby_string(m["str"]), i + 1
    if m["str"] is not None or kind in ("sym", "num", "word"):
        key, i = _ruby_value(tokens, i)
        if tokens[i][0] != "arrow":
            raise _RubySyntaxError(tokens[i][1][0])
        return str(key), i + 1
    raise _RubySyntaxError(m[0])


def _is(token: tuple[str | None, re.Match[str]], punct: str) -> bool:
    return token[0] == "punct" and token[1]["punct"] == punct


def _separator(tokens: list[tuple[str | None, re.Match[str]]], i: int, close: str) -> int:
    if _is(tokens[i], ","):
        return i + 1
    if _is(tokens[i], close):
        return i
    raise _RubySyntaxError(tokens[i][1][0])


def _ruby_string(literal: str) -> str:
    def unescape(m: re.Match[str]) -> str:
        code = m[1]
        if code.startswith("u{"):
            return "".join(chr(int(c, 16)) for c in code[2:-1].split())
        if code[0] == "u" and len(code) == 5:
            return chr(int(code[1:], 16))
        if code[0] == "x" and len(code) > 1:
            return chr(int(code[1:], 16))
        return _SIMPLE_ESCAPES.get(code, code)

    return _RUBY_ESCAPE.sub(unescape, literal[1:-1])

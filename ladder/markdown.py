"""Markdown building blocks for reports and artifacts: escaped table cells and rows, code fences."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["cell", "code_block", "table_row"]


def cell(text: str) -> str:
    r"""``text`` safe inside a Markdown table cell: one line, with ``\``, ``|`` and backticks escaped.

    >>> cell("a|b `c`\nd")
    'a\\|b \\`c\\` d'
    """
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("\n", " ")


def table_row(cells: Iterable[str]) -> str:
    r"""One Markdown table row, every cell escaped with :func:`cell`.

    >>> table_row(["1", "a|b"])
    '| 1 | a\\|b |'
    """
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def code_block(text: str) -> list[str]:
    """``text`` as the lines of a fenced ``text`` block, fenced longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", text, fence]

"""A parsed trace as the report shows it: slowest calls, exceptions raised, SQL seen, the tree.

Everything here is rendered from text that already passed :func:`scrub_trace_text`: rbtrace shows
argument values (a user's email in ``find_by(email=...)``), so its output is scrubbed like any free
text before it is parsed, stored or shown.
"""

from __future__ import annotations

from collections import Counter

from ladder.trace.parse import Call, Raised, Trace

__all__ = ["exception_rows", "scrub_trace_text", "summary_markdown", "tree_text"]

_MAX_TREE_LINES = 400
_MAX_OTHER_LINES = 50


def scrub_trace_text(text: str) -> str:
    """``text`` with PII and secrets replaced, line by line (so the layout stays parseable)."""
    from ladder.sanitize.scrub import scrub_text

    return "\n".join(scrub_text(line) for line in text.splitlines())


def tree_text(trace: Trace, limit: int = _MAX_TREE_LINES) -> str:
    lines: list[str] = []

    def add(call: Call) -> None:
        lines.append("  " * call.depth + call.line())
        for child in call.children:
            add(child)

    for root in trace.calls:
        add(root)
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more calls"]
    return "\n".join(lines)


def exception_rows(raised: list[Raised]) -> list[dict[str, object]]:
    """Exceptions grouped by class, message and where they were raised, most frequent first."""
    counts = Counter((r.cls, r.message, r.where, r.at) for r in raised)
    return [
        {"exception": cls, "message": message, "raised in": where, "at": at, "count": n}
        for (cls, message, where, at), n in counts.most_common()
    ]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(trace: Trace, *, slowest: int = 10) -> str:
    parts = []
    rows = exception_rows(trace.raised)
    if rows:
        parts.append("### Exceptions raised\n\n| exception | message | raised in | at | count |\n"
                     "|---|---|---|---|---:|")  # fmt: skip
        parts += [
            f"| {_cell(r['exception'])} | {_cell(r['message'])} | `{_cell(r['raised in'])}` | "
            f"{_cell(r['at'])} | {r['count']} |"
            for r in rows
        ]
    else:
        parts.append("### Exceptions raised\n\nnone seen")
    top = trace.slowest(slowest)
    parts.append("\n### Slowest calls\n\n| call | ms |\n|---|---:|")
    parts += [f"| `{_cell(c.name)}` | {(c.seconds or 0) * 1000:.2f} |" for c in top]
    sql = trace.sql()
    parts.append("\n### SQL seen\n")
    parts += [f"- `{_cell(s)}`" for s in sql] or ["none seen"]
    if trace.unparsed:
        shown = trace.unparsed[:_MAX_OTHER_LINES]
        more = len(trace.unparsed) - len(shown)
        parts.append("\n### Other output (probes)\n\n```\n" + "\n".join(shown)
                     + (f"\n... {more} more lines" if more > 0 else "") + "\n```")  # fmt: skip
    tree = tree_text(trace)
    parts.append(f"\n### Call tree\n\n```\n{tree or '(no traced calls)'}\n```")
    return "\n".join(parts)

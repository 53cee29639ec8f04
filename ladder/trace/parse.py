"""rbtrace's output read back as values: call trees with timings, exceptions, SQL, messages.

What rbtrace prints while tracing methods (``-m``, ``--slow``), two spaces per nesting level::

    Shop::CheckoutService#call                            <- a call that has traced children
      Shop::Order.latest_for(user_id=2)                   <- its arguments, as selected
        Shop::DB.query(sql="SELECT ...") <0.000461>       <- a leaf: its duration in seconds
      Shop::Order.latest_for <0.000610>                   <- the end of an open call
    Shop::CheckoutService#call <0.000862>

With ``--slow`` only the end lines are printed, a call *after* its slow children (which are one
level deeper); the parser puts them back under it. Then there are ``*** ...`` lines about attaching and detaching, and for an eval ``>> EXPR`` / ``=> RESULT``,
where ``=> #<SomeError: ...>`` is an exception raised in the target, not a result. Probes write
``RAISED Class: message IN Owner#method AT file:line`` lines to their log, read here too.

>>> t = parse_trace("A#b\\n  C.d(x=1) <0.002000>\\nA#b <0.003000>\\n")
>>> [(c.name, c.seconds, [k.args for k in c.children]) for c in t.calls]
[('A#b', 0.003, ['x=1'])]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Call", "Raised", "Trace", "parse_trace"]

_TIMED = re.compile(r"^(?P<body>.*?) <(?P<secs>\d+(?:\.\d+)?)>$")
_CALL = re.compile(
    r"^(?P<name>[A-Z][\w:]*(?:[#.]|::)[^\s(<]+|[a-z_]\w*[!?]?)(?:\((?P<args>.*)\))?$"
)
_EXCEPTION = re.compile(r"^#<(?P<cls>[A-Z]\w*(?:::[A-Z]\w*)*): (?P<message>.*)>$", re.S)
_RAISED = re.compile(r"^RAISED (?P<cls>[\w:]+): (?P<message>.*?) IN (?P<where>\S+) AT (?P<at>\S+)$")
_SQL = re.compile(
    r"""(?P<q>["'])(?P<sql>\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH|BEGIN|COMMIT|ROLLBACK)\b"""
    r"""(?:\\.|(?!(?P=q)).)*)(?P=q)""",
    re.I,
)


@dataclass
class Call:
    """One traced call: ``name`` (``Class#method``), the arguments rbtrace showed, seconds."""

    name: str
    args: str | None = None
    seconds: float | None = None
    depth: int = 0
    children: list[Call] = field(default_factory=list)

    def walk(self) -> Iterator[Call]:
        yield self
        for child in self.children:
            yield from child.walk()

    def line(self) -> str:
        args = f"({self.args})" if self.args is not None else ""
        secs = f" {self.seconds * 1000:.2f} ms" if self.seconds is not None else ""
        return f"{self.name}{args}{secs}"


@dataclass(frozen=True)
class Raised:
    """An exception raised in the target: from a probe's log, or an eval's ``=> #<Error: ...>``."""

    cls: str
    message: str
    where: str = ""
    at: str = ""


@dataclass
class Trace:
    calls: list[Call] = field(default_factory=list)  # the roots, in order
    raised: list[Raised] = field(default_factory=list)
    evals: list[tuple[str, str]] = field(default_factory=list)  # (expression, result)
    messages: list[str] = field(default_factory=list)  # rbtrace's *** lines
    unparsed: list[str] = field(default_factory=list)

    def all_calls(self) -> list[Call]:
        return [c for root in self.calls for c in root.walk()]

    def slowest(self, n: int = 10) -> list[Call]:
        timed = [c for c in self.all_calls() if c.seconds is not None]
        return sorted(timed, key=lambda c: -(c.seconds or 0.0))[:n]

    def sql(self) -> list[str]:
        """SQL statements seen in traced arguments, in order, each once."""
        seen: dict[str, None] = {}
        for call in self.all_calls():
            for m in _SQL.finditer(call.args or ""):
                seen.setdefault(" ".join(m["sql"].split()), None)
        return list(seen)

    def methods(self) -> set[str]:
        return {c.name for c in self.all_calls()}


def parse_trace(text: str, indent: int = 2) -> Trace:
    """Read rbtrace's output (stdout and stderr, in any order) into a :class:`Trace`."""
    trace = Trace()
    stack: list[Call] = []  # open calls, outermost first
    orphans: list[Call] = []  # calls without a parent yet: the roots, in order
    expr: str | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("***"):
            trace.messages.append(line[3:].strip())
            continue
        if line.startswith(">> "):
            expr = line[3:]
            continue
        if line.startswith("=> "):
            result = line[3:]
            trace.evals.append((expr or "", result))
            m = _EXCEPTION.match(result.strip())
            if m:
                trace.raised.append(Raised(m["cls"], m["message"], where=f"eval {expr or ''}"))
            expr = None
            continue
        raised = _RAISED.match(line.strip())
        if raised:
            trace.raised.append(
                Raised(raised["cls"], raised["message"], raised["where"], raised["at"])
            )
            continue
        depth = (len(line) - len(line.lstrip(" "))) // indent
        body, seconds = line.strip(), None
        timed = _TIMED.match(body)
        if timed:
            body, seconds = timed["body"], float(timed["secs"])
        m = _CALL.match(body)
        if not m:
            trace.unparsed.append(line)
            continue
        del stack[depth + 1 :]
        top = stack[depth] if len(stack) > depth else None
        if seconds is not None and m["args"] is None and top is not None and top.name == m["name"]:
            top.seconds = seconds  # the end of an open call
            del stack[depth:]
            continue
        call = Call(m["name"], m["args"], seconds, depth)
        parent = stack[depth - 1] if 0 < depth <= len(stack) else None
        if parent is not None:
            parent.children.append(call)
        else:
            # --slow prints a call after its slow children, one level deeper: adopt them
            while orphans and orphans[-1].depth > depth:
                call.children.insert(0, orphans.pop())
            orphans.append(call)
        del stack[depth:]
        if seconds is None:
            stack.append(call)
    trace.calls = orphans
    return trace

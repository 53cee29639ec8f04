"""YAML loading that remembers where each value came from, so errors can say ``file:line``.

Errors never quote a value from the file (it may be a secret) and are raised ``from None``, so no
chained exception carries one either: pydantic's ``ValidationError`` holds every input value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ladder.errors import ConfigError
from ladder.secrets import scrub

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A parsed YAML mapping plus the line of every key and item (1-based)."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int:
        """The line of ``loc``, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def where(self, loc: Sequence[str | int]) -> str:
        return f"{self.path}:{self.line_of(loc)}"


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                yaml.safe_load(yaml.serialize(key_node))
                if key_node.tag != "tag:yaml.org,2002:str"
                else key_node.value
            )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*loc, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_yaml(path: str | Path) -> YamlDocument:
    """Parse ``path`` into a :class:`YamlDocument`; syntax errors become :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = scrub(getattr(exc, "problem", None) or str(exc).splitlines()[0])
        raise ConfigError(f"{path}:{line}: YAML syntax error: {problem}") from None
    if node is None:
        raise ConfigError(f"{path}:1: the file is empty")
    lines: dict[Loc, int] = {}
    data = _walk(node, (), lines)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping at the top of the file")
    return YamlDocument(path, data, lines)


def _closest(given: str, expected: str) -> str:
    """``; did you mean 'tunnel'?`` when one of pydantic's expected literals is close to ``given``."""
    choices = re.findall(r"'([^']*)'", expected)
    close = difflib.get_close_matches(given, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = err["msg"]
    if kind == "literal_error" and isinstance(err.get("input"), str):
        msg += _closest(err["input"], str(err.get("ctx", {}).get("expected", "")))
    return scrub(msg.removeprefix("Value error, ").removeprefix("Assertion failed, "))


# Union members' tags that pydantic puts into an error's location; they are not YAML keys.
UNION_TAGS = {"env-ref", "secret-ref", "plain-dsn"}


def _is_union_tag(part: str | int) -> bool:
    return isinstance(part, str) and (
        part in UNION_TAGS or "[" in part or part.startswith("function-")
    )


def validation_findings(doc: YamlDocument, exc: ValidationError, prefix: Loc = ()) -> list[str]:
    """One ``file:line: dotted.path: message`` per pydantic error."""
    findings = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        full = (*prefix, *loc)
        dotted = ".".join(str(p) for p in full) or "(top)"
        findings.append(f"{doc.where(full)}: {dotted}: {_message(err)}")
    return findings


def parse_model(doc: YamlDocument, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Validate ``doc`` against ``model``; every problem becomes one line of a :class:`ConfigError`."""
    try:
        return model.model_validate(doc.data, context={"path": doc.path, **(context or {})})
    except ValidationError as exc:
        findings = validation_findings(doc, exc)
    # ``from None``: the ValidationError holds every input value, secrets included.
    raise ConfigError(findings) from None

"""Rung 4's allow-lists: which probe files may be loaded, which method selectors may be traced.

**Probes** are Ruby files under the runbook's ``probes/`` directory, each listed in
``probes/allowlist.yaml`` with the sha256 of its reviewed text (and of its undo file, for a
probe that installs something). :func:`allowed_probe` refuses, with one line, a probe outside
that directory, one not listed, one whose text changed since it was listed, and one that
installs something (the default) without an undo file.

**Selectors** (``-m`` and ``--slow`` methods) are ``Class#method``, ``Class.method`` or
``Class#method(arg, other)`` with plain names only: rbtrace *evaluates* what stands between the
parentheses in the target, so anything but identifiers there would be free-form Ruby.

>>> check_selector("Shop::Payment#capture!")
'Shop::Payment#capture!'
>>> check_selector("Shop::DB.query(sql)")
'Shop::DB.query(sql)'
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ladder.errors import ConfigError, GuardrailError
from ladder.yamlfile import load_yaml, parse_model

__all__ = ["ALLOWLIST", "AllowedProbe", "allowed_probe", "check_selector"]

ALLOWLIST = "allowlist.yaml"
_SELECTOR = re.compile(
    r"^[A-Z]\w*(?:::[A-Z]\w*)*[#.][A-Za-z_]\w*[!?=]?(?:\((?:[a-z_]\w*(?:, ?[a-z_]\w*)*)?\))?$"
)
_FILE_NAME = re.compile(r"^[\w.-]+\.rb$")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    installs: bool = Field(True, description="false for a probe that only reads")
    undo: str | None = None
    undo_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class _AllowList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    probes: dict[str, _Entry] = Field(default_factory=dict)


@dataclass(frozen=True)
class AllowedProbe:
    """A probe that passed the allow-list: its file, and its undo file when it installs something."""

    name: str
    path: Path
    undo: Path | None
    description: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_selector(selector: str) -> str:
    """``selector`` when it is a plain method selector; GuardrailError otherwise."""
    if not _SELECTOR.match(selector):
        raise GuardrailError(
            f"refused method selector {selector!r}: only Class#method, Class.method or "
            "Class#method(arg, ...) with plain argument names"
        )
    return selector


def allowed_probe(probe: str, probes_dir: Path) -> AllowedProbe:
    """The probe ``probe`` (a path relative to the runbook, e.g. ``probes/exceptions.rb``) if the
    allow-list in ``probes_dir`` lists it with its current text; GuardrailError otherwise."""
    base = probes_dir.resolve()
    path = (probes_dir.parent / probe).resolve()
    if path.parent != base or not _FILE_NAME.match(path.name):
        raise GuardrailError(
            f"refused probe {probe!r}: probes are .rb files directly in {probes_dir} "
            "(the reviewed allow-list)"
        )
    try:
        listed = parse_model(load_yaml(base / ALLOWLIST), _AllowList).probes
    except ConfigError as exc:
        raise GuardrailError(
            f"refused probe {probe!r}: the allow-list is unusable: {exc}"
        ) from None
    entry = listed.get(path.name)
    if entry is None:
        raise GuardrailError(
            f"refused probe {probe!r}: not in the allow-list {base / ALLOWLIST} "
            f"(allowed: {', '.join(sorted(listed)) or 'none'})"
        )
    if not path.is_file():
        raise GuardrailError(f"refused probe {probe!r}: {path} does not exist")
    if _sha256(path) != entry.sha256:
        raise GuardrailError(
            f"refused probe {probe!r}: its text changed since it was reviewed (sha256 differs "
            f"from {ALLOWLIST}); review it and update the entry"
        )
    undo = None
    if entry.installs and entry.undo is None:
        raise GuardrailError(
            f"refused probe {probe!r}: it installs something but names no undo "
            f"(or `installs: false` in {ALLOWLIST})"
        )
    if entry.undo is not None:
        undo = base / entry.undo
        if not _FILE_NAME.match(entry.undo) or not undo.is_file():
            raise GuardrailError(f"refused probe {probe!r}: its undo {entry.undo} is missing")
        if entry.undo_sha256 is None or _sha256(undo) != entry.undo_sha256:
            raise GuardrailError(
                f"refused probe {probe!r}: its undo {entry.undo} changed since it was reviewed"
            )
    return AllowedProbe(path.name, path, undo, entry.description)

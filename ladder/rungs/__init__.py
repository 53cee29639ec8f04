"""The rungs of the ladder, found by one registry: every module in this package that declares ``RUNG``.

Adding a rung is adding a module here (plus, if it needs them, a Prefect task in ``tasks/``, a
connector in ``ladder/connectors/`` and a runbook section); nothing else lists the rungs.

>>> [r.name for r in ladder()][:2]
['evidence', 'local_replica']
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Literal

from ladder.rungs.base import (
    ClimbState,
    Held,
    Minutes,
    Need,
    Publisher,
    Rung,
    RungResult,
    RungSettings,
    RungStatus,
)

__all__ = [
    "ClimbState",
    "Held",
    "Minutes",
    "Need",
    "Publisher",
    "Rung",
    "RungName",
    "RungResult",
    "RungSettings",
    "RungStatus",
    "index",
    "ladder",
    "rung",
    "rung_names",
]  # fmt: skip


@cache
def ladder() -> tuple[Rung, ...]:
    """Every declared rung, in ladder order (by number); each name and number used once."""
    found: list[Rung] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        declared = getattr(module, "RUNG", None)
        if isinstance(declared, Rung):
            found.append(declared)
    found.sort(key=lambda r: r.number)
    if len({r.number for r in found}) != len(found) or len({r.name for r in found}) != len(found):
        raise RuntimeError(
            f"two rungs share a number or a name: {[(r.number, r.name) for r in found]}"
        )
    return tuple(found)


def rung_names() -> tuple[str, ...]:
    return tuple(r.name for r in ladder())


def rung(name: str) -> Rung:
    """The rung called ``name``; ``KeyError`` names the known ones."""
    for r in ladder():
        if r.name == name:
            return r
    raise KeyError(f"unknown rung {name!r}; the rungs are: {', '.join(rung_names())}")


def index(name: str) -> int:
    return rung_names().index(name)


RungName = Literal[rung_names()]  # type: ignore[valid-type]  # the names the registry found

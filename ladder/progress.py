"""In-process progress events, so a terminal can show what a flow running in-process is doing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener(event, fields)`` for every event; returns the unsubscribe function."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def emit(event: str, **fields: Any) -> None:
    for listener in list(_listeners):
        listener(event, fields)

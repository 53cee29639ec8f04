"""The actor's log lines while its flag is on, from the environment's log sources (rung 1's).

Before the gate is written, :func:`mark` notes where each plain log file ends; :func:`collect`
then reads only what was appended since, for up to ``seconds``, and keeps the lines that name the
user (``user_id=42``, ``"user_id":42``, ``[user:42]``, ``Current user: 42``, ``User;42``), each
scrubbed (:func:`ladder.sanitize.scrub.scrub_text`) before it leaves this module. Rotated or
compressed files (``.gz``) are history: they are not read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ladder.connectors.log_source import LogSource

__all__ = ["MAX_LINES", "collect", "mark", "user_pattern"]

MAX_LINES = 500
_MAX_LINE = 4000


def user_pattern(*user_ids: str) -> re.Pattern[str]:
    """The ways a Rails log names one of ``user_ids`` (FACTS.md: tags, key=value, JSON, prose)."""
    uid = "(?:" + "|".join(re.escape(u) for u in user_ids) + ")"
    return re.compile(
        rf"(?:\buser[_ ]?id\b\W{{0,4}}|\[user:|\bCurrent user:\s*|\b[A-Z]\w*;){uid}(?![\w-])",
        re.IGNORECASE,
    )


def mark(sources: Sequence[LogSource]) -> dict[Path, int]:
    """Where each plain log file ends now (a missing file starts at 0 when it appears)."""
    marks: dict[Path, int] = {}
    for source in sources:
        if source.path.suffix == ".gz":
            continue
        try:
            marks[source.path] = source.path.stat().st_size
        except OSError:
            marks[source.path] = 0
    return marks


def collect(
    marks: dict[Path, int],
    user_ids: Sequence[str],
    seconds: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """The scrubbed lines naming one of ``user_ids`` appended after ``marks``, read for
    ``seconds`` (at least once), at most :data:`MAX_LINES`."""
    from ladder.sanitize.scrub import scrub_text

    pattern = user_pattern(*user_ids)
    offsets = dict(marks)
    found: list[str] = []
    deadline = clock() + seconds
    while True:
        for path, offset in offsets.items():
            offsets[path], lines = _read_from(path, offset)
            found.extend(scrub_text(line[:_MAX_LINE]) for line in lines if pattern.search(line))
        if len(found) >= MAX_LINES or clock() >= deadline:
            return found[:MAX_LINES]
        sleep(min(1.0, max(0.0, deadline - clock())))


def _read_from(path: Path, offset: int) -> tuple[int, list[str]]:
    """Whole lines appended after ``offset``; a file that shrank (rotated) is read from 0."""
    try:
        size = path.stat().st_size
        if size < offset:
            offset = 0
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(size - offset)
    except OSError:
        return offset, []
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
    text = data[:end].decode("utf-8", errors="replace")
    return offset + end, text.splitlines()

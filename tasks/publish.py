"""Rungs show their work as Prefect artifacts: a Publisher whose keys keep each incident's history."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from ladder.rungs import Publisher
from tasks.naming import artifact_key

PROGRESS_EVERY = 1.0  # seconds between progress artifact updates


class ProgressArtifact:
    """A Prefect progress artifact following work on several items: percent of all of it."""

    def __init__(self, key: str, description: str):
        # Worker threads call back; the run context (which run the artifact belongs to) lives in
        # context variables, so publish inside a copy of the caller's context, one at a time.
        self.context = contextvars.copy_context()
        self.lock = threading.Lock()
        self.id: UUID | None = None
        self.key, self.description = key, description
        self.done: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self.last = 0.0

    def __call__(self, item: str, done: int, total: int) -> None:
        self.done[item], self.total[item] = done, total
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY and done < total:
            return
        self.last = now
        with self.lock:
            self.context.run(self._publish)

    def _publish(self) -> None:
        total = sum(self.total.values())
        pct = 100.0 * sum(self.done.values()) / total if total else 0.0
        if self.id is None:
            self.id = create_progress_artifact(pct, key=self.key, description=self.description)
        else:
            update_progress_artifact(self.id, pct)


class PrefectPublisher(Publisher):
    """Markdown, table and progress artifacts keyed ``incident-<id>-<what>``."""

    def __init__(self, incident_id: str):
        self.incident_id = incident_id

    def markdown(self, what: str, text: str, description: str) -> None:
        create_markdown_artifact(
            markdown=text, key=artifact_key(self.incident_id, what), description=description
        )

    def table(self, what: str, rows: list[dict[str, Any]], description: str) -> None:
        create_table_artifact(
            table=rows, key=artifact_key(self.incident_id, what), description=description
        )

    def progress(self, what: str, description: str) -> Callable[[str, int, int], None]:
        return ProgressArtifact(artifact_key(self.incident_id, what), description)

"""The dispatcher: turns pending inbox records into flow runs, retrying until each run exists.

It runs as a background task in the intake's process. A record is ``pending`` from the moment
its first alert is committed; the dispatcher creates its flow run from the deployment with the
idempotency key ``ladder-intake:<record id>`` (Prefect returns the same run for the same key,
whatever its state), then marks the record ``dispatched``. When Prefect is unreachable or
refuses, the record waits ``min(max_backoff, 2**attempts)`` seconds (with jitter) and is tried
again. A process killed between the two steps retries on restart and gets the same run back:
nothing is lost, nothing starts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from anyio import to_thread

from ladder.intake.inbox import Inbox, Record
from ladder.secrets import scrub

__all__ = ["Dispatcher", "idempotency_key"]

log = logging.getLogger("ladder.intake")


def idempotency_key(record_id: str) -> str:
    return f"ladder-intake:{record_id}"


class Dispatcher:
    """Creates the flow runs of pending records; :meth:`wake` after a commit, :meth:`run` forever."""

    def __init__(
        self,
        inbox: Inbox,
        deployment: str,
        *,
        concurrency: int = 2,
        poll_seconds: float = 2.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.inbox = inbox
        self.deployment = deployment
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self._event: asyncio.Event | None = None
        self._deployment_id: Any = None
        self.created = 0

    def wake(self) -> None:
        if self._event is not None:
            self._event.set()

    async def run(self) -> None:
        from prefect.client.orchestration import get_client

        self._event = asyncio.Event()
        gate = asyncio.Semaphore(self.concurrency)
        async with get_client(httpx_settings={"timeout": 15}) as client:
            while True:
                self._event.clear()
                try:
                    due = await to_thread.run_sync(self.inbox.due)
                except Exception as exc:  # the inbox's database is away: try again shortly
                    log.warning("intake dispatcher: %s", exc)
                    due = []
                if due:
                    await asyncio.gather(*(self._one(client, gate, r) for r in due))
                    continue
                await self._sleep()

    async def _sleep(self) -> None:
        assert self._event is not None
        try:
            nxt = await to_thread.run_sync(self.inbox.next_due)
        except Exception:
            nxt = None
        wait = self.poll_seconds
        if nxt is not None:
            wait = min(wait, max(0.0, (nxt - datetime.now(UTC)).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=max(wait, 0.01))

    async def _one(self, client: Any, gate: asyncio.Semaphore, record: Record) -> None:
        async with gate:
            try:
                run_id = await self._create(client, record)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Prefect down, refusing, or the deployment missing
                if type(exc).__name__ == "ObjectNotFound":
                    self._deployment_id = None  # look it up again: it may be re-created
                delay = min(self.max_backoff, 2.0 ** min(record.attempts, 16))
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
                why = scrub(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                log.warning("intake: run for %s not created yet (%s)", record.id, why)
                when = datetime.now(UTC) + timedelta(seconds=delay)
                await to_thread.run_sync(self.inbox.retry_later, record.id, when, why)
                return
            await to_thread.run_sync(self.inbox.dispatched, record.id, run_id)
            self.created += 1

    async def _create(self, client: Any, record: Record) -> str:
        if self._deployment_id is None:
            deployment = await client.read_deployment_by_name(self.deployment)
            self._deployment_id = deployment.id
        run = await client.create_flow_run_from_deployment(
            self._deployment_id,
            parameters={"runbook": record.runbook, "incident": record.incident},
            idempotency_key=idempotency_key(record.id),
            tags=["ladder", "intake", f"source:{record.source}"],
        )
        return str(run.id)

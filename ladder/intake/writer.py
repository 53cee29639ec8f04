"""Group commit: deliveries arriving together are filed in one inbox transaction.

Each request hands its delivery to :meth:`BatchWriter.file` and waits; one task takes whatever
has queued up (at most ``max_batch``), files it with :func:`file_batch` in a worker thread, and
answers every waiter once the transaction is committed. Under load a commit carries many alerts
and each statement runs once for the batch (``executemany``); alone, an alert is committed at
once. The 202 still follows the commit.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from anyio import to_thread

from ladder.intake.inbox import (
    Accepted,
    Inbox,
    InboxError,
    NewAlert,
    Replay,
    alerts,
    incident_of,
    records,
)

__all__ = ["BatchWriter", "file_batch"]

Delivery = tuple[str, list[NewAlert], str | None, Any]
Result = list[Accepted] | Exception


def _open_key(item: NewAlert) -> str:
    return f"{item.runbook or '-'}|{item.source}|{item.fingerprint}"


def _file_set_based(conn: sa.Connection, deliveries: list[Delivery], now: datetime) -> list[Result]:
    """Firing and ignored alerts only: every record read in one SELECT, written in one
    statement per kind of change."""
    wanted = [d[2] for d in deliveries if d[2] is not None]
    seen = set(
        conn.execute(sa.select(alerts.c.delivery_id).where(alerts.c.delivery_id.in_(wanted))).scalars()
    ) if wanted else set()  # fmt: skip
    keys = {_open_key(i) for d in deliveries for i in d[1] if i.status == "firing"}
    known = {
        r.open_key: {"id": r.id, "count": r.count, "window_ends": r.window_ends, "state": r.state}
        for r in conn.execute(
            sa.select(records.c.id, records.c.open_key, records.c.count, records.c.window_ends,
                      records.c.state).where(records.c.open_key.in_(keys))
        )
    } if keys else {}  # fmt: skip
    to_close: list[dict[str, Any]] = []
    new_records: list[dict[str, Any]] = []
    counted: dict[str, int] = {}  # record id -> alerts to add
    alert_rows: list[dict[str, Any]] = []
    out: list[Result] = []
    for source, items, delivery_id, payload in deliveries:
        if delivery_id is not None and delivery_id in seen:
            out.append(Replay())
            continue
        if delivery_id is not None:
            seen.add(delivery_id)
        row = {"received_at": now, "source": source, "delivery_id": delivery_id, "status": "ignored",
               "fingerprint": None, "record_id": None, "payload": payload}  # fmt: skip
        if not items:
            alert_rows.append(row)
            out.append([])
            continue
        accepted = []
        for i, item in enumerate(items):
            rid: str | None = None
            if item.status == "ignored":
                accepted.append(Accepted(None, "ignored", 0, False, None))
            else:
                key = _open_key(item)
                rec = known.get(key)
                if rec is not None and rec["window_ends"] > now:
                    rec["count"] += 1
                    if not rec.get("new"):
                        counted[rec["id"]] = counted.get(rec["id"], 0) + 1
                    accepted.append(
                        Accepted(rec["id"], rec["state"], rec["count"], False, item.runbook)
                    )
                else:
                    if rec is not None and not rec.get("new"):
                        to_close.append({"rid": rec["id"]})
                    rid = uuid.uuid4().hex
                    state = "pending" if item.runbook else "unmatched"
                    rec = {"id": rid, "count": 1, "window_ends": now + item.window, "state": state,
                           "new": True}  # fmt: skip
                    if item.window > timedelta(0):
                        known[key] = rec
                    new_records.append({
                        "id": rid, "source": item.source, "fingerprint": item.fingerprint,
                        "runbook": item.runbook, "title": item.title[:500],
                        "open_key": key if item.window > timedelta(0) else None, "state": state,
                        "count": 1, "first_seen": now, "last_seen": now,
                        "window_ends": now + item.window,
                        "incident": incident_of(item, rid),
                        "attempts": 0, "next_attempt_at": now if item.runbook else None,
                        "closed_at": None, "flow_run_id": None, "last_error": None, "_rec": rec,
                    })  # fmt: skip
                    accepted.append(Accepted(rid, state, 1, True, item.runbook))
                rid = rec["id"]
            alert_rows.append({**row, "delivery_id": delivery_id if i == 0 else None,
                               "status": item.status, "fingerprint": item.fingerprint,
                               "record_id": rid})  # fmt: skip
        out.append(accepted)
    if to_close:
        conn.execute(
            records.update().where(records.c.id == sa.bindparam("rid")).values(open_key=None),
            sorted(to_close, key=lambda r: r["rid"]),
        )
    if new_records:
        for r in new_records:  # a record opened and counted in this batch goes in with its count
            r["count"] = r.pop("_rec")["count"]
        conn.execute(records.insert(), new_records)
    if counted:
        conn.execute(
            records.update()
            .where(records.c.id == sa.bindparam("rid"))
            .values(count=records.c.count + sa.bindparam("n"), last_seen=now),
            # in id order, so two writers (PostgreSQL) lock the rows in the same order
            [{"rid": rid, "n": n} for rid, n in sorted(counted.items())],
        )
    if alert_rows:
        conn.execute(alerts.insert(), alert_rows)
    return out


def file_batch(inbox: Inbox, deliveries: list[Delivery]) -> list[Result]:
    """Several deliveries in one transaction; each gets its accepted alerts or :class:`Replay`.
    A batch holding a resolved alert, or one that fails as a whole (another process opened
    the same record), is filed delivery by delivery."""
    if not any(i.status == "resolved" for d in deliveries for i in d[1]):
        try:
            with inbox.errors("record alerts"), inbox.write_transaction() as conn:
                return _file_set_based(conn, deliveries, datetime.now(UTC))
        except (sa.exc.IntegrityError, InboxError):
            pass
    results: list[Result] = []
    for d in deliveries:
        try:
            results.append(inbox.file(*d))
        except (Replay, InboxError) as exc:
            results.append(exc)
    return results


class BatchWriter:
    def __init__(self, inbox: Inbox, max_batch: int = 256) -> None:
        self.inbox = inbox
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Delivery, asyncio.Future[list[Accepted]]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def file(self, delivery: Delivery) -> list[Accepted]:
        """File one delivery; raises what :meth:`Inbox.file` would (Replay, InboxError)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[list[Accepted]] = asyncio.get_running_loop().create_future()
        await self._queue.put((delivery, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await to_thread.run_sync(file_batch, self.inbox, [d for d, _ in batch])
            except Exception as exc:  # handed to every waiter: each request answers for it
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

"""The intake's inbox, in the ledger database: every alert received, and one record per incident.

Two tables next to the lease ledger (same URL, same SQLite WAL / ``BEGIN IMMEDIATE`` engine):

``ladder_intake_alerts``
    One row per alert received, committed before the intake answers 202: source, the delivery
    id (unique: a second delivery with the same ``webhook-id`` / ``Request-ID`` is a replay),
    status, fingerprint, the payload scrubbed of PII, and the record it was counted on.
``ladder_intake_records``
    One row per incident: the runbook the match rules chose (none: ``unmatched``, no run), the
    :class:`~ladder.incident.Incident` to start, how many alerts it has seen, and its dispatch
    state ``pending`` → ``dispatched`` (with the flow run id). ``open_key`` (runbook, source,
    fingerprint) is unique while the record is open, so the same fingerprint inside the
    runbook's dedup window is counted on it, and nothing else; a resolved alert closes it.

Every call is one short transaction; SQL is SQLAlchemy expressions with bound parameters.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ladder.errors import LadderError
from ladder.leases import UtcDateTime, default_url, make_engine
from ladder.secrets import scrub

__all__ = [
    "INTAKE_RECORD_LABEL", "Accepted", "Inbox", "InboxError", "NewAlert", "Record", "Replay",
    "alert_count", "incident_of",
]  # fmt: skip

#: the label that ties a run's incident to its inbox record (the report shows the record's count)
INTAKE_RECORD_LABEL = "intake_record"


def incident_of(item: NewAlert, record_id: str) -> dict[str, Any]:
    """The incident a new record starts: named after the record, and labelled with it."""
    labels = {**item.incident.get("labels", {}), INTAKE_RECORD_LABEL: record_id}
    return {**item.incident, "id": f"{item.source}-{record_id[:12]}", "labels": labels}


def alert_count(record_id: str, url: str | None = None) -> int | None:
    """How many alerts the record has counted; None when the inbox cannot be read."""
    try:
        inbox = Inbox(url)
    except (InboxError, LadderError):
        return None
    try:
        rec = inbox.record(record_id)
    except InboxError:
        return None
    finally:
        inbox.close()
    return rec.count if rec else None


ALERTS = "ladder_intake_alerts"
RECORDS = "ladder_intake_records"
_metadata = sa.MetaData()
records = sa.Table(
    RECORDS,
    _metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("fingerprint", sa.String(200), nullable=False, index=True),
    sa.Column("runbook", sa.String(500), nullable=True),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("open_key", sa.String(800), nullable=True, unique=True),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first_seen", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Column("window_ends", UtcDateTime, nullable=False),
    sa.Column("closed_at", UtcDateTime, nullable=True),
    sa.Column("incident", sa.JSON, nullable=False),
    sa.Column("flow_run_id", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True, index=True),
    sa.Column("last_error", sa.Text, nullable=True),
)
alerts = sa.Table(
    ALERTS,
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("delivery_id", sa.String(250), nullable=True, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("fingerprint", sa.String(200), nullable=True),
    sa.Column("record_id", sa.String(32), nullable=True, index=True),
    sa.Column("payload", sa.JSON, nullable=False),
)


class InboxError(LadderError):
    """The inbox database could not be read or written."""


class Replay(Exception):
    """A delivery id seen before."""


@dataclass(frozen=True)
class Accepted:
    """What happened to one alert: the record it counts on (None for an ignored alert)."""

    record_id: str | None
    state: str  # pending | unmatched | closed | ignored
    count: int
    new: bool
    runbook: str | None


@dataclass(frozen=True)
class Record:
    id: str
    source: str
    fingerprint: str
    runbook: str | None
    title: str
    state: str
    count: int
    first_seen: datetime
    last_seen: datetime
    closed_at: datetime | None
    incident: dict[str, Any]
    flow_run_id: str | None
    attempts: int
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "incident"}
        for k in ("first_seen", "last_seen", "closed_at"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


def _record(row: Any) -> Record:
    return Record(**{k: row._mapping[k] for k in Record.__dataclass_fields__})


@dataclass(frozen=True)
class NewAlert:
    """One alert to file: what :meth:`Inbox.file` needs, already normalized and routed."""

    source: str
    status: str  # firing | resolved | ignored
    fingerprint: str
    title: str
    runbook: str | None
    window: timedelta
    incident: dict[str, Any]  # without its id: the record's id names it
    payload: Any


class Inbox:
    """The inbox in the ledger database at ``url`` (default: the ledger's)."""

    def __init__(self, url: str | None = None) -> None:
        self.engine = make_engine(url or default_url())
        self.url = self.engine.url.render_as_string(hide_password=True)
        self._lock = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        with self.errors("open"), self.engine.begin() as conn:
            _metadata.create_all(conn, checkfirst=True)

    @contextmanager
    def write_transaction(self) -> Iterator[sa.Connection]:
        """A write transaction. On SQLite, writers in this process take turns on a lock rather
        than in SQLite's busy handler, which sleeps up to 100 ms between tries."""
        with self._lock or nullcontext(), self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.IntegrityError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise InboxError(f"intake inbox {self.url}: cannot {doing}: {scrub(reason)}") from None

    # --- writing ---------------------------------------------------------------------------

    def file(
        self,
        source: str,
        items: list[NewAlert],
        delivery_id: str | None,
        payload: Any,
        now: datetime | None = None,
    ) -> list[Accepted]:
        """Record a delivery's alerts and count each on its record, in one transaction (a
        delivery with no alert in it is recorded as ``ignored``).

        Raises :class:`Replay` when ``delivery_id`` was seen before (nothing is written)."""
        now = now or datetime.now(UTC)
        for attempt in range(5):
            try:
                with self.errors("record an alert"), self.write_transaction() as conn:
                    return self._file_delivery(conn, source, items, delivery_id, payload, now)
            except sa.exc.IntegrityError as exc:
                if delivery_id is not None and "delivery_id" in str(exc.orig):
                    raise Replay() from None
                if attempt == 4:  # two writers kept opening the same record (PostgreSQL)
                    raise InboxError(f"intake inbox {self.url}: cannot record an alert") from None
        raise AssertionError("unreachable")

    def _file_delivery(
        self,
        conn: sa.Connection,
        source: str,
        items: list[NewAlert],
        delivery_id: str | None,
        payload: Any,
        now: datetime,
    ) -> list[Accepted]:
        if not items:
            conn.execute(
                alerts.insert().values(
                    received_at=now, source=source, delivery_id=delivery_id,
                    status="ignored", payload=payload,
                )
            )  # fmt: skip
            return []
        return [
            self._file_one(conn, item, now, delivery_id if i == 0 else None)
            for i, item in enumerate(items)
        ]

    def _file_one(
        self, conn: sa.Connection, item: NewAlert, now: datetime, delivery_id: str | None
    ) -> Accepted:
        key = f"{item.runbook or '-'}|{item.source}|{item.fingerprint}"
        row = (
            None
            if item.status != "firing"
            else conn.execute(
                sa.select(records.c.id, records.c.count, records.c.window_ends, records.c.state)
                .where(records.c.open_key == key)
                .with_for_update()
            ).first()
        )
        record_id: str | None = None
        result: Accepted
        if item.status == "resolved":
            open_rows = conn.execute(
                sa.select(records.c.id, records.c.count).where(
                    records.c.source == item.source,
                    records.c.fingerprint == item.fingerprint,
                    records.c.open_key.is_not(None),
                )
            ).all()
            if open_rows:
                conn.execute(
                    records.update()
                    .where(records.c.id.in_([r.id for r in open_rows]))
                    .values(open_key=None, closed_at=now, last_seen=now)
                )
                record_id = open_rows[0].id
            count = open_rows[0].count if open_rows else 0
            result = Accepted(record_id, "closed", count, False, None)
        elif item.status == "ignored":
            result = Accepted(None, "ignored", 0, False, None)
        elif row is not None and row.window_ends > now:
            conn.execute(
                records.update()
                .where(records.c.id == row.id)
                .values(count=records.c.count + 1, last_seen=now)
            )
            record_id = row.id
            result = Accepted(row.id, row.state, row.count + 1, False, item.runbook)
        else:
            if row is not None:  # its window has passed: a new incident
                conn.execute(records.update().where(records.c.id == row.id).values(open_key=None))
            record_id = uuid.uuid4().hex
            state = "pending" if item.runbook else "unmatched"
            incident = incident_of(item, record_id)
            conn.execute(
                records.insert().values(
                    id=record_id, source=item.source, fingerprint=item.fingerprint,
                    runbook=item.runbook, title=item.title[:500],
                    open_key=key if item.window > timedelta(0) else None, state=state, count=1,
                    first_seen=now, last_seen=now, window_ends=now + item.window,
                    incident=incident, attempts=0, next_attempt_at=now if item.runbook else None,
                )
            )  # fmt: skip
            result = Accepted(record_id, state, 1, True, item.runbook)
        conn.execute(
            alerts.insert().values(
                received_at=now, source=item.source, status=item.status,
                delivery_id=delivery_id, fingerprint=item.fingerprint, record_id=record_id,
                payload=item.payload,
            )
        )  # fmt: skip
        return result

    # --- dispatching -----------------------------------------------------------------------

    def due(self, now: datetime | None = None, limit: int = 50) -> list[Record]:
        """Pending records whose next attempt is due, oldest first."""
        now = now or datetime.now(UTC)
        with self.errors("read pending alerts"), self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(records)
                .where(records.c.state == "pending", records.c.next_attempt_at <= now)
                .order_by(records.c.next_attempt_at)
                .limit(limit)
            ).all()
        return [_record(r) for r in rows]

    def next_due(self) -> datetime | None:
        with self.errors("read pending alerts"), self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.min(records.c.next_attempt_at)).where(
                    records.c.state == "pending"
                )
            ).scalar()

    def dispatched(self, record_id: str, flow_run_id: str) -> None:
        with self.errors("record a dispatch"), self.write_transaction() as conn:
            conn.execute(
                records.update()
                .where(records.c.id == record_id)
                .values(state="dispatched", flow_run_id=flow_run_id, next_attempt_at=None,
                        last_error=None, attempts=records.c.attempts + 1)
            )  # fmt: skip

    def retry_later(self, record_id: str, when: datetime, error: str) -> None:
        with self.errors("record a failed dispatch"), self.write_transaction() as conn:
            conn.execute(
                records.update()
                .where(records.c.id == record_id)
                .values(next_attempt_at=when, last_error=scrub(error)[:500],
                        attempts=records.c.attempts + 1)
            )  # fmt: skip

    # --- reading ---------------------------------------------------------------------------

    def records(self, limit: int = 200) -> list[Record]:
        with self.errors("list records"), self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(records).order_by(records.c.last_seen.desc()).limit(limit)
            ).all()
        return [_record(r) for r in rows]

    def record(self, record_id: str) -> Record | None:
        with self.errors("read a record"), self.engine.connect() as conn:
            row = conn.execute(sa.select(records).where(records.c.id == record_id)).first()
        return _record(row) if row else None

    def alert_count(self) -> int:
        """Alerts received (every row of the alerts table)."""
        with self.errors("count alerts"), self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar_one()

"""The inbox on PostgreSQL (a team's ledger): concurrent writers from several threads, each its
own connection, still give one record per fingerprint with every alert counted."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict

from ladder.intake.inbox import Inbox, NewAlert, Replay
from ladder.intake.writer import file_batch

pytestmark = pytest.mark.integration


def _url(dsn: str) -> str:
    p = conninfo_to_dict(dsn)
    return sa.URL.create("postgresql+psycopg", username=p["user"], host=p["host"],
                         port=int(p["port"]), database=p["dbname"]).render_as_string()  # fmt: skip


def _alert(fp: str) -> NewAlert:
    incident = {"title": fp, "source": "datadog", "started_at": datetime.now(UTC).isoformat()}
    return NewAlert("datadog", "firing", fp, fp, "rb.yaml", timedelta(hours=1), incident, {"k": 1})


def test_concurrent_writers_on_postgres(pg_db: str) -> None:
    url = _url(pg_db)
    inboxes = [Inbox(url) for _ in range(4)]  # as if four intake processes shared the ledger
    errors: list[BaseException] = []

    def work(inbox: Inbox, n: int) -> None:
        try:
            for i in range(n):
                file_batch(
                    inbox, [("datadog", [_alert(f"fp{(i + j) % 5}")], None, {}) for j in range(5)]
                )
                inbox.file("datadog", [_alert(f"fp{i % 5}")], None, {})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(inbox, 20)) for inbox in inboxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        records = inboxes[0].records()
        assert sorted(r.fingerprint for r in records) == [f"fp{i}" for i in range(5)]
        assert sum(r.count for r in records) == 4 * 20 * 6 == inboxes[0].alert_count()
        inboxes[0].file("sentry", [_alert("x")], "sentry:once", {})
        with pytest.raises(Replay):
            inboxes[1].file("sentry", [_alert("x")], "sentry:once", {})
    finally:
        for inbox in inboxes:
            inbox.close()

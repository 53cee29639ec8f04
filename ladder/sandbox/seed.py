"""The sandbox's "production" shop: fast, reproducible fake data loaded into its schema.

The schema (DDL, keys, indexes) lives in :mod:`ladder.sandbox.shop_schema`.

The rows are built column-wise by :mod:`ladder.sandbox.shop_data`; here they reach PostgreSQL as
CSV ``COPY`` streams, sent by two writer threads over two connections while the next chunk is
built. Primary keys, indexes and foreign keys are added after the load, then the incident's data
defect is planted:

    the latest order of each incident customer says ``status = 'paid'`` but has no payment row,
    which is the ``nil`` that ``Payment#capture!`` does not expect.

Everywhere else a non-pending order has exactly one payment.
"""

from __future__ import annotations

import io
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ladder.connectors.postgres import connect
from ladder.sandbox.limits import MIN_USERS
from ladder.sandbox.shop_data import Batch, Ownership, Pools, Progress, batches
from ladder.sandbox.shop_schema import TABLES, add_constraints, create_tables, drop_schema

FLIPPER_GATES = (("checkout_v2", "boolean", "true"), ("search_v2", "percentage_of_actors", "25"))


@dataclass(frozen=True)
class SeedResult:
    """What :func:`seed_shop` loaded: row counts, the incident's customers and how long it took."""

    counts: dict[str, int]
    incident_user_ids: list[int]
    slow_user_id: int
    seconds: float


def seed_shop(
    dsn: str,
    users: int = 5000,
    seed: int = 7,
    progress: Progress | None = None,
    *,
    now: datetime | None = None,
) -> SeedResult:
    """Create the shop schema in the empty database ``dsn`` and fill it with ``users`` customers.

    Sizes follow ``users``: accounts ≈ N/3, orders 3N, order items ≈ 6N, payments ≈ orders.
    The same ``seed`` gives the same rows (timestamps are relative to ``now``).
    """
    if users < MIN_USERS:
        raise ValueError(f"the shop needs at least {MIN_USERS} users, got {users}")
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    rng = np.random.default_rng(seed)
    pools = Pools.build(seed)
    plan = Ownership.draw(rng, users)

    counts = dict.fromkeys(TABLES, 0)
    _create_schema(dsn)
    try:
        _load(dsn, batches(rng, pools, plan, now, say), counts)
        with connect(dsn) as conn:
            _small_tables(conn, rng, now)
        say("adding primary keys, indexes and foreign keys")
        add_constraints(dsn)
        with connect(dsn) as conn:
            for table in TABLES:
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({t}, 'id'), max(id)) FROM {i}"
                    ).format(t=sql.Literal(table), i=sql.Identifier(table))
                )
                conn.execute(
                    sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(
                        sql.Identifier(table)
                    )
                )
            counts["payments"] -= _plant_defect(conn, plan.incident_user_ids)
        with connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
    except BaseException:
        drop_schema(dsn)
        raise
    seconds = time.perf_counter() - started
    say(f"seeded {sum(counts.values()):,} rows in {seconds:.1f} s")
    return SeedResult(counts, plan.incident_user_ids, plan.slow_user_id, seconds)


_STREAM_OF = {"users": 0, "order_items": 0, "accounts": 1, "orders": 1, "payments": 1}


def _create_schema(dsn: str) -> None:
    with connect(dsn) as conn:
        create_tables(conn)
        for table in TABLES:  # the load ends with ANALYZE; vacuum can wait until it is over
            conn.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                    sql.Identifier(table)
                )
            )


def _load(dsn: str, chunks: Iterator[Batch], counts: dict[str, int]) -> None:
    """COPY the batches over two connections, each fed by a thread of its own.

    The main thread builds the next chunk while the writers turn chunks into CSV and send them;
    each table always goes through the same connection, so its chunks stay in order.
    """
    with (
        connect(dsn) as first,
        connect(dsn) as second,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy-0") as w0,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy-1") as w1,
    ):
        conns, writers = (first, second), (w0, w1)
        pending: deque[Future[None]] = deque()
        for table, batch in chunks:
            counts[table] += batch.num_rows
            stream = _STREAM_OF[table]
            pending.append(writers[stream].submit(_copy, conns[stream], table, batch))
            while len(pending) > 3:
                pending.popleft().result()
        while pending:
            pending.popleft().result()


def _copy(conn: psycopg.Connection, table: str, batch: pa.Table) -> None:
    buf = io.BytesIO()
    pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
    data = buf.getbuffer()
    stmt = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, batch.column_names))
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        view = memoryview(data)
        for i in range(0, len(view), 1 << 20):
            copy.write(view[i : i + (1 << 20)])


def _small_tables(conn: psycopg.Connection, rng: np.random.Generator, now: datetime) -> None:
    """schema_migrations and Flipper's features and gates (timestamps set: no defaults)."""
    base = datetime(2023, 1, 9, 10, 0, 0)
    days = np.sort(rng.choice(1000, 40, replace=False))
    versions = [
        (base + timedelta(days=int(d), minutes=int(d) % 60)).strftime("%Y%m%d%H%M%S") for d in days
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO schema_migrations (version) VALUES (%s)", [(v,) for v in versions]
        )
        for feature, gate, value in FLIPPER_GATES:
            cur.execute(
                "INSERT INTO flipper_features (key, created_at, updated_at) VALUES (%s, %s, %s)",
                [feature, now, now],
            )
            cur.execute(
                "INSERT INTO flipper_gates (feature_key, key, value, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                [feature, gate, value, now, now],
            )


def _plant_defect(conn: psycopg.Connection, user_ids: list[int]) -> int:
    """Make each incident customer's latest order 'paid' with no payment row; payments removed."""
    rows = conn.execute(
        "SELECT DISTINCT ON (user_id) id FROM orders WHERE user_id = ANY(%s)"
        " ORDER BY user_id, created_at DESC, id DESC",
        [user_ids],
    ).fetchall()
    order_ids = [r[0] for r in rows]
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = ANY(%s)", [order_ids])
    cur = conn.execute("DELETE FROM payments WHERE order_id = ANY(%s)", [order_ids])
    return cur.rowcount

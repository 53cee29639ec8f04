"""Rung 2 on a real-shaped schema (tests/fixtures/schemas/features.sql): partitions, inheritance,
sequences, identity and generated columns, domains, enums, views, materialized views, triggers,
two schemas, Rails polymorphic and STI references. Copied whole and as subsets; the source must
be unchanged byte for byte (checksum of its ``pg_dump``) after every copy."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from cli import app
from ladder.connectors.postgres import connect, create_database, drop_database, find_bindir
from ladder.leases import LeaseLedger
from ladder.procs import run
from ladder.replica.pipeline import create_replica
from ladder.replica.subset import build_plan, load_graph
from ladder.sandbox.cluster import Cluster

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCHEMA = FIXTURES / "schemas" / "features.sql"
POLICY = FIXTURES / "policies" / "features.yaml"
KEY = "test-pseudonym-key-0123456789abcdef"  # tests/integration/conftest.py sets it
pytestmark = pytest.mark.usefixtures("pseudonym_key")
SCHEMAS = ("public", "billing")
TABLES = [
    "public.schema_migrations",
    "public.ar_internal_metadata",
    "public.customers",
    "public.posts",
    "public.comments",
    "public.audit_log",
    "billing.invoices",
    "billing.payments",
    "billing.refunds",
    "public.events",
    "public.api_tokens",
    "public.vehicles",
    "public.trucks",
]


def load_features(dsn: str) -> str:
    """Load the feature schema and its rows into the (empty) database ``dsn``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
    return dsn


@pytest.fixture(scope="module")
def source(pg_cluster: Cluster) -> Iterator[str]:
    dsn = pg_cluster.dsn()
    drop_database(dsn, "features_src")
    create_database(dsn, "features_src")
    yield load_features(pg_cluster.dsn("features_src"))
    drop_database(dsn, "features_src")


@pytest.fixture
def features_db(pg_db: str) -> str:
    """A fresh database holding the feature schema, for tests that change it."""
    return load_features(pg_db)


@pytest.fixture
def untouched(source: str) -> Iterator[None]:
    """The source's full ``pg_dump`` is the same after the test as before it."""
    before = _dump(source)
    yield
    after = _dump(source)
    if hashlib.sha256(after.encode()).digest() != hashlib.sha256(before.encode()).digest():
        diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        pytest.fail("the source database changed:\n" + "\n".join(list(diff)[:40]))


def _dump(dsn: str) -> str:
    """The whole database, schema and rows, as ``pg_dump`` writes it (less the random key of
    its ``\\restrict`` lines, new in every dump since 15.14)."""
    res = run([str(find_bindir() / "pg_dump"), f"--dbname={dsn}"], timeout=120)
    assert res.ok, res.tail(5)
    return re.sub(r"(?m)^\\(un)?restrict .*$", "", res.stdout)


def _replica(source: str, target: str, tmp_path: Path, **kw: Any) -> tuple[Any, list[str]]:
    ledger = LeaseLedger(f"sqlite:///{tmp_path / 'leases.db'}")
    printed: list[str] = []
    try:
        result = create_replica(
            source,
            target,
            POLICY,
            ledger=ledger,
            schemas=SCHEMAS,
            plan_printer=printed.append,
            **kw,
        )
    finally:
        ledger.close()
    return result, printed


def _one(dsn: str, query: str | sql.Composable, params: list[object] | None = None) -> Any:
    with connect(dsn) as conn:
        return conn.execute(query, params or []).fetchone()[0]  # type: ignore[index]


def _rows(dsn: str, query: str) -> list[tuple]:
    with connect(dsn) as conn:
        return conn.execute(query).fetchall()


def _count(dsn: str, table: str) -> int:
    schema, rel = table.split(".")
    with connect(dsn) as conn:
        q = sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, rel))
        if rel in ("payments", "events", "api_tokens"):  # partitioned: ONLY would read nothing
            q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, rel))
        return int(conn.execute(q).fetchone()[0])  # type: ignore[index]


# --- the graph -------------------------------------------------------------------------------


def test_graph_maps_partitions_to_their_root_and_follows_keys_declared_on_them(
    source: str,
) -> None:
    with psycopg.connect(source) as conn:
        graph = load_graph(conn)
    assert "billing.payments" in graph.tables and "billing.payments_2024" not in graph.tables
    assert graph.tables["billing.payments"].partitioned
    assert graph.tables["public.vehicles"].inherited and not graph.tables["public.trucks"].inherited
    parents = {(fk.parent, fk.child_columns) for fk in graph.parents_of("billing.payments")}
    # customer_id: declared on each partition only (one edge); invoice_id: on the parent.
    assert parents == {
        ("public.customers", ("customer_id",)),
        ("billing.invoices", ("invoice_id",)),
    }
    assert [fk.parent for fk in graph.parents_of("billing.refunds")] == ["billing.payments"]
    assert {fk.child for fk in graph.children_of("public.customers")} >= {
        "billing.payments",
        "public.events",
        "public.api_tokens",
        "public.trucks",
        "public.vehicles",
    }


# --- copied whole ----------------------------------------------------------------------------


def test_every_feature_copies_whole(
    source: str, target: str, tmp_path: Path, untouched: None
) -> None:
    result, printed = _replica(source, target, tmp_path, all_tables=True)
    assert set(result.tables) == set(TABLES)
    for table in TABLES:
        assert result.tables[table] == _count(source, table) == _count(target, table), table
    # Partitions hold the same rows as in the source (routed by the root).
    for part in ("billing.payments_2024", "billing.payments_2025", "billing.payments_default"):
        assert _count(target, part) == _count(source, part) > 0, part
    same = [
        "SELECT id, tax FROM billing.invoices ORDER BY id",  # identity values, generated column
        "SELECT id, title_length FROM posts ORDER BY id",
        "SELECT id, name FROM customers ORDER BY id",  # the BEFORE INSERT trigger did not fire
        "SELECT * FROM customer_totals ORDER BY id",  # a view over the partitioned table
        "SELECT * FROM billing.monthly_revenue ORDER BY month",  # materialized views, refreshed
        "SELECT * FROM billing.yearly_revenue ORDER BY year",
        "SELECT id, payload_kg FROM trucks ORDER BY id",
        "SELECT status::text, count(*) FROM posts GROUP BY 1 ORDER BY 1",  # the enum
    ]
    for query in same:
        assert _rows(target, query) == _rows(source, query), query
    assert _one(target, "SELECT count(*) FROM audit_log") == 0  # the AFTER trigger did not fire
    triggers = "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"
    assert _one(target, triggers) == _one(source, triggers) == 2  # and both are there after
    domains = (
        "SELECT count(*) FROM pg_type WHERE typtype = 'd' AND typnamespace = 'public'::regnamespace"
    )
    assert _one(target, domains) == 2
    assert _one(target, "SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'citext'")
    assert not [p for p in printed if p.startswith("error")]
    assert result.warnings == []  # citext is on the target server: nothing left out


@pytest.mark.parametrize(
    "how",
    [{"all_tables": True}, {"seeds": ["customers: id = ANY(:ids)"], "params": {"ids": [1, 5]}}],
    ids=["whole", "subset"],
)
def test_the_first_insert_into_the_copy_gets_a_new_id_from_every_kind_of_sequence(
    source: str, target: str, tmp_path: Path, untouched: None, how: dict[str, Any]
) -> None:
    _replica(source, target, tmp_path, **how)
    top = "SELECT greatest((SELECT max(id) FROM customers), (SELECT max(id) FROM posts))"
    vehicles = _one(target, "SELECT max(id) FROM vehicles")  # trucks' ids too
    assert _one(target, "SELECT max(id) FROM ONLY vehicles") < vehicles
    with connect(target, autocommit=True) as conn:
        copied = conn.execute(top).fetchone()[0]  # type: ignore[index]
        # global_id_seq: shared by customers and posts, owned by neither.
        customer = conn.execute(
            "INSERT INTO customers (name, created_at, updated_at)"
            " VALUES ('x', '2025-01-01', '2025-01-01') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        post = conn.execute(
            "INSERT INTO posts (customer_id, title, created_at) VALUES (1, 't', '2025-01-01')"
            " RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        assert copied < customer < post
        statements = [
            # event_id_seq: non-owned, on a list-partitioned table
            "INSERT INTO events (kind, customer_id) VALUES ('signup', 1)",
            # bigserial on a range-partitioned table (lands in the default partition)
            "INSERT INTO billing.payments (customer_id, paid_on, amount) VALUES (1, '2030-01-01', 1)",
            "INSERT INTO api_tokens (customer_id, token_digest) VALUES (1, 'd')",  # hash partitions
            "INSERT INTO billing.invoices (customer_id, total, number, issued_on)"
            " VALUES (1, 5, 'INV-new', '2025-01-01')",  # identity
            "INSERT INTO vehicles (customer_id, name) VALUES (1, 'car')",  # serial shared by
            "INSERT INTO trucks (customer_id, name, payload_kg) VALUES (1, 't', 1)",  # inheritance
            "INSERT INTO comments (commentable_type, commentable_id, body, created_at)"
            " VALUES ('Post', 1, 'b', '2025-01-01')",
            "INSERT INTO billing.refunds (payment_id, paid_on, amount) VALUES (1, '2023-10-31', 1)",
        ]
        for statement in statements:
            conn.execute(statement)  # a duplicate key would raise
        ids = conn.execute("SELECT id FROM vehicles ORDER BY id DESC LIMIT 2").fetchall()
        assert ids[1][0] > vehicles  # the serial of vehicles is past the trucks' ids too


# --- subsets ---------------------------------------------------------------------------------


def test_a_customer_subset_gets_every_payment_from_every_partition(
    source: str, target: str, tmp_path: Path, untouched: None
) -> None:
    result, _ = _replica(
        source, target, tmp_path, seeds=["customers: id = ANY(:ids)"], params={"ids": [1]}
    )
    assert result.tables["billing.payments"] == 32
    assert _one(target, "SELECT count(*) FROM billing.payments WHERE customer_id = 1") == 32
    assert _one(target, "SELECT count(DISTINCT tableoid) FROM billing.payments") == 3
    refunds = "SELECT count(*) FROM billing.refunds r JOIN billing.payments p USING (paid_on) WHERE p.id = r.payment_id AND p.customer_id = 1"
    assert _one(target, refunds) == _one(source, refunds) > 0
    for table, column in [
        ("public.events", "customer_id"),
        ("public.api_tokens", "customer_id"),
        ("public.vehicles", "customer_id"),
        ("public.trucks", "customer_id"),
        ("billing.invoices", "customer_id"),
        ("public.posts", "customer_id"),
    ]:
        only = "" if table in ("public.events", "public.api_tokens") else "ONLY "
        query = sql.SQL("SELECT count(*) FROM {}{} WHERE {} = 1").format(
            sql.SQL(only), sql.Identifier(*table.split(".")), sql.Identifier(column)
        )
        assert _one(target, query) == _one(source, query) > 0, table
    assert _one(target, "SELECT count(*) FROM ONLY vehicles") == _one(
        source, "SELECT count(*) FROM ONLY vehicles WHERE customer_id = 1"
    )
    # Polymorphic comments of the customer's posts (depth 2) and on the customer itself.
    comments = _rows(target, "SELECT commentable_type, commentable_id FROM comments ORDER BY 1, 2")
    want = _rows(
        source,
        "SELECT commentable_type, commentable_id FROM comments"
        " WHERE (commentable_type = 'Post' AND commentable_id IN (SELECT id FROM posts WHERE customer_id = 1))"
        " OR (commentable_type = 'Customer' AND commentable_id = 1)"
        " OR (commentable_type = 'Billing::Invoice' AND commentable_id IN"
        "     (SELECT id FROM billing.invoices WHERE customer_id = 1))"
        " ORDER BY 1, 2",
    )
    assert comments == want and comments
    assert (
        _one(target, "SELECT sum(n) FROM billing.yearly_revenue") == 32
    )  # refreshed from the copy


def test_comments_of_seeded_posts_come_through_the_polymorphic_reference(
    source: str, target: str, tmp_path: Path, untouched: None
) -> None:
    result, _ = _replica(source, target, tmp_path, seeds=["posts: id IN (13, 14)"], child_depth=1)
    got = _rows(target, "SELECT commentable_type, commentable_id FROM comments ORDER BY 2")
    want = _rows(
        source,
        "SELECT commentable_type, commentable_id FROM comments"
        " WHERE commentable_type = 'Post' AND commentable_id IN (13, 14) ORDER BY 2",
    )
    assert got == want and len(want) >= 2  # not the invoice comments on invoices 13 and 14
    assert result.tables["public.customers"] == 2  # the posts' authors, as parents
    assert "public.comments" in result.tables


def test_sti_seed_on_subclass_rows_pulls_their_polymorphic_children(
    source: str, target: str, tmp_path: Path, untouched: None
) -> None:
    _replica(source, target, tmp_path, seeds=["customers: type = 'VipCustomer'"], child_depth=1)
    assert _rows(target, "SELECT DISTINCT type FROM customers") == [("VipCustomer",)]
    got = _rows(
        target, "SELECT commentable_id FROM comments WHERE commentable_type = 'Customer' ORDER BY 1"
    )
    assert got == [(3,), (6,), (9,), (12,)]


def test_a_virtual_reference_from_the_runbook_and_the_plan_shows_it(
    source: str, tmp_path: Path
) -> None:
    from ladder.replica.subset import VirtualReference

    ref = VirtualReference.model_validate(
        {"from": "billing.refunds(payment_id)", "to": "billing.payments(id)"}
    )
    with psycopg.connect(source) as conn:
        plan = build_plan(
            conn, ["billing.refunds: id = 5"], schemas=SCHEMAS, depth=0, virtual_references=[ref]
        )
    text = plan.render()
    assert "virtual billing.refunds(payment_id) -> billing.payments(id)" in text


# --- killed midway ----------------------------------------------------------------------------

_KILLED = """
import sys, time
from ladder.leases import LeaseLedger
from ladder.replica.pipeline import create_replica

def stall(table, done, total):
    if table == "billing.payments" and done:  # rows sent into the partitioned root, not committed
        print("COPYING", table, flush=True)
        time.sleep(600)

create_replica(sys.argv[1], sys.argv[2], sys.argv[3], all_tables=True, schemas=("public", "billing"),
               ledger=LeaseLedger(sys.argv[4]), progress=stall)
"""


def test_sigkill_while_loading_a_partitioned_table_leaves_the_old_target_and_revert_cleans(
    source: str,
    target: str,
    tmp_path: Path,
    untouched: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _replica(source, target, tmp_path, all_tables=True)
    with connect(target) as conn:
        conn.execute("CREATE TABLE marker (note text)")
    url = f"sqlite:///{tmp_path / 'leases.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, source, target, str(POLICY), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("COPYING billing.payments"), (
            proc.stderr.read() if proc.stderr else ""
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _one(target, "SELECT to_regclass('public.marker')::text") == "marker"
    assert _one(target, "SELECT count(*) FROM billing.payments") == 65
    loading = [lease for lease in _open_leases(url) if "__ladder_" in lease.target]
    assert len(loading) == 1 and _ladder_dbs(source) != []
    monkeypatch.setenv("LADDER_LEDGER_URL", url)
    res = CliRunner().invoke(app, ["leases", "revert", loading[0].id])
    assert res.exit_code == 0, res.output
    assert _ladder_dbs(source) == []


def _open_leases(url: str) -> list[Any]:
    ledger = LeaseLedger(url)
    try:
        return [lease for lease in ledger.list() if lease.state.value == "active"]
    finally:
        ledger.close()


def _ladder_dbs(dsn: str) -> list[str]:
    return [r[0] for r in _rows(dsn, "SELECT datname FROM pg_database") if "__ladder_" in r[0]]

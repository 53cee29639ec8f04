"""Subset plans computed inside real PostgreSQL, on a small Rails-like shop.

The shop has a cycle (accounts.owner_user_id <-> users.account_id), a self-reference
(users.referred_by_id), a composite FK onto a non-primary unique key (order_items(order_id,
shop_id) -> orders(id, shop_id)), a composite primary key (order_items), a table without a key
(tags_users) and a lookup table (currencies).
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ladder.connectors.postgres import (
    create_database,
    drop_database,
    find_bindir,
    with_dbname,
)
from ladder.errors import ConfigError, PostgresError
from ladder.procs import run
from ladder.replica.subset import Graph, Subset, build_plan, execute_plan, load_graph, parse_seed
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.integration

SCHEMA = """
CREATE TABLE currencies (code text PRIMARY KEY, name text NOT NULL);
CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL, owner_user_id bigint);
CREATE TABLE users (
  id bigserial PRIMARY KEY, email text NOT NULL,
  account_id bigint REFERENCES accounts(id),
  referred_by_id bigint REFERENCES users(id));
ALTER TABLE accounts ADD CONSTRAINT accounts_owner_fk
  FOREIGN KEY (owner_user_id) REFERENCES users(id);
CREATE TABLE shops (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE products (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
  id bigint PRIMARY KEY, shop_id bigint NOT NULL REFERENCES shops(id),
  user_id bigint NOT NULL REFERENCES users(id),
  currency_code text NOT NULL REFERENCES currencies(code),
  total numeric(10,2) NOT NULL DEFAULT 0,
  UNIQUE (id, shop_id));
CREATE INDEX ON orders (user_id);
CREATE TABLE order_items (
  order_id bigint NOT NULL, line_no int NOT NULL, shop_id bigint NOT NULL,
  product_id bigint NOT NULL REFERENCES products(id),
  PRIMARY KEY (order_id, line_no),
  FOREIGN KEY (order_id, shop_id) REFERENCES orders(id, shop_id));
CREATE TABLE payments (
  id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id),
  currency_code text NOT NULL REFERENCES currencies(code), amount numeric(10,2) NOT NULL);
CREATE TABLE tags (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE tags_users (
  user_id bigint NOT NULL REFERENCES users(id), tag_id bigint NOT NULL REFERENCES tags(id));
"""

# u2 was referred by u3, who was referred by u4; u5 was referred by u1; u6 shares u1's account,
# which u1 owns. u7, u8 and what only they reach must stay out of a subset seeded on u1, u2.
DATA = """
INSERT INTO currencies VALUES ('USD', 'dollar'), ('EUR', 'euro'), ('JPY', 'yen');
INSERT INTO accounts VALUES (1, 'a1', NULL), (2, 'a2', NULL), (3, 'a3', NULL);
INSERT INTO users (id, email, account_id, referred_by_id) VALUES
  (4, 'u4@x', 3, NULL), (3, 'u3@x', 2, 4), (1, 'u1@x', 1, NULL), (2, 'u2@x', 2, 3),
  (5, 'u5@x', 3, 1), (6, 'u6@x', 1, NULL), (7, 'u7@x', 3, NULL), (8, 'u8@x', NULL, NULL);
SELECT setval('users_id_seq', 8);
UPDATE accounts SET owner_user_id = 1 WHERE id = 1;
UPDATE accounts SET owner_user_id = 3 WHERE id = 2;
INSERT INTO shops VALUES (1, 's1'), (2, 's2'), (3, 's3');
INSERT INTO products VALUES (1, 'p1'), (2, 'p2'), (3, 'p3');
INSERT INTO orders (id, shop_id, user_id, currency_code) VALUES
  (1, 1, 1, 'USD'), (2, 2, 1, 'EUR'), (3, 1, 2, 'USD'), (4, 1, 7, 'USD'), (5, 2, 5, 'EUR'),
  (6, 3, 8, 'JPY');
INSERT INTO order_items VALUES
  (1, 1, 1, 1), (1, 2, 1, 2), (2, 1, 2, 2), (3, 1, 1, 1), (4, 1, 1, 3), (5, 1, 2, 1);
INSERT INTO payments VALUES (1, 1, 'USD', 10), (2, 3, 'USD', 20), (3, 4, 'USD', 30);
INSERT INTO tags VALUES (1, 't1'), (2, 't2'), (3, 't3');
INSERT INTO tags_users VALUES (1, 1), (2, 2), (7, 3), (6, 3);
ANALYZE;
"""

TWO_USERS = ["users: id = ANY(:user_ids)"]
PARAMS = {"user_ids": [1, 2]}

# Seeded on u1, u2 with the default depth 2 and currencies whole (worked out by hand).
EXPECTED = {
    "public.users": {
        1,
        2,
        3,
        4,
        5,
        6,
    },  # seeds, u5 (referred by u1), u6 (in u1's account), u3, u4 (referrers)
    "public.accounts": {1, 2, 3},  # a1 owned by u1; a2, a3 referenced by copied users
    "public.orders": {1, 2, 3, 5},  # of u1, u2 (depth 1) and u5 (depth 2)
    "public.order_items": {(1, 1), (1, 2), (2, 1), (3, 1)},  # of depth-1 orders; o5's is depth 3
    "public.payments": {1, 2},
    "public.shops": {1, 2},
    "public.products": {1, 2},
    "public.tags": {1, 2},
    "public.tags_users": {(1, 1), (2, 2)},  # u6's tag would be depth 3
    "public.currencies": {"USD", "EUR", "JPY"},
}


@pytest.fixture
def shop(pg_db: str) -> str:
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(DATA)
    return pg_db


@pytest.fixture
def conn(shop: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(shop) as c:
        yield c


def copied(conn: psycopg.Connection, subset: Subset, table: str) -> set[Any]:
    """The rows ``copy_query`` selects, as keys (first column, or the key tuple)."""
    key = subset.plan.graph.tables[table].key
    cols = [c.name for c in subset.plan.graph.tables[table].columns]
    pick = [cols.index(k) for k in key] if key else list(range(len(cols)))
    rows = conn.execute(subset.copy_query(table)).fetchall()
    out = {r[pick[0]] if len(pick) == 1 else tuple(r[i] for i in pick) for r in rows}
    assert len(out) == len(rows), f"{table}: copy query returned duplicate rows"
    return out


def test_two_users_pull_orders_items_and_every_parent(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, TWO_USERS, whole_tables=["currencies"], params=PARAMS)
    with execute_plan(conn, plan, PARAMS) as subset:
        assert subset.snapshot_id
        got = {t: copied(conn, subset, t) for t in subset.order}
        counts = dict(subset.counts)
    assert got == EXPECTED
    assert counts == {t: len(v) for t, v in EXPECTED.items()}
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # rolled back


def test_plan_is_printable_before_execution_and_counts_after(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, TWO_USERS, whole_tables=["currencies"])  # no params yet
    text = plan.render()
    assert "seed (id = ANY(:user_ids))" in text and "whole table" in text
    assert "child-of public.orders via order_items_order_id_shop_id_fkey (depth 2)" in text
    rows = {r["table"]: r for r in plan.describe()}
    assert rows["public.currencies"]["estimated_rows"] == 3
    assert rows["public.users"]["estimated_rows"] is None  # depends on params not given yet
    estimated = build_plan(conn, TWO_USERS, whole_tables=["currencies"], params=PARAMS)
    users = estimated.table("public.users").estimated_rows
    assert users is not None and 2 <= users <= 8  # EXPLAIN of the seed, bounded by the table
    with execute_plan(conn, plan, PARAMS) as subset:
        after = {r["table"]: r["actual_rows"] for r in subset.describe()}
        assert "rows" in subset.render().splitlines()[1]
    assert after == {t: len(v) for t, v in EXPECTED.items()}


def test_load_order_and_the_subset_loads_with_every_foreign_key_satisfied(
    conn: psycopg.Connection, shop: str
) -> None:
    """What the loader does: COPY each table in plan order into an empty copy of the schema."""
    plan = build_plan(conn, TWO_USERS, whole_tables=["currencies"])
    assert [fk.name for fk in plan.late_fks] == ["accounts_owner_fk"]  # the cycle
    order = plan.order
    for fk in plan.graph.fks:
        if not fk.self_reference and fk not in plan.late_fks:
            assert order.index(fk.parent) < order.index(fk.child), fk
    target = f"target_{uuid.uuid4().hex[:8]}"
    create_database(shop, target)
    try:
        with (
            psycopg.connect(with_dbname(shop, target), autocommit=True) as dst,
            execute_plan(conn, plan, PARAMS) as subset,
        ):
            dst.execute(SCHEMA)
            dst.execute("SET session_replication_role = replica")  # the cycle: check FKs after
            for table in subset.order:
                t = plan.graph.tables[table]
                out = sql.SQL("COPY ({}) TO STDOUT").format(subset.copy_query(table))
                into = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(t.schema, t.relname))
                with conn.cursor().copy(out) as src, dst.cursor().copy(into) as sink:
                    for chunk in src:
                        sink.write(chunk)
            dst.execute("SET session_replication_role = DEFAULT")
            assert orphans(dst, load_graph(dst)) == []
            loaded = dst.execute("SELECT count(*) FROM order_items").fetchone()
            assert loaded == (len(EXPECTED["public.order_items"]),)
    finally:
        drop_database(shop, target)


def orphans(conn: psycopg.Connection, graph: Graph) -> list[str]:
    """Foreign keys with a row whose (non-NULL) reference has no parent row."""
    bad = []
    for fk in graph.fks:
        c, p = graph.tables[fk.child], graph.tables[fk.parent]
        query = sql.SQL(
            "SELECT count(*) FROM {c} AS c WHERE {notnull} AND NOT EXISTS "
            "(SELECT 1 FROM {p} AS p WHERE ({pcols}) = ({ccols}))"
        ).format(
            c=sql.Identifier(c.schema, c.relname),
            p=sql.Identifier(p.schema, p.relname),
            notnull=sql.SQL(" AND ").join(
                sql.SQL("{} IS NOT NULL").format(sql.Identifier("c", n)) for n in fk.child_columns
            ),
            pcols=sql.SQL(", ").join(sql.Identifier("p", n) for n in fk.parent_columns),
            ccols=sql.SQL(", ").join(sql.Identifier("c", n) for n in fk.child_columns),
        )
        row = conn.execute(query).fetchone()
        if row and row[0]:
            bad.append(f"{fk.name}: {row[0]} orphan rows")
    return bad


def test_composite_fk_onto_a_unique_key_both_ways(conn: psycopg.Connection) -> None:
    # Down: an order's items through (order_id, shop_id) -> orders(id, shop_id).
    plan = build_plan(conn, ["orders: id = :order_id"], depth=1)
    with execute_plan(conn, plan, {"order_id": 1}) as subset:
        assert copied(conn, subset, "public.order_items") == {(1, 1), (1, 2)}
        assert subset.keys("order_items") == [(1, 1), (1, 2)]
    # Up: one item (composite primary key) pulls its order through the composite FK.
    plan = build_plan(conn, ["order_items: order_id = 5 AND line_no = 1"], depth=0)
    with execute_plan(conn, plan) as subset:
        assert copied(conn, subset, "public.orders") == {5}
        assert copied(conn, subset, "public.users") == {5, 1}  # u5 and its referrer u1
        assert copied(conn, subset, "public.products") == {1}
        assert "public.payments" not in subset.order


def test_self_reference_pulls_the_whole_referrer_chain(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, ["users: id = 2"], depth=0)
    with execute_plan(conn, plan) as subset:
        assert copied(conn, subset, "public.users") == {2, 3, 4}  # u2 <- u3 <- u4
        assert copied(conn, subset, "public.accounts") == {2, 3}


def test_cycle_between_accounts_and_users_reaches_a_fixpoint(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, ["accounts: id = 2"], depth=0)
    with execute_plan(conn, plan) as subset:
        # a2 -> owner u3 -> referrer u4 -> account a3 (owner NULL); u3's account is a2 again.
        assert copied(conn, subset, "public.accounts") == {2, 3}
        assert copied(conn, subset, "public.users") == {3, 4}


def test_caps_limit_children_but_never_required_parents(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, TWO_USERS, caps={"orders": 1})
    with execute_plan(conn, plan, PARAMS) as subset:
        assert copied(conn, subset, "public.orders") == {1}  # lowest key first
        assert copied(conn, subset, "public.order_items") == {(1, 1), (1, 2)}
        assert copied(conn, subset, "public.payments") == {1}
    plan = build_plan(conn, TWO_USERS, caps={"accounts": 0})
    with execute_plan(conn, plan, PARAMS) as subset:
        # a1 is no longer a child of u1, so u6 (in a1) is not reached; but every account a copied
        # user references is still copied: 3 rows despite the cap of 0.
        assert copied(conn, subset, "public.users") == {1, 2, 3, 4, 5}
        assert subset.counts["public.accounts"] == 3
    assert "[cap 0]" in plan.render()


def test_whole_lookup_table_is_copied_entirely_with_a_plain_select(
    conn: psycopg.Connection,
) -> None:
    plan = build_plan(conn, ["users: id = 8"], depth=0, whole_tables=["public.currencies"])
    with execute_plan(conn, plan) as subset:
        query = subset.copy_query("currencies").as_string(conn)
        assert query == 'SELECT "_c"."code", "_c"."name" FROM "public"."currencies" AS _c'
        assert copied(conn, subset, "public.currencies") == {"USD", "EUR", "JPY"}
        assert copied(conn, subset, "public.users") == {8}


def test_all_tables_copies_every_table_whole(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, all_tables=True)
    assert all(t.whole for t in plan.tables) and len(plan.tables) == 10
    with execute_plan(conn, plan) as subset:
        assert subset.counts["public.users"] == 8
        assert subset.counts["public.order_items"] == 6
        assert copied(conn, subset, "public.tags_users") == {(1, 1), (2, 2), (7, 3), (6, 3)}
        assert "WHERE" not in subset.copy_query("orders").as_string(conn)


def test_copy_query_columns_and_unknown_table(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, ["users: id = 1"], depth=0)
    with execute_plan(conn, plan) as subset:
        rows = conn.execute(subset.copy_query("users", columns=["email", "id"])).fetchall()
        assert rows == [("u1@x", 1)]
        with pytest.raises(KeyError, match=r"public\.orders is not in the subset"):
            subset.copy_query("public.orders")


def test_copiers_on_other_connections_see_the_same_snapshot(
    conn: psycopg.Connection, shop: str
) -> None:
    plan = build_plan(conn, TWO_USERS)
    with (
        execute_plan(conn, plan, PARAMS) as subset,
        psycopg.connect(shop, autocommit=True) as writer,
        psycopg.connect(shop) as copier,
    ):
        writer.execute("DELETE FROM order_items WHERE order_id = 1 AND line_no = 2")
        writer.execute("UPDATE users SET email = 'changed@x' WHERE id = 1")
        copier.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        copier.execute(
            sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(subset.snapshot_id))
        )
        assert copied(copier, subset, "public.order_items") == EXPECTED["public.order_items"]
        emails = copier.execute(subset.copy_query("users", columns=["email"])).fetchall()
        assert ("u1@x",) in emails and ("changed@x",) not in emails
        now = writer.execute("SELECT count(*) FROM order_items").fetchone()
        assert now == (5,)


# ---------------------------------------------------------------- safety


def test_param_value_is_bound_never_pasted(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, ["users: id = :user_id"], depth=0)
    with (
        pytest.raises(PostgresError, match='invalid input syntax for type bigint: "1; DROP'),
        execute_plan(conn, plan, {"user_id": "1; DROP TABLE users"}),
    ):
        pass
    assert conn.execute("SELECT count(*) FROM users").fetchone() == (8,)


def test_condition_with_a_second_statement_is_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(ConfigError, match=r"single SQL expression: ';' is not allowed"):
        parse_seed("users: id = 1; DROP TABLE users")
    with pytest.raises(ConfigError, match="single SQL expression"):
        build_plan(conn, ["users: id = 1; DROP TABLE users"])
    assert conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone() == (True,)


def test_a_hostile_but_valid_condition_runs_read_only(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, ["users: id IN (SELECT id FROM users) OR pg_sleep(0) IS NULL"], depth=0)
    with execute_plan(conn, plan) as subset:
        assert subset.counts["public.users"] == 8
    plan = build_plan(conn, ["users: id = (SELECT nextval('users_id_seq'))"], depth=0)
    with (
        pytest.raises(
            PostgresError, match=r"cannot execute nextval\(\) in a read-only transaction"
        ),
        execute_plan(conn, plan),
    ):
        pass
    conn.rollback()
    assert conn.execute("SELECT last_value FROM users_id_seq").fetchone() == (8,)


def test_missing_param_is_named(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, TWO_USERS)
    with (
        pytest.raises(ConfigError, match=r"needs parameter\(s\) user_ids .*supplied: user_id\)"),
        execute_plan(conn, plan, {"user_id": 1}),
    ):
        pass
    with pytest.raises(ConfigError, match="needs parameter"):
        build_plan(conn, TWO_USERS, params={})


def test_bad_seeds_fail_clearly(conn: psycopg.Connection) -> None:
    with pytest.raises(ConfigError, match="unknown table 'customers'"):
        build_plan(conn, ["customers: id = 1"])
    with pytest.raises(ConfigError, match="no primary key or NOT NULL unique index"):
        build_plan(conn, ["tags_users: user_id = 1"])
    with pytest.raises(ConfigError, match="cannot parse seed"):
        build_plan(conn, ["users id = 1"])
    with pytest.raises(PostgresError, match='column "nope" does not exist'):
        build_plan(conn, ["users: nope = 1"], depth=0, params={})


def test_connection_with_an_open_transaction_is_refused(conn: psycopg.Connection) -> None:
    plan = build_plan(conn, ["users: id = 1"], depth=0)
    conn.execute("SELECT 1")  # psycopg opened a transaction
    with (
        pytest.raises(PostgresError, match=r"no open transaction .*conn.rollback\(\)"),
        execute_plan(conn, plan),
    ):
        pass


# ---------------------------------------------------------------- hot standby


@pytest.fixture
def standby(pg_cluster: Cluster, shop: str) -> Iterator[Cluster]:
    """A streaming hot-standby replica of the test cluster (pg_basebackup -R)."""
    directory = Path(tempfile.mkdtemp(prefix="ladder-test-standby-"))
    argv = [
        str(find_bindir() / "pg_basebackup"),
        "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", "postgres",
        "-D", str(directory / "data"), "-R", "-X", "stream", "-c", "fast", "--no-sync",
    ]  # fmt: skip
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        pw = pwd.getpwnam("postgres")
        os.chown(directory, pw.pw_uid, pw.pw_gid)
        argv = ["runuser", "-u", "postgres", "--", *argv]
    result = run(argv, timeout=120)
    assert result.ok, result.describe()
    replica = Cluster(directory)
    replica.start()
    try:
        yield replica
    finally:
        replica.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_subset_runs_on_a_hot_standby(standby: Cluster, shop: str) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(shop)["dbname"]
    with psycopg.connect(standby.dsn(str(dbname)), autocommit=True) as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        plan = build_plan(replica, TWO_USERS, whole_tables=["currencies"], params=PARAMS)
        with execute_plan(replica, plan, PARAMS) as subset:
            got = {t: copied(replica, subset, t) for t in subset.order}
    assert got == EXPECTED

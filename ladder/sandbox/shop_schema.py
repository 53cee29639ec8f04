"""The sandbox shop's schema: a Rails-like DDL, its tables, and the keys and indexes added after a load.

``ladder.sandbox.seed`` creates the tables with :func:`create_tables`, loads them, and then calls
:func:`add_constraints`; :func:`drop_schema` empties the database again after a failed seed.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql

from ladder.connectors.postgres import connect
from ladder.errors import SandboxError

__all__ = [
    "ALL_TABLES", "FOREIGN_KEYS", "SCHEMA", "TABLES", "add_constraints", "create_tables",
    "drop_schema",
]  # fmt: skip

TABLES = ("users", "accounts", "orders", "order_items", "payments")
ALL_TABLES = (*TABLES, "schema_migrations", "flipper_features", "flipper_gates")

SCHEMA = """
CREATE TABLE schema_migrations (version character varying NOT NULL PRIMARY KEY);
CREATE TABLE users (
    id bigserial NOT NULL,
    email character varying NOT NULL,
    first_name character varying,
    last_name character varying,
    phone character varying,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL,
    last_sign_in_ip inet,
    notes text,
    preferences jsonb DEFAULT '{}'::jsonb NOT NULL
);
CREATE TABLE accounts (
    id bigserial NOT NULL,
    user_id bigint NOT NULL,
    plan character varying NOT NULL,
    company_name character varying,
    billing_address text,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE TABLE orders (
    id bigserial NOT NULL,
    user_id bigint NOT NULL,
    account_id bigint,
    status character varying NOT NULL,
    total_cents bigint DEFAULT 0 NOT NULL,
    currency character varying DEFAULT 'USD' NOT NULL,
    shipping_address text,
    notes text,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE TABLE order_items (
    id bigserial NOT NULL,
    order_id bigint NOT NULL,
    sku character varying NOT NULL,
    product_name character varying NOT NULL,
    quantity integer NOT NULL,
    unit_price_cents bigint NOT NULL
);
CREATE TABLE payments (
    id bigserial NOT NULL,
    order_id bigint NOT NULL,
    amount_cents bigint NOT NULL,
    card_brand character varying,
    card_last4 character varying,
    status character varying NOT NULL,
    processor_response jsonb,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE TABLE flipper_features (
    id bigserial PRIMARY KEY,
    key character varying NOT NULL,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);
CREATE UNIQUE INDEX index_flipper_features_on_key ON flipper_features (key);
CREATE TABLE flipper_gates (
    id bigserial PRIMARY KEY,
    feature_key character varying NOT NULL,
    key character varying NOT NULL,
    value text,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);
CREATE UNIQUE INDEX index_flipper_gates_on_feature_key_and_key_and_value
    ON flipper_gates (feature_key, key, value);
"""

FOREIGN_KEYS = (  # largest first: they are validated two at a time
    ("order_items", "order_id", "orders"),
    ("payments", "order_id", "orders"),
    ("orders", "user_id", "users"),
    ("orders", "account_id", "accounts"),
    ("accounts", "user_id", "users"),
)


def create_tables(conn: psycopg.Connection) -> None:
    """Run :data:`SCHEMA` on ``conn``; refuse a database that already has the shop's tables."""
    exists = conn.execute("SELECT to_regclass('public.users') IS NOT NULL").fetchone()
    if exists and exists[0]:
        raise SandboxError("the target database already has a users table: seed an empty one")
    conn.execute(SCHEMA)


def drop_schema(dsn: str) -> None:
    """Undo a failed seed, so that the database is empty again."""
    with connect(dsn, autocommit=True) as conn:
        for table in reversed(ALL_TABLES):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(table)))


def add_constraints(dsn: str) -> None:
    """Primary keys, the unique email, an index on every foreign key column, the foreign keys.

    Two connections share the work: first the indexes table by table, then the foreign keys,
    added ``NOT VALID`` and validated side by side (validation locks do not conflict).
    """
    per_table: dict[str, list[sql.Composable]] = {
        t: [
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (id)").format(
                sql.Identifier(t), sql.Identifier(f"{t}_pkey")
            )
        ]
        for t in TABLES
    }
    per_table["users"].append(sql.SQL("CREATE UNIQUE INDEX index_users_on_email ON users (email)"))
    for table, column, _parent in FOREIGN_KEYS:
        per_table[table].append(
            sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(f"index_{table}_on_{column}"),
                sql.Identifier(table),
                sql.Identifier(column),
            )
        )
    largest_first = ["order_items", "orders", "payments", "users", "accounts"]
    _in_parallel(dsn, [per_table[t] for t in largest_first])
    with connect(dsn) as conn:
        for table, column, parent in FOREIGN_KEYS:
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} (id) NOT VALID"
                ).format(
                    sql.Identifier(table),
                    sql.Identifier(_fk_name(table, column)),
                    sql.Identifier(column),
                    sql.Identifier(parent),
                )
            )
    validations = [
        [
            sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(_fk_name(table, column))
            )
        ]
        for table, column, _parent in FOREIGN_KEYS
    ]
    _in_parallel(dsn, validations)


def _in_parallel(dsn: str, jobs: list[list[sql.Composable]], workers: int = 2) -> None:
    """Run each job's statements in order on a connection of its own, ``workers`` at a time."""

    def run_job(statements: list[sql.Composable]) -> None:
        with connect(dsn, autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute("SET max_parallel_maintenance_workers = 0")
            conn.execute("SET max_parallel_workers_per_gather = 0")
            for statement in statements:
                conn.execute(statement)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ddl") as pool:
        for fut in [pool.submit(run_job, job) for job in jobs]:
            fut.result()


def _fk_name(table: str, column: str) -> str:
    """Rails' style of foreign key name: ``fk_rails_`` + 10 hex digits of a hash."""
    return "fk_rails_" + hashlib.sha256(f"{table}_{column}_fk".encode()).hexdigest()[:10]

"""The gate trusts only foreign keys PostgreSQL validated; any other is checked row by row."""

from __future__ import annotations

import psycopg

from ladder.replica.gate import run_gate
from ladder.replica.subset.graph import ForeignKey

FK = ForeignKey(
    "orders_user_fk", "public.orders", ("user_id",), "public.users", ("id",), nullable=True
)


def _schema(dsn: str, *, validated: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id bigint PRIMARY KEY)")
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint)")
        conn.execute("INSERT INTO users VALUES (1)")
        conn.execute("INSERT INTO orders VALUES (10, 1), (11, 99), (12, NULL)")
        if validated:
            conn.execute("DELETE FROM orders WHERE id = 11")
        conn.execute(
            "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) "
            "REFERENCES users (id)" + ("" if validated else " NOT VALID")
        )


def test_an_unvalidated_foreign_key_with_an_orphan_fails_the_gate(pg_db: str) -> None:
    _schema(pg_db, validated=False)
    result = run_gate(pg_db, [], [FK], {"public.users": 1, "public.orders": 3}, {})
    (check,) = [c for c in result.checks if c.check == "foreign_key_resolves"]
    assert check.failures == 1 and not check.passed
    assert not result.passed
    assert "foreign_key_resolves" in result.message()


def test_a_validated_constraint_is_proof_enough(pg_db: str) -> None:
    _schema(pg_db, validated=True)
    result = run_gate(pg_db, [], [FK], {"public.users": 1, "public.orders": 2}, {})
    (check,) = [c for c in result.checks if c.check == "foreign_key_resolves"]
    assert check.failures == 0 and "validated constraint" in check.column
    assert result.passed

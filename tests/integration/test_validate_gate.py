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


def test_the_gate_fails_on_every_pii_shape_left_in_free_text(pg_db: str) -> None:
    """Issue 8: the phones, cards, ids, IBANs, IPs and tokens the scrubbers replace fail the gate
    when they survive in a text or json column; scrubbed text and ordinary numbers pass."""
    from ladder.replica.gate import GateColumn

    leaks = {
        "no_phone_number": "call 828-323-8430x255",
        "no_card_number": "card on file 8939 6305 6951 6383",
        "no_national_id": "ssn 578-24-2407",
        "no_iban": "pay to DE89 3704 0044 0532 0130 00",
        "no_ip_address": "from 81.2.69.142",
        "no_token": "key sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "no_email_outside_reserved": "mail ann@gmail.com",
    }
    clean = ["order R123456789 at 2026-11-25T10:00:01Z", "call [PHONE]", "", "   "]
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text, doc jsonb)")
        for text in [*leaks.values(), *clean]:
            conn.execute(
                "INSERT INTO notes (body, doc) VALUES (%s, %s)",
                [text, psycopg.types.json.Jsonb({"note": text})],
            )
    columns = [
        GateColumn("public.notes", "body", "text", "text"),
        GateColumn("public.notes", "doc", "json", "jsonb"),
    ]
    result = run_gate(pg_db, columns, [], {"public.notes": len(leaks) + len(clean)}, {})
    assert not result.passed
    failed = {(c.column, c.check): c.failures for c in result.failed}
    for column in ("body", "doc"):
        for check in leaks:
            assert failed.get((column, check), 0) >= 1, (column, check, failed)
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("DELETE FROM notes WHERE id <= %s", [len(leaks)])
    assert run_gate(pg_db, columns, [], {"public.notes": len(clean)}, {}).passed

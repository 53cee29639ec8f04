"""Known values across tables (issue 8 part 3): the originals of transformed columns are found in
the free text and JSON of other tables of the same copy and replaced by their column's
pseudonym; blanks stay blank; the gate fails when a known value survives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ladder.connectors.postgres import connect
from ladder.errors import ValidationGateError
from ladder.leases import LeaseLedger
from ladder.replica.pipeline import create_replica

KEY = "test-pseudonym-key-0123456789abcdef"  # tests/integration/conftest.py sets it
pytestmark = pytest.mark.usefixtures("pseudonym_key")


def _seed(dsn: str) -> None:
    with connect(dsn, autocommit=True) as conn:
        # orders first and with the smaller ids: nothing about the copy order helps
        conn.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, notes text, doc jsonb, memo text)"
        )
        conn.execute(
            "CREATE TABLE users (id bigint PRIMARY KEY, name text, email text,"
            " address2 varchar(80))"
        )
        conn.execute(
            "INSERT INTO users VALUES (1, 'Ann Smith', 'ann.smith@corp.io', ''),"
            " (2, 'Bob Jones', 'bob@corp.io', '   '), (3, 'Will', 'w@corp.io', 'Flat 3')"
        )
        conn.execute(
            "INSERT INTO orders VALUES"
            " (1, 'Call Ann Smith about the refund', '{\"note\": \"Ann Smith called\"}', 'x'),"
            " (2, 'bob jones wrote from ann.smith@corp.io', '{\"to\": [\"Bob Jones\"]}', ''),"
            " (3, 'Will ship Monday; Annabel Smithers too', '{\"n\": 1}', '   '),"
            " (4, '', NULL, 'ok')"
        )


def _policy(tmp_path: Path, memo: str) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "key: {env: LADDER_PSEUDONYM_KEY}\ntables:\n"
        "  users: {id: keep, name: name, email: email, address2: address}\n"
        f"  orders: {{id: keep, notes: text, doc: json, memo: {memo}}}\n"
    )
    return policy


def _rows(dsn: str, query: str) -> list[tuple]:
    with connect(dsn) as conn:
        return conn.execute(query).fetchall()


def test_known_values_are_replaced_by_their_columns_pseudonym_across_tables(
    pg_db: str, target: str, ledger: LeaseLedger, tmp_path: Path
) -> None:
    _seed(pg_db)
    result = create_replica(
        pg_db, target, _policy(tmp_path, "keep"), all_tables=True, ledger=ledger
    )
    names = dict(_rows(target, "SELECT id, name FROM users"))
    ann, bob = names[1], names[2]
    assert ann != "Ann Smith" and bob != "Bob Jones"
    notes = dict(_rows(target, "SELECT id, notes FROM orders"))
    assert notes[1] == f"Call {ann} about the refund"
    assert notes[2] == f"{bob} wrote from [EMAIL]"  # lower case found too; the email scrubbed
    assert notes[3] == "Will ship Monday; Annabel Smithers too"  # common word, inside words
    assert notes[4] == ""
    docs = dict(_rows(target, "SELECT id, doc::text FROM orders"))
    assert json.loads(docs[1]) == {"note": f"{ann} called"}
    assert json.loads(docs[2]) == {"to": [bob]}
    assert _rows(target, "SELECT id, address2 FROM users ORDER BY id")[:2] == [(1, ""), (2, "   ")]
    assert dict(_rows(target, "SELECT id, memo FROM orders"))[3] == "   "
    checks = {(c.check, c.column) for c in result.validation.checks}
    assert ("no_known_value", "notes") in checks and ("no_known_value", "doc") in checks


def test_a_known_value_left_in_a_kept_text_column_fails_the_gate(
    pg_db: str, target: str, ledger: LeaseLedger, tmp_path: Path
) -> None:
    _seed(pg_db)
    with connect(pg_db, autocommit=True) as conn:
        conn.execute("UPDATE orders SET memo = 'ask Bob Jones' WHERE id = 4")
    with pytest.raises(ValidationGateError, match=r"no_known_value failed on public\.orders\.memo"):
        create_replica(pg_db, target, _policy(tmp_path, "keep"), all_tables=True, ledger=ledger)

"""Policies against a real PostgreSQL: the catalog reader, `ladder policy suggest|check`, and a
sanitized round trip through COPY."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cli import app
from ladder.connectors import pg_catalog as catalog
from ladder.connectors.postgres import connect
from ladder.sanitize.policy import load_policy

pytestmark = pytest.mark.integration

KEY_VAR = "LADDER_PSEUDONYM_KEY"
PLANTED = ["ann.lee@corp.com", "+1 415 555 2671", "198.18.0.7", "bob@corp.com", "415-555-9876"]

SCHEMA = """
CREATE DOMAIN email_address AS text;
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    full_name text,
    contact email_address,
    phone varchar(40),
    last_sign_in_ip inet,
    preferences jsonb,
    notes text,
    encrypted_password text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    email_lower text GENERATED ALWAYS AS (lower(email)) STORED
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id bigint REFERENCES users,
    total_cents integer NOT NULL,
    status text NOT NULL
);
CREATE VIEW active_users AS SELECT * FROM users;
CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE SCHEMA audit;
CREATE TABLE audit.logins (id bigint PRIMARY KEY, ip inet);
"""


@pytest.fixture
def shop(pg_db: str) -> str:
    with connect(pg_db) as conn:
        conn.execute(SCHEMA)
        for i in range(40):
            conn.execute(
                "INSERT INTO users (email, full_name, contact, phone, last_sign_in_ip, preferences, notes)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    f"user{i}@corp.com" if i else PLANTED[0],
                    f"Person {i}",
                    f"c{i}@corp.com",
                    PLANTED[1] if i == 0 else f"+1 212 555 {1000 + i}",
                    PLANTED[2] if i == 0 else f"10.0.0.{i}",
                    json.dumps({"email": PLANTED[3], "theme": "dark"}),
                    f"called {PLANTED[4]}" if i % 2 else "prefers mail",
                ],
            )
            conn.execute(
                "INSERT INTO orders (user_id, total_cents, status) VALUES (%s, %s, 'paid')",
                [i + 1, 100 * i],
            )
    return pg_db


def test_the_catalog_lists_tables_and_their_keys(shop):
    with connect(shop) as conn:
        assert catalog.list_tables(conn) == ["public.events", "public.orders", "public.users"]
        assert "audit.logins" in catalog.list_tables(conn, ["public", "audit"])
        cols = catalog.columns(conn, ["users", "audit.logins", "no_such_table"])
    assert set(cols) == {"public.users", "audit.logins"}
    users = {c.name: c for c in cols["public.users"]}
    assert list(users)[:3] == ["id", "email", "full_name"]
    assert "email_lower" not in users  # generated: the target computes it
    assert users["id"].is_pk and users["id"].is_unique and not users["id"].nullable
    assert users["email"].is_unique and not users["email"].is_pk and not users["email"].nullable
    assert not users["full_name"].is_unique and users["full_name"].nullable
    assert (users["phone"].type, users["phone"].category) == ("character varying(40)", "S")
    assert (users["last_sign_in_ip"].type, users["last_sign_in_ip"].category) == ("inet", "I")
    assert users["preferences"].type == "jsonb"
    assert users["contact"].category == "S"  # a domain reports its base type's category


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_a_suggested_policy_guesses_well_and_then_checks_clean(shop, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VAR, "k" * 32)
    draft = tmp_path / "policy.yaml"
    code, out = run_cli("policy", "suggest", "--source", shop, "--output", str(draft))
    assert code == 0, out
    text = draft.read_text()
    for line in (
        "id:",
        "email: email",
        "full_name: name",
        "contact: email",
        "phone: phone",
        "last_sign_in_ip: ip",
        "preferences: json",
        "notes: text",
        "encrypted_password: hash",
        "created_at: keep",
    ):
        assert f"    {line}" in text, line
    assert "key: {env: LADDER_PSEUDONYM_KEY}" in text
    assert all(line.split("#")[1].strip() for line in text.splitlines() if line.startswith("    "))
    for value in PLANTED:
        assert value not in text, "a sampled value leaked into the draft"
    assert "password" not in text.split("\n", 1)[0]

    code, out = run_cli("policy", "check", "--source", shop, "--policy", str(draft))
    assert code == 0, out
    assert f"{draft}: ok (0 errors" in out


def test_suggest_refuses_to_overwrite_without_force(shop, tmp_path):
    draft = tmp_path / "policy.yaml"
    draft.write_text("mine\n")
    code, out = run_cli("policy", "suggest", "--source", shop, "--output", str(draft))
    assert code == 1 and "exists: pass --force to overwrite it" in out
    assert draft.read_text() == "mine\n"
    code, _ = run_cli("policy", "suggest", "--source", shop, "-o", str(draft), "--force")
    assert code == 0 and draft.read_text().startswith("# Draft")


def incomplete_policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "key: {env: LADDER_PSEUDONYM_KEY}\n"
        "tables:\n"
        "  users:\n"
        "    id: keep\n    email: email\n    full_name: name\n    contact: email\n"
        "    phone: phone\n    last_sign_in_ip: ip\n    preferences: json\n"
        "    encrypted_password: hash\n    created_at: keep\n    nickname: username\n"
    )
    return path


def test_check_fails_closed_and_speaks_json(shop, tmp_path):
    policy = incomplete_policy(tmp_path)
    code, out = run_cli("policy", "check", "--source", shop, "--policy", str(policy), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    found = {(f["code"], f["table"], f["column"]) for f in report["findings"]}
    assert found == {
        ("missing-column", "public.users", "notes"),
        ("unknown-column", "public.users", "nickname"),
        ("missing-table", "public.orders", None),
        ("missing-table", "public.events", None),
    }
    code, out = run_cli(
        "policy", "check", "--source", shop, "--policy", str(policy), "--table", "users"
    )
    assert code == 1
    assert "public.users.notes: no policy entry" in out and "orders" not in out


def test_check_runs_as_a_real_command_and_never_prints_a_password(shop, tmp_path):
    ladder = Path(sys.executable).parent / "ladder"
    policy = incomplete_policy(tmp_path)
    env = {**os.environ, "LADDER_SOURCE_DSN": shop}
    done = subprocess.run(
        [str(ladder), "policy", "check", "--policy", str(policy), "--table", "orders"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert (
        "public.orders: no policy entry for the table (columns: id, user_id, total_cents, status)"
        in done.stderr
    )

    bad = "postgresql://someone:hunter2-secret@127.0.0.1:1/nowhere"
    code, out = run_cli("policy", "check", "--source", bad, "--policy", str(policy))
    assert code == 1 and "cannot connect" in out and "hunter2-secret" not in out


def test_a_sanitized_copy_loads_back_and_no_original_survives(shop):
    """Values read as COPY text, transformed, loaded into tables with the same constraints."""
    policy = load_policy(Path(__file__).parent.parent / "fixtures" / "policies" / "shop.yaml")
    key = b"integration-key-0123456789"
    with connect(shop) as conn:
        cols = catalog.columns(conn, catalog.list_tables(conn))
        rows = conn.execute(
            "SELECT email, last_sign_in_ip::text, preferences::text, notes FROM users ORDER BY id"
        ).fetchall()
        original = {name: pa.array([r[i] for r in rows]) for i, name in enumerate(
            ["email", "last_sign_in_ip", "preferences", "notes"]
        )}  # fmt: skip
        unique = {c.name: c.is_unique for c in cols["public.users"]}
        out = {
            name: policy.rule("users", name).build(unique=unique[name]).transform(values, key)
            for name, values in original.items()
        }
        conn.execute(
            "CREATE TABLE users_copy (email text NOT NULL UNIQUE, ip inet, prefs jsonb, notes text)"
        )
        with conn.cursor().copy("COPY users_copy FROM STDIN") as copy:
            for row in zip(*(out[n].to_pylist() for n in original), strict=True):
                copy.write_row(row)
        loaded = conn.execute(
            "SELECT email, ip::text, prefs::text, notes FROM users_copy"
        ).fetchall()
    assert len(loaded) == len(rows)
    for name, before in original.items():
        after = out[name].to_pylist()
        survived = [a == b for a, b in zip(after, before.to_pylist(), strict=True) if b]
        if name != "notes":  # notes without PII ("prefers mail") are kept on purpose
            assert not any(survived), name
    blob = json.dumps(loaded)
    for value in PLANTED:
        assert value not in blob
    assert all(e.endswith("@example.com") for e, *_ in loaded)

"""The replica pipeline end to end on real PostgreSQL: plan, policy, copy, gate, swap, leases."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from cli import app
from ladder.connectors.postgres import connect, create_database, drop_database, with_dbname
from ladder.errors import (
    ConfigError,
    PolicyError,
    PostgresError,
    SanitizeError,
    ValidationGateError,
)
from ladder.leases import LeaseLedger
from ladder.replica.pipeline import create_replica
from ladder.replica.swap import previous_copies
from ladder.sandbox.cluster import Cluster
from ladder.sandbox.seed import seed_shop

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "runbooks" / "policies" / "shop.yaml"
KEY = "test-pseudonym-key-0123456789abcdef"  # tests/integration/conftest.py sets it
pytestmark = pytest.mark.usefixtures("pseudonym_key")
RESERVED = re.compile(r"@([a-z0-9-]+\.)*(example\.(com|net|org)|[a-z0-9-]+\.(test|invalid))$")


@pytest.fixture(scope="module")
def shop(pg_cluster: Cluster) -> Iterator[str]:
    """A seeded sandbox shop (300 customers) shared by this module's tests, read-only."""
    dsn = pg_cluster.dsn()
    drop_database(dsn, "replica_src")
    create_database(dsn, "replica_src")
    seed_shop(pg_cluster.dsn("replica_src"), users=300, seed=11)
    yield pg_cluster.dsn("replica_src")
    drop_database(dsn, "replica_src")


def _databases(dsn: str) -> list[str]:
    with connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database")]


def _dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


def _ladder_dbs(dsn: str) -> list[str]:
    return [d for d in _databases(dsn) if "__ladder_" in d]


def _rows(dsn: str, query: str | sql.Composed, params: list[object] | None = None) -> list[tuple]:
    with connect(dsn) as conn:
        return conn.execute(query, params or []).fetchall()


def _policy(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load(POLICY.read_text())
    edit(doc["tables"])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _clone(pg_cluster: Cluster, source: str, name: str) -> str:
    """A copy of the shop database to alter without disturbing the other tests."""
    dsn = pg_cluster.dsn()
    drop_database(dsn, name)
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "replica_src"')
    return pg_cluster.dsn(name)


# --- end to end -------------------------------------------------------------------------------


def test_all_tables_into_a_new_target(shop: str, target: str, ledger: LeaseLedger) -> None:
    printed: list[str] = []
    seen: dict[str, int] = {}
    result = create_replica(
        shop,
        target,
        POLICY,
        all_tables=True,
        ledger=ledger,
        plan_printer=printed.append,
        progress=lambda t, done, total: seen.__setitem__(t, done),
    )
    # the plan was printed, with estimated and actual rows
    [plan] = [p for p in printed if p.startswith("subset plan")]
    assert "public.order_items" in plan and "whole table" in plan
    assert any("[keep-pii]" in p for p in printed)  # policy warnings are shown, not fatal
    # every table copied whole: row counts equal the source
    for table, rows in result.tables.items():
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.split(".")))
        (src,) = _rows(shop, query)[0]
        (dst,) = _rows(target, query)[0]
        assert rows == src == dst, table
        assert seen[table] == rows
    assert result.validation.passed and result.validation.checks
    # PII changed in every row; the email stays unique and on a reserved domain
    src = dict(
        (r[0], r[1:]) for r in _rows(shop, "SELECT id, email, first_name, phone, notes FROM users")
    )
    dst = _rows(target, "SELECT id, email, first_name, phone FROM users ORDER BY id")
    for uid, email, first, phone in dst:
        assert email != src[uid][0] and RESERVED.search(email), email
        assert first != src[uid][1] or first is None
        assert phone != src[uid][2] or phone is None
    assert len({r[1] for r in dst}) == len(dst)
    unique = _rows(
        target, "SELECT indexdef FROM pg_indexes WHERE indexname = 'index_users_on_email'"
    )
    assert "UNIQUE" in unique[0][0]
    # NULL stays NULL
    nulls_src = _rows(shop, "SELECT count(*) FROM users WHERE notes IS NULL")[0][0]
    assert _rows(target, "SELECT count(*) FROM users WHERE notes IS NULL")[0][0] == nulls_src
    # constraints after the load, sequences past the copied ids
    fks = _rows(target, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'")[0][0]
    assert fks == 5
    max_id = _rows(target, "SELECT max(id) FROM orders")[0][0]
    assert _rows(target, "SELECT nextval('orders_id_seq')")[0][0] == max_id + 1
    # nothing half-made left, the lease is closed
    assert _ladder_dbs(shop) == []
    assert ledger.get(result.lease_ids[0]).state == "reverted"
    assert "password" not in result.target


def test_existing_target_is_replaced_atomically_keeping_previous(
    shop: str, target: str, ledger: LeaseLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = create_replica(shop, target, POLICY, all_tables=True, ledger=ledger)
    emails = _rows(target, "SELECT id, email FROM users ORDER BY id")
    with connect(target) as conn:
        conn.execute("CREATE TABLE marker (note text)")
    # same key: the same pseudonyms; keep one previous copy
    second = create_replica(shop, target, POLICY, all_tables=True, ledger=ledger, keep_previous=1)
    assert _rows(target, "SELECT id, email FROM users ORDER BY id") == emails
    assert _rows(target, "SELECT to_regclass('public.marker')")[0][0] is None
    [prev] = previous_copies(target, first.database)
    assert second.previous == [prev]
    assert _rows(with_dbname(target, prev), "SELECT to_regclass('public.marker')")[0][0] == "marker"
    # another key: other pseudonyms; keep_previous=0 drops the older copy
    monkeypatch.setenv("LADDER_PSEUDONYM_KEY", "another-key-fedcba9876543210")
    create_replica(shop, target, POLICY, all_tables=True, ledger=ledger)
    other = dict(_rows(target, "SELECT id, email FROM users ORDER BY id"))
    assert sum(other[i] != e for i, e in emails) > 0.99 * len(emails)
    assert previous_copies(target, first.database) == []
    assert _ladder_dbs(shop) == []


def test_subset_follows_foreign_keys_with_bound_parameters(
    shop: str, target: str, ledger: LeaseLedger
) -> None:
    ids = [r[0] for r in _rows(shop, "SELECT id FROM users ORDER BY id LIMIT 3")]
    result = create_replica(
        shop,
        target,
        POLICY,
        seeds=["users: id = ANY(:user_ids)"],
        params={"user_ids": ids},
        whole_tables=["schema_migrations", "flipper_features", "flipper_gates"],
        ledger=ledger,
    )
    assert sorted(r[0] for r in _rows(target, "SELECT id FROM users")) == ids
    orders = _rows(shop, "SELECT count(*) FROM orders WHERE user_id = ANY(%s)", [ids])[0][0]
    assert result.tables["public.orders"] == orders
    items = _rows(
        shop,
        "SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id"
        " WHERE o.user_id = ANY(%s)",
        [ids],
    )[0][0]
    assert result.tables["public.order_items"] == items
    fk_checks = [c for c in result.validation.checks if c.check == "foreign_key_resolves"]
    assert fk_checks and all(c.failures == 0 for c in fk_checks)


DEPENDENT_SCHEMA = """
CREATE EXTENSION citext;
CREATE EXTENSION pg_trgm;
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('happy', 'sad');
CREATE DOMAIN us_zip AS text CHECK (VALUE ~ '^[0-9]{5}$');
CREATE FUNCTION next_slug() RETURNS text LANGUAGE sql AS $$ SELECT 'slug-' || 42 $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TABLE people (
  id bigserial PRIMARY KEY,
  email citext NOT NULL UNIQUE,
  mood app.mood NOT NULL,
  zip us_zip,
  slug text NOT NULL DEFAULT next_slug(),
  name text,
  name_lower text GENERATED ALWAYS AS (lower(name)) STORED,
  updated_at timestamptz
);
CREATE INDEX people_name_trgm ON people USING gin (name gin_trgm_ops);
CREATE TRIGGER people_touch BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW app.happy_people AS SELECT id, name FROM people WHERE mood = 'happy';
CREATE MATERIALIZED VIEW app.moods AS SELECT mood, count(*) AS n, max(name) AS a_name
  FROM people GROUP BY mood;
CREATE MATERIALIZED VIEW mood_total AS SELECT sum(n) AS n FROM app.moods;
CREATE TABLE visits (id bigserial PRIMARY KEY, person_id bigint NOT NULL REFERENCES people (id));
CREATE TABLE app.badges (id bigserial PRIMARY KEY, person_id bigint REFERENCES people (id),
  label text NOT NULL);
CREATE TABLE search_terms (id bigserial PRIMARY KEY, term text NOT NULL);
INSERT INTO people (email, mood, zip, name)
  VALUES ('Ann@Example.org', 'happy', '12345', 'Ann Original'), ('bob@corp.io', 'sad', NULL, 'Bob');
INSERT INTO visits (person_id) VALUES (1), (2);
INSERT INTO app.badges (person_id, label) VALUES (1, 'early bird'), (2, 'night owl');
INSERT INTO search_terms (term) VALUES ('ann smith');
"""


def test_types_extensions_functions_and_untouched_tables_come_along(
    pg_db: str, target: str, ledger: LeaseLedger, tmp_path: Path
) -> None:
    """A Rails schema uses more than tables: the replica gets the enum, domain, extensions,
    functions, trigger, view and generated column, and every table (uncopied ones empty)."""
    with connect(pg_db, autocommit=True) as conn:
        conn.execute(DEPENDENT_SCHEMA)
    policy = tmp_path / "people.yaml"
    policy.write_text(
        "key: {env: LADDER_PSEUDONYM_KEY}\n"
        "tables:\n"
        "  people: {id: keep, email: email, mood: keep, zip: keep, slug: keep,"
        " name: name, updated_at: keep}\n"
        "  visits: {id: keep, person_id: keep}\n"
        "  app.badges: {id: keep, person_id: keep, label: keep}\n"
    )
    result = create_replica(
        pg_db,
        target,
        policy,
        seeds=["people: mood = :mood"],
        params={"mood": "happy"},
        ledger=ledger,
    )
    # the foreign key from another schema's table is followed like any other
    assert result.tables == {"public.people": 1, "public.visits": 1, "app.badges": 1}
    assert _rows(target, "SELECT label FROM app.badges") == [("early bird",)]
    assert result.validation.passed
    [(name, lowered, mood, email)] = _rows(
        target, "SELECT name, name_lower, mood::text, email::text FROM people"
    )
    assert name != "Ann Original" and lowered == name.lower()  # computed from the pseudonym
    assert mood == "happy" and RESERVED.search(email)
    assert _rows(target, "SELECT * FROM app.happy_people") == [(1, name)]
    # materialized views are computed again from the sanitized rows (in dependency order)
    assert _rows(target, "SELECT mood::text, n, a_name FROM app.moods") == [("happy", 1, name)]
    assert _rows(target, "SELECT n FROM mood_total") == [(1,)]
    # the table the plan did not copy exists, empty
    assert _rows(target, "SELECT count(*) FROM search_terms") == [(0,)]
    with connect(target) as conn:
        new = conn.execute(
            "INSERT INTO people (email, mood, zip, name) VALUES ('A@X.TEST', 'sad', '54321',"
            " 'Zed') RETURNING id, slug"
        ).fetchone()
        assert new == (2, "slug-42")  # sequence past the copied ids; function default works
        conn.execute("UPDATE people SET zip = '11111' WHERE id = 2")
        touched = conn.execute("SELECT updated_at IS NOT NULL FROM people WHERE id = 2")
        assert touched.fetchone() == (True,)
        with pytest.raises(Exception, match="us_zip"):
            conn.execute("UPDATE people SET zip = 'nope' WHERE id = 2")
    indexes = _rows(target, "SELECT indexdef FROM pg_indexes WHERE indexname = 'people_name_trgm'")
    assert "gin_trgm_ops" in indexes[0][0]
    # --all copies the schemas it is given (with the parents their rows need)
    again = create_replica(pg_db, target, policy, all_tables=True, schemas=["app"], ledger=ledger)
    assert again.tables == {"public.people": 2, "app.badges": 2}


def test_pseudonyms_longer_than_a_varchar_are_cut_or_refused(
    pg_db: str, target: str, ledger: LeaseLedger, tmp_path: Path
) -> None:
    with connect(pg_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE contacts (id bigserial PRIMARY KEY, phone varchar(12), nick char(4),"
            " email varchar(16) UNIQUE)"
        )
        conn.execute(
            "INSERT INTO contacts (phone, nick, email) SELECT '555-01' || i, 'Al', 'a' || i || '@b.co'"
            " FROM generate_series(10, 60) AS i"
        )
    policy = tmp_path / "contacts.yaml"

    def write(email: str) -> None:
        policy.write_text(
            "key: {env: LADDER_PSEUDONYM_KEY}\ntables:\n"
            f"  contacts: {{id: keep, phone: phone, nick: first_name, email: {email}}}\n"
        )

    write("keep")
    create_replica(pg_db, target, policy, all_tables=True, ledger=ledger)
    rows = _rows(target, "SELECT phone, nick FROM contacts")
    assert len(rows) == 51
    assert all(len(phone) <= 12 for phone, _ in rows)  # Faker phones run to 20+: cut to fit
    assert {nick for _, nick in rows} - {"Al  "}  # pseudonyms, cut to char(4)
    # an email cannot be cut (it would not be an address): refused, naming column and type
    write("email")
    with pytest.raises(SanitizeError, match=r"public\.contacts\.email: .* character varying\(16\)"):
        create_replica(pg_db, target, policy, all_tables=True, ledger=ledger)
    assert _rows(target, "SELECT count(*) FROM contacts") == [(51,)]  # the old copy stays
    assert _ladder_dbs(pg_db) == []


def test_injection_in_a_parameter_is_bound_not_run(
    shop: str, target: str, ledger: LeaseLedger
) -> None:
    with pytest.raises(PostgresError):
        create_replica(
            shop,
            target,
            POLICY,
            seeds=["users: email = :email OR id = ANY(:ids)"],
            params={"email": "x'; DROP TABLE payments; --", "ids": ["1); DROP TABLE users; --"]},
            ledger=ledger,
        )
    assert _rows(shop, "SELECT to_regclass('public.users'), to_regclass('public.payments')")[0] == (
        "users",
        "payments",
    )
    assert _dbname(target) not in _databases(shop) and _ladder_dbs(shop) == []
    with pytest.raises(ConfigError, match="single SQL expression"):
        create_replica(shop, target, POLICY, seeds=["users: true; DROP TABLE users"], ledger=ledger)


def test_a_slow_seed_is_cancelled_by_the_statement_timeout(
    shop: str, target: str, ledger: LeaseLedger
) -> None:
    with pytest.raises(PostgresError, match=r"statement timeout.*--statement-timeout"):
        create_replica(
            shop,
            target,
            POLICY,
            seeds=["users: pg_sleep(0.1) IS NOT NULL"],  # 300 users: 30 s without the limit
            ledger=ledger,
            statement_timeout=0.5,
        )
    assert _dbname(target) not in _databases(shop) and _ladder_dbs(shop) == []
    with pytest.raises(ConfigError, match="statement timeout"):
        create_replica(shop, target, POLICY, all_tables=True, ledger=ledger, statement_timeout=-1)


# --- fail closed ------------------------------------------------------------------------------


def test_unlisted_column_stops_before_anything_is_created(
    shop: str, target: str, ledger: LeaseLedger, tmp_path: Path
) -> None:
    def drop(tables: dict) -> None:
        del tables["users"]["phone"]
        del tables["payments"]["processor_response"]

    with pytest.raises(PolicyError) as err:
        create_replica(shop, target, _policy(tmp_path, drop), all_tables=True, ledger=ledger)
    assert "public.users.phone: no policy entry" in str(err.value)
    assert "public.payments.processor_response: no policy entry" in str(err.value)
    assert _ladder_dbs(shop) == [] and ledger.list() == []


def test_renamed_column_and_new_table_stop_the_copy(
    pg_cluster: Cluster, shop: str, target: str, ledger: LeaseLedger
) -> None:
    changed = _clone(pg_cluster, shop, "replica_src_changed")
    try:
        with connect(changed) as conn:
            conn.execute("ALTER TABLE users RENAME COLUMN phone TO mobile")
            conn.execute("CREATE TABLE coupons (id bigserial PRIMARY KEY, code text)")
        with pytest.raises(PolicyError) as err:
            create_replica(changed, target, POLICY, all_tables=True, ledger=ledger)
        text = str(err.value)
        assert "public.users.mobile: no policy entry" in text
        assert "public.users.phone: the policy names a column the table does not have" in text
        assert "public.coupons: no policy entry for the table" in text
        assert _ladder_dbs(shop) == []
    finally:
        drop_database(pg_cluster.dsn(), "replica_src_changed")


def test_failing_gate_commits_nothing_and_names_check_and_column(
    shop: str, target: str, ledger: LeaseLedger, tmp_path: Path
) -> None:
    create_replica(shop, target, POLICY, all_tables=True, ledger=ledger)
    before = _rows(target, "SELECT id, email FROM users ORDER BY id")

    def bypass(tables: dict) -> None:
        tables["users"]["notes"] = "keep"  # free text with emails and phones, not scrubbed

    with pytest.raises(ValidationGateError) as err:
        create_replica(shop, target, _policy(tmp_path, bypass), all_tables=True, ledger=ledger)
    text = str(err.value)
    assert "no_email_outside_reserved failed on public.users.notes" in text
    assert "no_phone_number failed on public.users.notes" in text
    assert "nothing was committed" in text
    assert err.value.result.passed is False  # type: ignore[attr-defined]
    assert _rows(target, "SELECT id, email FROM users ORDER BY id") == before
    assert _ladder_dbs(shop) == []


# --- killed midway ----------------------------------------------------------------------------

_KILLED = textwrap.dedent(
    """
    import sys, time
    from ladder.leases import LeaseLedger
    from ladder.replica.pipeline import create_replica

    def stall(table, done, total):
        print("COPYING", table, flush=True)
        time.sleep(600)

    create_replica(sys.argv[1], sys.argv[2], sys.argv[3], all_tables=True,
                   ledger=LeaseLedger(sys.argv[4]), progress=stall, ttl=__import__("datetime").timedelta(minutes=5))
    """
)


def test_sigkill_during_copy_leaves_old_target_and_janitor_cleans(
    shop: str, target: str, ledger: LeaseLedger, tmp_path: Path
) -> None:
    create_replica(shop, target, POLICY, all_tables=True, ledger=ledger)
    with connect(target) as conn:
        conn.execute("CREATE TABLE marker (note text)")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, shop, target, str(POLICY), ledger.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("COPYING"), proc.stderr.read() if proc.stderr else ""
        assert len(_ladder_dbs(shop)) == 1  # half loaded
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.5)
    # the old target is as it was
    assert _rows(target, "SELECT to_regclass('public.marker')")[0][0] == "marker"
    # the janitor's sweep after the TTL drops the half-loaded database
    reverted = ledger.revert_expired(now=datetime.now(UTC) + timedelta(hours=1))
    assert [lease.state for lease in reverted] == ["reverted"]
    assert _ladder_dbs(shop) == []


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_bad_input_exits_1_with_a_message(
    shop: str, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_HOME", str(tmp_path))
    runner = CliRunner()
    base = ["replica", "create", "--source", shop, "--target", target]

    def unlisted(tables: dict) -> None:
        del tables["orders"]["notes"]

    cases = [
        (
            ["--policy", str(_policy(tmp_path, unlisted)), "--all"],
            "public.orders.notes: no policy entry",
        ),
        (["--policy", str(POLICY), "--seed", "users id = 1"], "cannot parse seed"),
        (["--policy", str(POLICY), "--seed", "users: id = ANY(:user_ids)"], "user_ids"),
        (["--policy", str(POLICY), "--seed", "users: id = :uid", "--param", "uid"], "NAME=VALUE"),
        (["--all"], "--policy is required"),
        (
            ["--policy", str(POLICY), "--all", "--statement-timeout", "-1"],
            "statement timeout must be 0 (none) or more seconds",
        ),
    ]
    for extra, message in cases:
        res = runner.invoke(app, [*base, *extra])
        assert res.exit_code == 1, (extra, res.output)
        assert message in res.output, (extra, res.output)
    assert _dbname(target) not in _databases(shop) and _ladder_dbs(shop) == []


def test_cli_subprocess_json_summary(shop: str, target: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LADDER_HOME": str(tmp_path),
        "LADDER_SOURCE_DSN": shop,
        "LADDER_TARGET_DSN": target,
    }
    res = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ladder"), "replica", "create", "--policy", str(POLICY),
         "--seed", "users: id <= :n", "--param", "n=5", "--json"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["tables"]["public.users"] == 5
    assert summary["validation"]["passed"] is True
    assert set(summary["table_seconds"]) == set(summary["tables"])
    assert set(summary["step_seconds"]) == {"plan", "schema", "copy", "post_data", "gate", "swap"}
    assert "subset plan" in res.stderr
    assert _rows(target, "SELECT count(*) FROM users")[0][0] == 5

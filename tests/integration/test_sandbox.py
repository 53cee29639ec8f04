"""The embedded sandbox against real PostgreSQL: up, what it holds, status, idempotent up, down."""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cli import app
from ladder import sandbox
from ladder.errors import SandboxError
from ladder.incident import Incident
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USERS = 300
REQUESTS = 400
FOREIGN_KEYS = {
    ("accounts", "user_id", "users"),
    ("orders", "user_id", "users"),
    ("orders", "account_id", "accounts"),
    ("order_items", "order_id", "orders"),
    ("payments", "order_id", "orders"),
}


@pytest.fixture(scope="module")
def box() -> Iterator[sandbox.SandboxInfo]:
    # Not under pytest's tmp_path: a concurrent pytest session chmods /tmp/pytest-of-<user> to
    # 0700, and the postgres user must be able to walk down to the cluster.
    parent = Path(tempfile.mkdtemp(prefix="ladder-test-sandbox-"))
    directory = parent / "box"
    messages: list[str] = []
    info = sandbox.up(directory, users=USERS, requests=REQUESTS, seed=3, progress=messages.append)
    assert any("seeded" in m for m in messages)
    try:
        yield info
    finally:
        sandbox.down(directory)
        shutil.rmtree(parent, ignore_errors=True)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for a parent that does not reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _one(dsn: str, query: str, params: list[object] | None = None) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]


def _rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def test_up_seeds_production_and_leaves_staging_empty(box: sandbox.SandboxInfo) -> None:
    dsn = box.production_dsn
    counts = {
        t: _one(dsn, f"SELECT count(*) FROM {t}")  # noqa: S608 - fixed table names
        for t in ("users", "accounts", "orders", "order_items", "payments")
    }
    assert counts["users"] == USERS
    assert counts["accounts"] == USERS // 3
    assert counts["orders"] == 3 * USERS
    assert 5 * USERS <= counts["order_items"] <= 7 * USERS
    assert 0.9 * counts["orders"] <= counts["payments"] < counts["orders"]
    assert box.sizes == counts
    assert _one(dsn, "SELECT count(*) FROM schema_migrations") > 0
    assert "shop_production" in dsn and "shop_staging" in box.staging_dsn
    tables = _one(box.staging_dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert tables == 0


def test_foreign_keys_hold_and_every_fk_column_is_indexed(box: sandbox.SandboxInfo) -> None:
    with psycopg.connect(box.production_dsn) as conn:
        declared = set(
            conn.execute(
                """
                SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text
                FROM pg_constraint c
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                WHERE c.contype = 'f' AND c.convalidated
                """
            ).fetchall()
        )
        assert declared == FOREIGN_KEYS
        for table, column, parent in FOREIGN_KEYS:
            orphans = conn.execute(
                f"SELECT count(*) FROM {table} c LEFT JOIN {parent} p ON p.id = c.{column} "  # noqa: S608
                f"WHERE c.{column} IS NOT NULL AND p.id IS NULL"
            ).fetchone()
            assert orphans == (0,), f"{table}.{column} has orphans"
            indexed = conn.execute(
                "SELECT count(*) FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
                " WHERE i.indrelid = %s::regclass AND a.attname = %s",
                [table, column],
            ).fetchone()
            assert indexed is not None and indexed[0] >= 1, f"{table}.{column} has no index"


def test_emails_are_unique_and_sequences_run_past_the_data(box: sandbox.SandboxInfo) -> None:
    with psycopg.connect(box.production_dsn) as conn:
        new_id = conn.execute(
            "INSERT INTO users (email, created_at, updated_at)"
            " VALUES ('new@example.org', now(), now()) RETURNING id"
        ).fetchone()
        assert new_id == (USERS + 1,)
        conn.rollback()
        distinct, total = conn.execute(
            "SELECT count(DISTINCT email), count(*) FROM users"
        ).fetchone()
        assert distinct == total == USERS
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO users (email, created_at, updated_at)"
                " SELECT email, now(), now() FROM users LIMIT 1"
            )


def test_users_hold_pii_in_json_and_free_text(box: sandbox.SandboxInfo) -> None:
    with psycopg.connect(box.production_dsn) as conn:
        shipping = conn.execute(
            "SELECT preferences->'shipping' FROM users WHERE id = 1"
        ).fetchone()[0]
        assert set(shipping) == {"email", "phone", "address"}
        noted = conn.execute("SELECT count(*) FROM users WHERE notes ~ '@|\\d{3}[-.)]'").fetchone()[
            0
        ]
        assert noted > 0
        response = conn.execute("SELECT processor_response FROM payments LIMIT 1").fetchone()[0]
        assert {"billing_email", "ip", "cardholder_name"} <= set(response)


def test_flipper_tables_are_readable(box: sandbox.SandboxInfo) -> None:
    with psycopg.connect(box.production_dsn) as conn:
        gates = conn.execute(
            "SELECT f.key, g.key, g.value FROM flipper_features f"
            " JOIN flipper_gates g ON g.feature_key = f.key ORDER BY f.key"
        ).fetchall()
        assert ("checkout_v2", "boolean", "true") in gates
        now = datetime.now(UTC).replace(tzinfo=None)
        again = conn.execute(
            "INSERT INTO flipper_gates (feature_key, key, value, created_at, updated_at)"
            " VALUES ('checkout_v2', 'boolean', 'true', %s, %s) ON CONFLICT DO NOTHING",
            [now, now],
        )
        assert again.rowcount == 0  # the unique (feature_key, key, value) index holds
        conn.rollback()


def test_incident_customers_exist_and_their_data_is_the_cause(box: sandbox.SandboxInfo) -> None:
    user_ids = box.incident.params["user_ids"]
    assert isinstance(user_ids, list) and 3 <= len(user_ids) <= 5
    with psycopg.connect(box.production_dsn) as conn:
        found = conn.execute("SELECT count(*) FROM users WHERE id = ANY(%s)", [user_ids]).fetchone()
        assert found == (len(user_ids),)
        latest = conn.execute(
            "SELECT DISTINCT ON (o.user_id) o.user_id, o.status, p.id"
            " FROM orders o LEFT JOIN payments p ON p.order_id = o.id"
            " WHERE o.user_id = ANY(%s) ORDER BY o.user_id, o.created_at DESC, o.id DESC",
            [user_ids],
        ).fetchall()
        assert [(u, s, p) for u, s, p in latest] == [(u, "paid", None) for u in sorted(user_ids)]
        # Nowhere else does a non-pending order lack its payment: the defect is theirs alone.
        broken = conn.execute(
            "SELECT DISTINCT o.user_id FROM orders o"
            " WHERE o.status <> 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id)"
        ).fetchall()
        assert sorted(u for (u,) in broken) == sorted(user_ids)


def test_state_file_and_status_describe_the_sandbox(box: sandbox.SandboxInfo) -> None:
    state = json.loads((box.directory / "sandbox.json").read_text())
    assert state["production_dsn"] == box.production_dsn
    assert state["staging_dsn"] == box.staging_dsn
    assert isinstance(state["port"], int)
    assert state["sizes"]["users"] == USERS
    incident = Incident.model_validate(state["incident"])
    assert incident.id == "sandbox-checkout-500" and incident.source == "sandbox"
    assert incident.service == "shop-web"
    assert incident.params["endpoint"] == "CheckoutController#create"
    assert incident.ended_at is not None
    assert (incident.ended_at - incident.started_at).total_seconds() == 15 * 60
    assert incident.ended_at < datetime.now(UTC)

    info = sandbox.status(box.directory)
    assert info is not None and info.running
    assert info.incident == box.incident and info.users == USERS
    assert [p.name for p in info.log_files] == ["production.log", "production.log"]
    classic, lograge = (p.read_text() for p in info.log_files)
    failed = {int(u) for u in re.findall(r"\[user:(\d+)\] NoMethodError \(", classic)}
    failed |= {
        e["user_id"]
        for e in map(json.loads, lograge.splitlines())
        if e.get("exception", [None])[0] == "NoMethodError"
    }
    assert failed == set(incident.params["user_ids"])  # type: ignore[arg-type]


def test_second_up_starts_a_stopped_sandbox_without_reseeding(box: sandbox.SandboxInfo) -> None:
    Cluster(box.directory / "pg").stop()
    stopped = sandbox.status(box.directory)
    assert stopped is not None and not stopped.running

    again = sandbox.up(box.directory, users=999, seed=99)
    assert again.running
    assert again.incident == box.incident
    assert again.users == USERS
    assert _one(again.production_dsn, "SELECT count(*) FROM users") == USERS


def test_load_starts_a_stopped_sandbox(box: sandbox.SandboxInfo) -> None:
    Cluster(box.directory / "pg").stop()
    info = sandbox.load(box.directory)
    assert info.running
    assert _one(info.production_dsn, "SELECT count(*) FROM users") == USERS


def test_load_moves_to_a_free_port_when_the_old_one_is_taken(box: sandbox.SandboxInfo) -> None:
    cluster = Cluster(box.directory / "pg")
    cluster.stop()
    old_port = json.loads((box.directory / "sandbox.json").read_text())["port"]
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        info = sandbox.load(box.directory)
    assert info.running
    assert f"port={old_port}" not in info.production_dsn
    assert json.loads((box.directory / "sandbox.json").read_text())["port"] != old_port
    assert _one(info.production_dsn, "SELECT count(*) FROM users") == USERS


def test_cli_status_json_reports_the_sandbox(box: sandbox.SandboxInfo) -> None:
    result = CliRunner().invoke(app, ["sandbox", "status", "--dir", str(box.directory), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["running"] is True
    assert shown["incident"]["id"] == "sandbox-checkout-500"


def test_the_sandbox_key_reaches_the_replica_as_data_never_through_os_environ(
    box: sandbox.SandboxInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binding the sandbox used to ``os.environ.setdefault("LADDER_PSEUDONYM_KEY", ...)``: a
    later production run in the same process would have pseudonymized with the sandbox's key."""
    import os

    from ladder.config import bind_environment, load_runbook
    from ladder.connectors.postgres import drop_database, with_dbname
    from ladder.errors import SecretError
    from ladder.replica.pipeline import create_replica

    policy = ROOT / "runbooks" / "policies" / "shop.yaml"  # key: {env: LADDER_PSEUDONYM_KEY}
    monkeypatch.delenv("LADDER_PSEUDONYM_KEY", raising=False)
    (tmp_path / "env.yaml").write_text("name: sandbox\nsandbox: true\n")
    (tmp_path / "book.yaml").write_text(
        f"name: key-test\nenvironment: env.yaml\nrungs:\n  local_replica:\n    policy: {policy}\n"
    )
    env, incident = bind_environment(load_runbook(tmp_path / "book.yaml"), box.directory)
    assert incident == box.incident
    assert "LADDER_PSEUDONYM_KEY" not in os.environ
    assert env.pseudonym_key is not None
    assert env.pseudonym_key.get_secret_value() == box.pseudonym_key
    assert "pseudonym_key" not in env.model_dump()  # never in a task's recorded parameters
    info = sandbox.load(box.directory)  # an earlier test moved it to another port

    emails = {}
    try:
        for name, key in (("given", env.pseudonym_key), ("named", None)):
            if key is None:  # the same key, the way a production policy gets it: by its ref
                monkeypatch.setenv("LADDER_PSEUDONYM_KEY", box.pseudonym_key)
            target = with_dbname(info.staging_dsn, f"key_{name}")
            create_replica(info.production_dsn, target, policy, all_tables=True, key=key)
            emails[name] = [r[0] for r in _rows(target, "SELECT email FROM users ORDER BY id")]
            assert not set(emails[name]) & {
                r[0] for r in _rows(info.production_dsn, "SELECT email FROM users")
            }
        assert emails["given"] == emails["named"] and len(emails["given"]) == USERS
        # without a key given and with the policy's reference unset, nothing falls back
        monkeypatch.delenv("LADDER_PSEUDONYM_KEY")
        with pytest.raises(SecretError, match="LADDER_PSEUDONYM_KEY is not set"):
            create_replica(info.production_dsn, with_dbname(info.staging_dsn, "key_none"), policy)
    finally:
        for name in ("given", "named"):
            drop_database(info.staging_dsn, f"key_{name}")


def test_replica_create_against_the_sandbox_uses_its_key_and_says_so(
    box: sandbox.SandboxInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No LADDER_PSEUDONYM_KEY anywhere: the sandbox's own key is used, in one line; the
    sandbox's staging database carries Ladder's mark, so refreshing it needs no --replace."""
    from ladder.connectors.postgres import drop_database, with_dbname
    from ladder.replica.guard import marked

    info = sandbox.load(box.directory)
    assert marked(info.staging_dsn, "shop_staging") is True
    monkeypatch.delenv("LADDER_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("LADDER_SANDBOX_DIR", str(box.directory))
    target = with_dbname(info.staging_dsn, "key_cli")
    try:
        res = CliRunner().invoke(
            app,
            ["replica", "create", "--source", info.production_dsn, "--target", target,
             "--policy", str(ROOT / "runbooks" / "policies" / "shop.yaml"),
             "--seed", "users: id = ANY(:ids)", "--param", "ids=1"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        said = [
            line for line in res.output.splitlines() if "sandbox's pseudonymization key" in line
        ]
        assert said == [f"using the sandbox's pseudonymization key ({box.directory}/pseudonym.key)"]
    finally:
        drop_database(info.staging_dsn, "key_cli")


def test_down_stops_postgres_and_removes_the_directory(box: sandbox.SandboxInfo) -> None:
    pid = Cluster(box.directory / "pg").pid()
    assert pid is not None and _running(pid)

    assert sandbox.down(box.directory) is True

    assert not _running(pid)
    assert not box.directory.exists()
    assert sandbox.status(box.directory) is None
    assert sandbox.down(box.directory) is False
    with pytest.raises(SandboxError, match=r"no sandbox in .*: run `ladder sandbox up`"):
        sandbox.load(box.directory)


def test_down_keeps_files_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert sandbox.down(tmp_path) is False
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_status_without_a_sandbox_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sandbox", "status", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no sandbox in" in result.output
    assert "run `ladder sandbox up`" in " ".join(result.output.split())


def test_up_refuses_too_few_users(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 50 users"):
        sandbox.up(tmp_path / "tiny", users=5)
    assert not (tmp_path / "tiny").exists()
    result = CliRunner().invoke(
        app, ["sandbox", "up", "--dir", str(tmp_path / "t"), "--users", "5"]
    )
    assert result.exit_code != 0
    assert "--users" in result.output


def test_a_cluster_starts_in_a_directory_with_a_space() -> None:
    parent = Path(tempfile.mkdtemp(prefix="ladder-test-space-"))  # not tmp_path: see box()
    cluster = Cluster(parent / "has a space" / "pg")
    try:
        cluster.init()
        cluster.start()
        with psycopg.connect(cluster.dsn(), connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        cluster.stop()
        shutil.rmtree(parent, ignore_errors=True)
    assert not cluster.running()

"""The source is never written: target = source refused however it is spelled, a database Ladder
did not make is replaced only with --replace, and every source session is read-only.

Real PostgreSQL; the source is checked byte for byte (a checksum of its ``pg_dump``) after each
refusal. The refusals run the CLI as a person does (``python -m cli``), in parallel.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ladder.connectors.postgres import (
    connect,
    create_database,
    drop_database,
    find_bindir,
    with_dbname,
)
from ladder.errors import ConfigError
from ladder.leases import LeaseLedger
from ladder.replica.guard import (
    MARK,
    check_target,
    identify,
    marked,
    read_only_dsn,
    same_database,
)
from ladder.replica.pipeline import create_replica
from ladder.replica.swap import swap
from ladder.sandbox.cluster import Cluster
from ladder.sandbox.seed import seed_shop

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "runbooks" / "policies" / "shop.yaml"
KEY = "test-pseudonym-key-0123456789abcdef"  # tests/integration/conftest.py sets it
pytestmark = pytest.mark.usefixtures("pseudonym_key")
SOURCE = "guard_src"


@pytest.fixture(scope="module")
def shop(pg_cluster: Cluster) -> Iterator[str]:
    dsn = pg_cluster.dsn()
    drop_database(dsn, SOURCE)
    create_database(dsn, SOURCE)
    seed_shop(pg_cluster.dsn(SOURCE), users=60, seed=5)
    yield pg_cluster.dsn(SOURCE)
    drop_database(dsn, SOURCE)


def _databases(dsn: str) -> list[str]:
    with connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database")]


@pytest.fixture
def cleanup(pg_cluster: Cluster) -> Iterator[list[str]]:
    """Names whose databases (and their copies) are dropped after the test."""
    names: list[str] = []
    yield names
    for db in _databases(pg_cluster.dsn()):
        if any(db.startswith(n) for n in names):
            drop_database(pg_cluster.dsn(), db)


def checksum(dsn: str) -> str:
    """SHA-256 of a plain ``pg_dump`` of the database: schema and every row (without the random
    ``\\restrict`` key that newer pg_dump writes on every run)."""
    params = conninfo_to_dict(dsn)
    out = subprocess.run(
        [str(find_bindir() / "pg_dump"), f"--dbname={make_conninfo(**params)}", "--no-comments"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    kept = [
        line for line in out.splitlines() if not line.startswith((b"\\restrict", b"\\unrestrict"))
    ]
    return hashlib.sha256(b"\n".join(kept)).hexdigest()


def _cli(args: list[str], env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "LADDER_HOME": str(tmp / "home"), "LADDER_PSEUDONYM_KEY": KEY}
    for name in ("LADDER_SOURCE_DSN", "LADDER_TARGET_DSN", "LADDER_DEBUG"):
        base.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "cli", "replica", "create", *args],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _one_error(proc: subprocess.CompletedProcess[str], says: str) -> None:
    said = proc.stdout + proc.stderr
    assert proc.returncode == 1, said
    assert "Traceback" not in said, said
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), said
    assert says in lines[0], said


# --- target = source --------------------------------------------------------------------------


def test_target_that_is_the_source_is_refused_in_every_spelling(
    pg_cluster: Cluster, shop: str, tmp_path: Path
) -> None:
    before = checksum(shop)
    port = str(pg_cluster.port)
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[prod]\nhost=127.0.0.1\nport={port}\nuser=postgres\ndbname={SOURCE}\n")
    same_text = "the source and the target name the same database"
    same_server = "is the source database (same server: system identifier"
    spellings = {
        "identical": (shop, {}, same_text),
        "localhost": (f"host=localhost port={port} user=postgres dbname={SOURCE}", {}, same_text),
        "url": (f"postgresql://postgres@127.0.0.1:{port}/{SOURCE}", {}, same_text),
        "options": (
            f"{shop} application_name=other connect_timeout=5 sslmode=disable",
            {},
            same_text,
        ),
        "url-with-query": (
            f"postgresql://postgres@localhost:{port}/{SOURCE}?application_name=x&connect_timeout=3",
            {},
            same_text,
        ),
        # spellings no text comparison can see through: the servers are asked
        "service-file": (
            f"service=prod dbname={SOURCE}",
            {"PGSERVICEFILE": str(services)},
            same_server,
        ),
        "environment": (
            f"dbname={SOURCE} user=postgres",
            {"PGHOST": "127.0.0.1", "PGPORT": port},
            same_server,
        ),
    }

    def run(case: tuple[str, dict[str, str], str]) -> subprocess.CompletedProcess[str]:
        target, env, _ = case
        args = ["--source", shop, "--target", target, "--policy", str(POLICY), "--all"]
        return _cli(args, env, tmp_path)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(spellings, pool.map(run, spellings.values()), strict=True))
    for name, proc in results.items():
        _one_error(proc, spellings[name][2])
    assert checksum(shop) == before
    assert not [d for d in _databases(shop) if "__ladder_" in d]


def test_the_library_asks_the_servers_not_the_text(
    pg_cluster: Cluster, shop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(pg_cluster.port))
    assert same_database(f"dbname={SOURCE} user=postgres", shop)
    assert not same_database(pg_cluster.dsn(), shop)
    with pytest.raises(ConfigError, match=r"'guard_src' is the source database .* oid \d+"):
        check_target(shop, f"dbname={SOURCE} user=postgres application_name=x", SOURCE)
    # same server, another database: allowed (the sandbox copies beside its production db)
    found = check_target(shop, pg_cluster.dsn("guard_elsewhere"), "guard_elsewhere")
    assert found.source.same_cluster(found.target_server) and not found.exists


def test_a_source_that_is_a_copy_of_the_target_is_refused(
    pg_cluster: Cluster, shop: str, cleanup: list[str]
) -> None:
    """Copying from ``t__prev_…`` into ``t``: the swap would drop the source among t's copies."""
    cleanup.append("guard_copy")
    prev = "guard_copy__prev_20260101000000000000"
    with connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{prev}" TEMPLATE "{SOURCE}"')
    with pytest.raises(ConfigError, match="is a copy of the target 'guard_copy'"):
        check_target(pg_cluster.dsn(prev), pg_cluster.dsn("guard_copy"), "guard_copy")


def test_without_pg_monitor_the_identity_falls_back_and_says_so(
    pg_cluster: Cluster, shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that may read neither pg_control_system() (revoked here, as managed services do)
    nor data_directory: the servers are told apart by port and postmaster start time."""
    revoke = "REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC"
    dbs = (pg_cluster.dsn(), shop)
    with connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS guard_plain")
        conn.execute("CREATE ROLE guard_plain LOGIN")
    try:
        for dsn in dbs:
            with connect(dsn, autocommit=True) as conn:
                conn.execute(revoke)
        plain = make_conninfo(**{**conninfo_to_dict(shop), "user": "guard_plain"})
        with connect(plain, autocommit=True) as conn:
            weak = identify(conn)
        with connect(shop, autocommit=True) as conn:
            strong = identify(conn)
        assert strong.system_identifier and strong.data_directory
        assert weak.system_identifier is None and weak.data_directory is None
        assert "pg_monitor" in weak.method and f"port {weak.port}" in weak.method
        assert weak.same_cluster(strong) and strong.same_cluster(weak)
        monkeypatch.setenv("PGHOST", "127.0.0.1")
        monkeypatch.setenv("PGPORT", str(pg_cluster.port))
        with pytest.raises(ConfigError, match=r"is the source database \(same server: port"):
            check_target(plain, f"dbname={SOURCE} user=guard_plain", SOURCE)
    finally:
        for dsn in dbs:
            with connect(dsn, autocommit=True) as conn:
                conn.execute(revoke.replace("REVOKE", "GRANT").replace("FROM", "TO"))
        with connect(pg_cluster.dsn(), autocommit=True) as conn:
            conn.execute("DROP ROLE guard_plain")


# --- a target Ladder did not make ----------------------------------------------------------------


def test_a_foreign_target_is_refused_then_replaced_with_replace_then_reused(
    pg_cluster: Cluster, shop: str, tmp_path: Path, cleanup: list[str]
) -> None:
    cleanup.append("guard_foreign")
    target = pg_cluster.dsn("guard_foreign")
    create_database(pg_cluster.dsn(), "guard_foreign")
    with connect(target) as conn:
        conn.execute("CREATE TABLE precious (note text)")
        conn.execute("INSERT INTO precious VALUES ('do not lose me')")
    before, source_before = checksum(target), checksum(shop)
    args = ["--source", shop, "--target", target, "--policy", str(POLICY)]
    subset = ["--seed", "users: id = ANY(:user_ids)", "--param", "user_ids=7"]
    refused = _cli([*args, *subset], {}, tmp_path)
    _one_error(refused, "the target database 'guard_foreign' exists and Ladder did not make it")
    assert "--replace" in refused.stderr
    assert checksum(target) == before and checksum(shop) == source_before
    assert marked(target, "guard_foreign") is False
    # --replace: replaced (one value for ANY(:user_ids) works too), and marked as Ladder's now
    replaced = _cli([*args, *subset, "--replace", "--json"], {}, tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    with connect(target) as conn:
        assert conn.execute("SELECT to_regclass('public.precious')").fetchone() == (None,)
        assert conn.execute("SELECT array_agg(id) FROM users").fetchone() == ([7],)
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()[0]
    assert comment.startswith(f"{MARK}: copy of 127.0.0.1:{pg_cluster.port}/{SOURCE}")
    # a second run onto the database Ladder made needs no --replace; many values, repeated
    again = _cli(
        [*args, "--seed", "users: id = ANY(:ids)", "--param", "ids=3", "--param", "ids=4",
         "--whole", "flipper_features"],
        {}, tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    with connect(target) as conn:
        assert conn.execute("SELECT array_agg(id ORDER BY id) FROM users").fetchone() == ([3, 4],)
        copied = conn.execute("SELECT count(*) FROM flipper_features").fetchone()[0]
    with connect(shop) as conn:
        assert copied == conn.execute("SELECT count(*) FROM flipper_features").fetchone()[0] > 0
    assert checksum(shop) == source_before


def test_a_foreign_database_that_appears_during_the_copy_is_not_swapped_over(
    pg_cluster: Cluster, cleanup: list[str]
) -> None:
    cleanup.extend(["guard_race", "guard_new"])
    server = pg_cluster.dsn()
    create_database(server, "guard_new")
    create_database(server, "guard_race")
    with pytest.raises(ConfigError, match="appeared during the copy"):
        swap(server, "guard_new", "guard_race")
    assert {"guard_race", "guard_new"} <= set(_databases(server))
    assert swap(server, "guard_new", "guard_race", replace=True) == []
    assert "guard_new" not in _databases(server)


# --- the source session is read-only ----------------------------------------------------------


def test_every_source_session_is_read_only(
    pg_cluster: Cluster, shop: str, ledger: LeaseLedger, cleanup: list[str]
) -> None:
    before = checksum(shop)
    ro = read_only_dsn(f"{shop} options='-c default_transaction_read_only=off'")
    with connect(ro, autocommit=True) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("CREATE TABLE sneaky (x int)")
    psql = subprocess.run(
        [str(find_bindir() / "psql"), "-X", f"--dbname={ro}", "-c", "DELETE FROM users"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert psql.returncode != 0 and "read-only transaction" in psql.stderr
    # the pipeline's own source session: a seed that selects only in a read-only session
    cleanup.append("guard_ro")
    result = create_replica(
        shop,
        pg_cluster.dsn("guard_ro"),
        POLICY,
        seeds=["users: id = ANY(:ids) AND current_setting('default_transaction_read_only') = 'on'"],
        params={"ids": 5},
        ledger=ledger,
    )
    assert result.tables["public.users"] == 1
    assert checksum(shop) == before

"""``ladder runbook check`` holds rung 2's policy against the source when it can reach it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from ladder.connectors.postgres import create_database, drop_database
from ladder.procs import free_port
from ladder.sandbox.cluster import Cluster
from ladder.sandbox.seed import seed_shop

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "runbooks" / "policies" / "shop.yaml"


@pytest.fixture(scope="module")
def shop(pg_cluster: Cluster) -> Iterator[str]:
    drop_database(pg_cluster.dsn(), "check_src")
    create_database(pg_cluster.dsn(), "check_src")
    seed_shop(pg_cluster.dsn("check_src"), users=50, seed=2)
    yield pg_cluster.dsn("check_src")
    drop_database(pg_cluster.dsn(), "check_src")


def _runbook(tmp_path: Path, dsn: str, policy: Path, staging: bool = False) -> Path:
    env: dict = {"name": "prod", "production_db": {"dsn": dsn}}
    if staging:
        env["staging"] = {"database": {"dsn": dsn.replace("check_src", "check_staging")}}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env))
    book = {
        "name": "check-test",
        "environment": "env.yaml",
        "rungs": {
            "local_replica": {"policy": str(policy), "seeds": ["users: id = ANY(:user_ids)"]}
        },
    }
    path = tmp_path / "runbook.yaml"
    path.write_text(yaml.safe_dump(book))
    return path


def _check(*args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["runbook", "check", "--json", *args])
    return res.exit_code, json.loads(res.stdout)


def test_a_policy_that_misses_columns_fails_the_check(shop: str, tmp_path: Path) -> None:
    doc = yaml.safe_load(POLICY.read_text())
    del doc["tables"]["orders"]["notes"]
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(doc))
    code, out = _check(str(_runbook(tmp_path, shop, short)))
    assert code == 1 and not out["ok"]
    assert any("public.orders.notes: no policy entry [missing-column]" in e for e in out["errors"])
    # --offline does not connect, and says so
    code, out = _check("--offline", str(_runbook(tmp_path, shop, short)))
    assert code == 0 and any("--offline" in n for n in out["notes"])


def test_a_complete_policy_passes_and_an_unreachable_source_is_skipped(
    shop: str, tmp_path: Path
) -> None:
    code, out = _check(str(_runbook(tmp_path, shop, POLICY, staging=True)))
    assert code == 0, out
    assert any("covers every column" in n for n in out["notes"]) or out["warnings"]
    dead = f"host=127.0.0.1 port={free_port()} dbname=check_src user=postgres"
    code, out = _check(str(_runbook(tmp_path, dead, POLICY)))
    assert code == 0, out
    [note] = out["notes"]
    assert "policy not checked against the source" in note and "cannot connect" in note

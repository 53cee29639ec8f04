"""``ladder flags list``: Ladder's flag leases with actor, approver and expiry; bad input is one
``error:`` line and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from typer.testing import CliRunner

from cli import app
from cli.entrypoints import PROJECT_ROOT
from ladder.leases import LeaseLedger

FLIPPER = {"database": {"dsn": "host=127.0.0.1 dbname=shop"}}


def _flag(ledger: LeaseLedger, actor: str, approver: str) -> str:
    undo = {"flipper": FLIPPER, "feature": "debug_mode", "actor": actor, "was_enabled": False,
            "feature_existed": True, "approver": approver, "incident": "inc-7"}  # fmt: skip
    lease = ledger.take("flipper_actor_gate", f"debug_mode for {actor}", owner="run-1",
                        ttl=timedelta(minutes=20), undo=undo)  # fmt: skip
    ledger.activate(lease.id)
    return lease.id


def test_list_shows_held_flags_with_actor_approver_and_expiry() -> None:
    ledger = LeaseLedger()
    held = _flag(ledger, "User;42", "ana")
    done = _flag(ledger, "User;7", "bo")
    ledger._update(done, {"state": "reverted"}, only_states=(ledger.get(done).state,))
    ledger.take("postgres_database", "db x", owner="run-1", ttl=timedelta(minutes=5),
                undo={"server": "host=127.0.0.1", "dbname": "x"})  # fmt: skip

    table = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["flags", "list"])
    rows = json.loads(CliRunner().invoke(app, ["flags", "list", "--json"]).stdout)
    every = json.loads(CliRunner().invoke(app, ["flags", "list", "--all", "--json"]).stdout)

    assert table.exit_code == 0, table.output
    expires = f"{ledger.get(held).expires_at:%Y-%m-%d %H:%M:%S} UTC"
    assert "User;42" in table.output and "ana" in table.output and expires in table.output
    assert "User;7" not in table.output and "db x" not in table.output
    assert [(r["actor"], r["approver"], r["lease"]) for r in rows] == [("User;42", "ana", held)]
    assert rows[0]["expires_at"] == ledger.get(held).expires_at.isoformat()
    assert [r["actor"] for r in every] == ["User;42", "User;7"]


def test_bad_input_is_one_error_line_and_exit_1() -> None:
    done = subprocess.run([sys.executable, "-m", "cli", "flags", "list", "--since", "x"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: no such option: --since")
    assert "Traceback" not in done.stdout + done.stderr

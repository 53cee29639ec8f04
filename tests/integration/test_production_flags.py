"""Rung 5 against real Flipper: the gate Ladder writes in Flipper's tables is what Debian's Ruby
Flipper (ActiveRecord adapter) answers, for the actor only, and only while the lease lives; the
same through a flipper-api-compatible HTTP server; a Puma app using Flipper logs for that user."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from flags_helpers import OWNER, climb_state, write_runbook
from servers import not_installed
from servers.flipper import TOKEN, FlipperApiServer, ruby_enabled

from ladder.connectors.flipper import FlipperTables
from ladder.connectors.log_source import LogSource
from ladder.connectors.postgres import connect
from ladder.errors import FlipperError
from ladder.flags.collect import collect, mark
from ladder.leases import LeaseLedger, LeaseState
from ladder.rungs.production_flags import ProductionFlagsResult, run
from ladder.sandbox.shop import ShopServer, available

pytestmark = pytest.mark.integration


def _db(dsn: str) -> dict[str, object]:
    return {"database": {"dsn": dsn}}


def _rows(dsn: str) -> list[tuple[str, str, str]]:
    with connect(dsn) as conn:
        return conn.execute(
            "SELECT g.feature_key, g.key, g.value FROM flipper_gates g ORDER BY 1, 2, 3"
        ).fetchall()


def test_real_flipper_sees_the_actor_only_while_the_lease_lives(
    flipper_tables: str, tmp_path: Path
) -> None:
    state, settings = climb_state(write_runbook(tmp_path, _db(flipper_tables)))

    result = run(state, settings)

    assert isinstance(result, ProductionFlagsResult) and result.status == "done"
    assert ruby_enabled(flipper_tables, "debug_mode", "User;42", "User;43") == {
        "User;42": True,
        "User;43": False,
    }
    with connect(flipper_tables) as conn:
        created, updated = conn.execute(
            "SELECT created_at, updated_at FROM flipper_features WHERE key = 'debug_mode'"
        ).fetchone()
    assert created is not None and updated is not None
    ledger = LeaseLedger()
    (lease,) = ledger.list(owner=OWNER)
    assert lease.kind == "flipper_actor_gate" and lease.state is LeaseState.ACTIVE
    assert lease.undo["actor"] == "User;42" and lease.undo["approver"] == "ana"
    assert [h.lease_id for h in result.held] == [lease.id]

    (reverted,) = ledger.revert_owner(OWNER)

    assert reverted.state is LeaseState.REVERTED, reverted.outcome
    assert "read back: off" in (reverted.outcome or "")
    assert ruby_enabled(flipper_tables, "debug_mode", "User;42") == {"User;42": False}
    with connect(flipper_tables) as conn:  # Ladder added the feature: it is gone again
        assert conn.execute("SELECT count(*) FROM flipper_features").fetchone()[0] == 0


def test_an_actor_enabled_before_stays_enabled_after_revert(
    flipper_tables: str, tmp_path: Path
) -> None:
    with FlipperTables(flipper_tables) as flipper:
        flipper.enable_actor("debug_mode", "User;42")
        flipper.enable_actor("debug_mode", "User;7")
    state, settings = climb_state(write_runbook(tmp_path, _db(flipper_tables)))

    result = run(state, settings)
    ledger = LeaseLedger()
    (reverted,) = ledger.revert_owner(OWNER)

    assert result.status == "done" and result.gates[0]["was_enabled"] is True
    assert "left alone" in (reverted.outcome or "") and "(reads on)" in (reverted.outcome or "")
    assert ruby_enabled(flipper_tables, "debug_mode", "User;42", "User;7", "User;8") == {
        "User;42": True,
        "User;7": True,
        "User;8": False,
    }


def test_a_second_run_on_the_same_actor_never_turns_it_on_again(
    flipper_tables: str, tmp_path: Path
) -> None:
    rb = write_runbook(tmp_path, _db(flipper_tables))
    first, settings = climb_state(rb, owner="run-a")
    second, _ = climb_state(rb, owner="run-b")
    run(first, settings)
    again = run(second, settings)
    ledger = LeaseLedger()

    ledger.revert_owner("run-a")
    (left,) = ledger.revert_owner("run-b")

    assert again.gates[0]["was_enabled"] is True
    assert "left alone" in (left.outcome or "") and "(reads off)" in (left.outcome or "")
    assert ruby_enabled(flipper_tables, "debug_mode", "User;42") == {"User;42": False}


def test_revert_of_a_gate_another_actor_shares_keeps_the_feature(
    flipper_tables: str, tmp_path: Path
) -> None:
    state, settings = climb_state(write_runbook(tmp_path, _db(flipper_tables)))
    run(state, settings)
    with FlipperTables(flipper_tables) as flipper:  # someone else enables an actor meanwhile
        flipper.enable_actor("debug_mode", "User;9")

    LeaseLedger().revert_owner(OWNER)

    assert _rows(flipper_tables) == [("debug_mode", "actors", "User;9")]
    assert ruby_enabled(flipper_tables, "debug_mode", "User;9", "User;42") == {
        "User;9": True,
        "User;42": False,
    }


def test_the_guard_refuses_before_anything_is_written(flipper_tables: str, tmp_path: Path) -> None:
    from ladder.errors import GuardrailError

    state, settings = climb_state(write_runbook(tmp_path, _db(flipper_tables)))
    asked = settings.model_copy(update={"gate": "boolean"})  # as a checkpoint form could

    with pytest.raises(GuardrailError, match="refused gate 'boolean'"):
        run(state, asked)

    assert _rows(flipper_tables) == []
    assert LeaseLedger().list() == []


def test_a_puma_app_using_flipper_logs_only_for_the_flagged_user(
    flipper_tables: str, tmp_path: Path
) -> None:
    missing = available()
    if missing:
        not_installed("Puma", missing)
    server = ShopServer(
        tmp_path / "puma", flipper_tables, rbtrace=False, flipper_dsn=flipper_tables
    )
    server.start()
    try:
        marks = mark([_source(server.log_file)])
        state, settings = climb_state(write_runbook(tmp_path, _db(flipper_tables)), [1])
        run(state, settings)
        for user in ("1", "2", "1"):
            httpx.get(f"{server.url}/orders", headers={"X-Shop-Impersonate": user}, timeout=10)
        lines = collect(marks, ["1"], 0)
        others = collect(marks, ["2"], 0)
        LeaseLedger().revert_owner(OWNER)
        after = mark([_source(server.log_file)])
        httpx.get(f"{server.url}/orders", headers={"X-Shop-Impersonate": "1"}, timeout=10)
        later = collect(after, ["1"], 0)
    finally:
        server.stop()

    assert len(lines) == 2 and all("[debug_mode] user_id=1 GET /orders" in x for x in lines)
    assert others == []
    assert later == []


def test_the_same_through_a_flipper_api_server(
    flipper_api: FlipperApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_TEST_FLIPPER_AUTH", TOKEN)
    api = {"api": {"url": flipper_api.url, "auth": {"env": "LADDER_TEST_FLIPPER_AUTH"}}}
    state, settings = climb_state(write_runbook(tmp_path, api))

    result = run(state, settings)

    assert result.status == "done"
    assert flipper_api.feature_json("debug_mode")["gates"][1] == {
        "key": "actors",
        "name": "actor",
        "value": ["User;42"],
    }
    assert ("POST", "/flipper/api/v1/features") in flipper_api.requests  # code 1: created first
    (lease,) = LeaseLedger().list(owner=OWNER)
    assert TOKEN not in str(lease.undo) and lease.undo["flipper"]["api"]["auth"] == {
        "env": "LADDER_TEST_FLIPPER_AUTH"
    }

    (reverted,) = LeaseLedger().revert_owner(OWNER)

    assert reverted.state is LeaseState.REVERTED, reverted.outcome
    assert "debug_mode" not in flipper_api.features  # added by Ladder, removed by Ladder


def test_a_flipper_api_that_refuses_the_auth_header_is_one_line(
    flipper_api: FlipperApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_TEST_FLIPPER_AUTH", "Bearer wrong")
    api = {"api": {"url": flipper_api.url, "auth": {"env": "LADDER_TEST_FLIPPER_AUTH"}}}
    state, settings = climb_state(write_runbook(tmp_path, api))

    with pytest.raises(FlipperError, match="HTTP 401") as info:
        run(state, settings)

    assert "\n" not in str(info.value) and "wrong" not in str(info.value)
    assert LeaseLedger().list() == []  # it failed reading the gate, before any lease


def _source(path: Path) -> LogSource:
    return LogSource(path=path)

"""The lease ledger on SQLite: recording, reverting, expiry, refusal of secrets, and the CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ladder.errors import LeaseError
from ladder.leases import (
    Lease,
    LeaseLedger,
    LeaseState,
    leased,
    leases_table,
    register_undo,
    undo_kinds,
)

HOUR = timedelta(hours=1)


@register_undo("test_file")
def _remove_file(payload: dict[str, Any]) -> str:
    """Undo of the test kind: remove ``path``; log every run; refuse while ``blocker`` exists."""
    with open(payload["log"], "a") as log:
        log.write("undo\n")
    blocker = payload.get("blocker")
    if blocker and Path(blocker).exists():
        raise RuntimeError(f"{blocker} is in the way")
    path = Path(payload["path"])
    if path.exists():
        path.unlink()
        return f"removed {path.name}"
    return f"{path.name} was already gone"


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'ledger' / 'leases.db'}"
    monkeypatch.setenv("LADDER_LEDGER_URL", url)
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[LeaseLedger]:
    led = LeaseLedger(ledger_url)
    yield led
    led.close()


def _file_change(tmp_path: Path, name: str, *, blocker: bool = False) -> dict[str, Any]:
    """Apply a 'change' (create a file) and return the undo payload for it."""
    path = tmp_path / name
    path.write_text("changed")
    payload = {"path": str(path), "log": str(tmp_path / f"{name}.log")}
    if blocker:
        payload["blocker"] = str(tmp_path / f"{name}.blocker")
        Path(payload["blocker"]).write_text("x")
    return payload


def _undo_runs(payload: dict[str, Any]) -> int:
    log = Path(payload["log"])
    return len(log.read_text().splitlines()) if log.exists() else 0


def _take(ledger: LeaseLedger, payload: dict[str, Any], **kw: Any) -> Lease:
    kw.setdefault("owner", "run-1")
    kw.setdefault("ttl", HOUR)
    return ledger.take("test_file", Path(payload["path"]).name, undo=payload, **kw)


# --- recording ------------------------------------------------------------------------------


def test_take_records_pending_lease_visible_to_another_process(
    ledger: LeaseLedger, ledger_url: str, tmp_path: Path
) -> None:
    payload = _file_change(tmp_path, "a")
    lease = _take(ledger, payload, description="a test change")

    assert lease.state is LeaseState.PENDING
    assert lease.expires_at - lease.created_at == HOUR
    assert lease.created_at.tzinfo is not None
    assert (lease.owner, lease.kind, lease.target) == ("run-1", "test_file", "a")
    other = LeaseLedger(ledger_url)  # a second engine: what the janitor would see
    assert other.get(lease.id) == lease
    other.close()


def test_activate_marks_the_change_applied(ledger: LeaseLedger, tmp_path: Path) -> None:
    lease = _take(ledger, _file_change(tmp_path, "a"))
    assert ledger.activate(lease.id).state is LeaseState.ACTIVE
    assert ledger.get(lease.id).state is LeaseState.ACTIVE


def test_revert_runs_undo_once_and_is_idempotent(ledger: LeaseLedger, tmp_path: Path) -> None:
    payload = _file_change(tmp_path, "a")
    lease = _take(ledger, payload)
    ledger.activate(lease.id)

    done = ledger.revert(lease.id)
    assert done.state is LeaseState.REVERTED
    assert done.outcome == "removed a"
    assert done.attempts == 1
    assert done.reverted_at is not None
    assert not Path(payload["path"]).exists()

    again = ledger.revert(lease.id)
    assert again == done
    assert _undo_runs(payload) == 1


def test_failed_revert_is_recorded_and_can_be_retried(ledger: LeaseLedger, tmp_path: Path) -> None:
    payload = _file_change(tmp_path, "a", blocker=True)
    lease = _take(ledger, payload)
    ledger.activate(lease.id)

    failed = ledger.revert(lease.id)
    assert failed.state is LeaseState.REVERT_FAILED
    assert failed.outcome == f"RuntimeError: {payload['blocker']} is in the way"
    assert failed.reverted_at is None
    assert Path(payload["path"]).exists()

    Path(payload["blocker"]).unlink()
    retried = ledger.revert(lease.id)
    assert retried.state is LeaseState.REVERTED
    assert retried.attempts == 2
    assert not Path(payload["path"]).exists()


def test_reverting_a_pending_lease_undoes_a_change_that_never_happened(
    ledger: LeaseLedger, tmp_path: Path
) -> None:
    payload = {"path": str(tmp_path / "never"), "log": str(tmp_path / "never.log")}
    lease = _take(ledger, payload)
    done = ledger.revert(lease.id)
    assert (done.state, done.outcome) == (LeaseState.REVERTED, "never was already gone")


def test_activating_a_reverted_lease_is_refused(ledger: LeaseLedger, tmp_path: Path) -> None:
    lease = _take(ledger, _file_change(tmp_path, "a"))
    ledger.revert(lease.id)
    with pytest.raises(LeaseError, match=f"lease {lease.id} .* was already reverted"):
        ledger.activate(lease.id)


def test_unknown_lease_id(ledger: LeaseLedger) -> None:
    with pytest.raises(LeaseError, match="no lease with id 'nope'"):
        ledger.get("nope")
    with pytest.raises(LeaseError, match="no lease with id 'nope'"):
        ledger.revert("nope")


def test_ttl_must_be_positive(ledger: LeaseLedger, tmp_path: Path) -> None:
    with pytest.raises(LeaseError, match="ttl must be positive"):
        _take(ledger, _file_change(tmp_path, "a"), ttl=timedelta(0))
    assert ledger.list() == []


# --- selection ------------------------------------------------------------------------------


def test_revert_expired_takes_only_open_expired_leases_newest_first(
    ledger: LeaseLedger, tmp_path: Path
) -> None:
    short1 = _take(ledger, _file_change(tmp_path, "s1"), ttl=timedelta(minutes=10))
    short2 = _take(ledger, _file_change(tmp_path, "s2"), ttl=timedelta(minutes=20))
    long = _take(ledger, _file_change(tmp_path, "long"), ttl=timedelta(hours=2))
    failing = _take(ledger, _file_change(tmp_path, "f", blocker=True), ttl=timedelta(minutes=5))
    done = _take(ledger, _file_change(tmp_path, "done"), ttl=timedelta(minutes=5))
    ledger.revert(failing.id)
    ledger.revert(done.id)

    now = datetime.now(UTC)
    assert ledger.revert_expired(now=now) == []

    reverted = ledger.revert_expired(now=now + HOUR)
    assert [lease.id for lease in reverted] == [failing.id, short2.id, short1.id]
    states = {lease.id: lease.state for lease in reverted}
    assert states == {
        failing.id: LeaseState.REVERT_FAILED,
        short2.id: LeaseState.REVERTED,
        short1.id: LeaseState.REVERTED,
    }
    assert ledger.get(long.id).state is LeaseState.PENDING
    assert ledger.get(done.id).attempts == 1


def test_revert_owner_reverts_only_that_runs_open_leases(
    ledger: LeaseLedger, tmp_path: Path
) -> None:
    a1 = _take(ledger, _file_change(tmp_path, "a1"), owner="run-a")
    a2 = _take(ledger, _file_change(tmp_path, "a2"), owner="run-a")
    b = _take(ledger, _file_change(tmp_path, "b"), owner="run-b")
    ledger.activate(a1.id)

    reverted = ledger.revert_owner("run-a")
    assert [lease.id for lease in reverted] == [a2.id, a1.id]
    assert all(lease.state is LeaseState.REVERTED for lease in reverted)
    assert ledger.get(b.id).state is LeaseState.PENDING
    assert ledger.revert_owner("run-a") == []


def test_list_filters_by_state_and_owner(ledger: LeaseLedger, tmp_path: Path) -> None:
    a = _take(ledger, _file_change(tmp_path, "a"), owner="run-a")
    b = _take(ledger, _file_change(tmp_path, "b"), owner="run-b")
    ledger.revert(b.id)
    assert [x.id for x in ledger.list()] == [a.id, b.id]
    assert [x.id for x in ledger.list(state="reverted")] == [b.id]
    assert [x.id for x in ledger.list(state=LeaseState.PENDING, owner="run-a")] == [a.id]
    assert ledger.list(state="pending", owner="run-b") == []
    with pytest.raises(LeaseError, match="unknown lease state 'gone'"):
        ledger.list(state="gone")


# --- what the ledger refuses -----------------------------------------------------------------


@pytest.mark.parametrize(
    "server",
    [
        "postgresql://app:hunter2@db.internal/shop",
        "postgresql+psycopg://app:hunter2@db.internal:5432/shop",
        "host=db.internal user=app password=hunter2 dbname=shop",
        "postgresql://db.internal/shop?password=hunter2",
    ],
)
def test_password_in_a_dsn_is_refused(ledger: LeaseLedger, server: str) -> None:
    with pytest.raises(LeaseError, match="undo payload at 'server' holds a password") as err:
        ledger.take(
            "postgres_database",
            "shop copy",
            owner="run-1",
            ttl=HOUR,
            undo={"server": server, "dbname": "shop_copy"},
        )
    assert "hunter2" not in str(err.value)
    assert ledger.list() == []


def test_password_nested_or_under_a_password_key_is_refused(
    ledger: LeaseLedger, tmp_path: Path
) -> None:
    payload = _file_change(tmp_path, "a")
    with pytest.raises(LeaseError, match=r"at 'hosts\[1\]' holds a password"):
        _take(ledger, {**payload, "hosts": ["ssh://bastion", "https://u:hunter2@api"]})
    with pytest.raises(LeaseError, match=r"at 'auth\.password' holds a password"):
        _take(ledger, {**payload, "auth": {"user": "u", "password": "hunter2"}})
    ref = _take(ledger, {**payload, "auth": {"password": {"env": "API_PASSWORD"}}})
    with pytest.raises(LeaseError, match="target holds a password"):
        ledger.take("test_file", "postgresql://u:hunter2@h/db", owner="r", ttl=HOUR, undo=payload)
    assert [lease.id for lease in ledger.list()] == [ref.id]  # a secret reference is fine


def test_dsns_without_passwords_and_secret_refs_are_accepted(ledger: LeaseLedger) -> None:
    for server in (
        "host=127.0.0.1 port=5432 user=postgres",
        {"env": "DEBUG_DSN"},
        {"secret": "debug-db"},
    ):
        lease = ledger.take(
            "postgres_database", "x", owner="r", ttl=HOUR, undo={"server": server, "dbname": "x"}
        )
        assert lease.undo["server"] == server


def test_bad_payload_for_a_known_kind_is_refused(ledger: LeaseLedger) -> None:
    with pytest.raises(LeaseError, match="bad undo payload: dbname: Field required"):
        ledger.take("postgres_database", "x", owner="r", ttl=HOUR, undo={"server": "host=h"})


def test_unknown_kind_is_refused_when_taking(ledger: LeaseLedger) -> None:
    with pytest.raises(LeaseError, match="unknown lease kind 'flux_capacitor'"):
        ledger.take("flux_capacitor", "x", owner="r", ttl=HOUR, undo={})
    assert ledger.list() == []


def test_unknown_kind_at_revert_time_is_a_failed_revert(ledger: LeaseLedger) -> None:
    """A lease written by a process that knew a kind this one does not: recorded, not lost."""
    now = datetime.now(UTC)
    with ledger.engine.begin() as conn:
        conn.execute(
            leases_table.insert().values(
                id="foreign",
                kind="flux_capacitor",
                target="x",
                description="",
                owner="r",
                created_at=now,
                expires_at=now,
                state="active",
                undo={},
                attempts=0,
            )
        )
    lease = ledger.revert("foreign")
    assert lease.state is LeaseState.REVERT_FAILED
    assert "unknown lease kind 'flux_capacitor'" in (lease.outcome or "")


def test_a_kind_cannot_be_registered_twice() -> None:
    assert "test_file" in undo_kinds()
    with pytest.raises(LeaseError, match="'test_file' is already registered"):
        register_undo("test_file")(lambda payload: "other")


# --- leased() -------------------------------------------------------------------------------


def test_leased_marks_active_after_the_body_and_does_not_revert(
    ledger: LeaseLedger, tmp_path: Path
) -> None:
    path = tmp_path / "a"
    payload = {"path": str(path), "log": str(tmp_path / "a.log")}
    with leased(ledger, "test_file", "a", "run-1", HOUR, payload) as lease:
        assert ledger.get(lease.id).state is LeaseState.PENDING
        path.write_text("changed")
    assert ledger.get(lease.id).state is LeaseState.ACTIVE
    assert path.exists()


def test_leased_reverts_at_once_when_the_body_fails(ledger: LeaseLedger, tmp_path: Path) -> None:
    path = tmp_path / "a"
    payload = {"path": str(path), "log": str(tmp_path / "a.log")}
    with (
        pytest.raises(ValueError, match="half way"),
        leased(ledger, "test_file", "a", "run-1", HOUR, payload),
    ):
        path.write_text("changed")
        raise ValueError("half way")
    [lease] = ledger.list()
    assert lease.state is LeaseState.REVERTED
    assert not path.exists()


# --- where the ledger lives ------------------------------------------------------------------


def test_default_ledger_is_a_file_in_the_state_directory_not_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LADDER_LEDGER_URL", raising=False)
    monkeypatch.delenv("LADDER_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    LeaseLedger().close()
    assert (tmp_path / "state" / "ladder" / "leases.db").exists()
    assert not (tmp_path / ".ladder").exists()

    monkeypatch.setenv("LADDER_HOME", str(tmp_path / "home"))
    LeaseLedger().close()
    assert (tmp_path / "home" / "leases.db").exists()


def test_processes_opening_a_new_ledger_file_at_once_all_get_it(tmp_path: Path) -> None:
    # The switch to WAL fails at once with "database is locked" if another opener holds the new
    # file; before it was retried, about one new file in ten failed for one of three openers.
    errors: list[Exception] = []

    def opener(url: str) -> None:
        try:
            LeaseLedger(url).close()
        except Exception as exc:
            errors.append(exc)

    for n in range(60):
        url = f"sqlite:///{tmp_path / str(n) / 'leases.db'}"
        threads = [threading.Thread(target=opener, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_two_ledgers_write_to_one_sqlite_file_at_once(ledger_url: str, tmp_path: Path) -> None:
    errors: list[Exception] = []

    def writer(name: str) -> None:
        try:  # opening a new file at the same moment as the other writer is part of the test
            led = LeaseLedger(ledger_url)
        except BaseException as exc:  # whatever stops a writer must show in the assertion
            errors.append(exc)
            return
        try:
            for i in range(25):
                payload = {"path": str(tmp_path / f"{name}{i}"), "log": str(tmp_path / "w.log")}
                lease = led.take("test_file", f"{name}{i}", owner=name, ttl=HOUR, undo=payload)
                led.activate(lease.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            led.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("flow", "janitor")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    led = LeaseLedger(ledger_url)
    states = [(lease.owner, lease.state.value) for lease in led.list()]
    assert len([s for s in states if s[1] == "active"]) == 50, states
    led.close()


# --- the CLI --------------------------------------------------------------------------------

runner = CliRunner()


def _cli(*args: str) -> Any:
    from cli.leases import app

    return runner.invoke(app, list(args))


def test_cli_is_registered_as_ladder_leases() -> None:
    from cli import app

    result = runner.invoke(app, ["leases", "--help"])
    assert result.exit_code == 0, result.output
    assert "list" in result.stdout and "revert" in result.stdout


def test_cli_list_json(ledger: LeaseLedger, tmp_path: Path) -> None:
    lease = _take(ledger, _file_change(tmp_path, "a"), owner="cli:root")
    result = _cli("list", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["id"] == lease.id
    assert row["state"] == "pending"
    assert row["owner"] == "cli:root"
    assert row["expires_at"] == lease.expires_at.isoformat()


def test_cli_list_table_and_filters(ledger: LeaseLedger, tmp_path: Path) -> None:
    a = _take(ledger, _file_change(tmp_path, "a"), owner="run-a")
    b = _take(ledger, _file_change(tmp_path, "b"), owner="run-b")
    result = _cli("list", "--owner", "run-b")
    assert result.exit_code == 0, result.output
    assert b.id in result.stdout and a.id not in result.stdout
    assert "in 59m" in result.stdout

    result = _cli("list", "--state", "gone")
    assert result.exit_code == 1  # usage errors end like any other: one error: line, exit 1
    assert "gone" in result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "none given"),
        (["abc", "--expired"], "got ID and --expired"),
        (["--expired", "--run", "r"], "got --expired and --run"),
    ],
)
def test_cli_revert_needs_exactly_one_selector(
    ledger: LeaseLedger, args: list[str], said: str
) -> None:
    result = _cli("revert", *args)
    assert result.exit_code == 1  # usage errors end like any other: one error: line, exit 1
    flat = " ".join(result.output.replace("│", " ").split())
    assert "give exactly one of ID, --expired or --run RUN_ID" in flat
    assert said in flat


def test_cli_revert_expired(ledger: LeaseLedger, tmp_path: Path) -> None:
    expiring = _take(ledger, _file_change(tmp_path, "old"), ttl=timedelta(milliseconds=1))
    fresh = _take(ledger, _file_change(tmp_path, "new"))
    while not ledger.get(expiring.id).is_expired():
        time.sleep(0.01)

    result = _cli("revert", "--expired")
    assert result.exit_code == 0, result.output
    assert f"reverted {expiring.id} (test_file old): removed old" in result.stdout
    assert fresh.id not in result.output
    assert ledger.get(fresh.id).state is LeaseState.PENDING

    result = _cli("revert", "--expired")
    assert (result.exit_code, result.stdout.strip()) == (0, "nothing to revert")


def test_cli_revert_one_and_by_run(ledger: LeaseLedger, tmp_path: Path) -> None:
    one = _take(ledger, _file_change(tmp_path, "one"), owner="run-a")
    two = _take(ledger, _file_change(tmp_path, "two"), owner="run-b")
    result = _cli("revert", one.id)
    assert result.exit_code == 0, result.output
    assert f"reverted {one.id}" in result.stdout
    result = _cli("revert", "--run", "run-b")
    assert result.exit_code == 0, result.output
    assert f"reverted {two.id}" in result.stdout


def test_cli_revert_failure_exits_1_naming_the_lease(ledger: LeaseLedger, tmp_path: Path) -> None:
    payload = _file_change(tmp_path, "a", blocker=True)
    lease = _take(ledger, payload)
    result = _cli("revert", lease.id)
    assert result.exit_code == 1
    assert f"FAILED {lease.id} (test_file a) after 1 attempt(s): RuntimeError:" in result.stderr

    result = _cli("revert", "nope")
    assert result.exit_code == 1
    assert "no lease with id 'nope'" in result.stderr


def test_a_process_that_imported_no_connector_still_knows_every_kind(tmp_path: Path) -> None:
    """The janitor imports nothing but the ledger: the kinds defined next to their connectors
    and rungs are found by the package walk, with no list of modules to keep."""
    import subprocess
    import sys

    code = (
        "import sys; from ladder.leases import LeaseLedger, undo_kinds; "
        "assert 'ladder.connectors.postgres_leases' not in sys.modules; "
        "ledger = LeaseLedger(sys.argv[1]); "
        "ledger.take('postgres_database', 'x', owner='r',"
        " ttl=__import__('datetime').timedelta(hours=1),"
        " undo={'server': 'host=127.0.0.1 port=1', 'dbname': 'x'}); "
        "print(' '.join(undo_kinds()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, f"sqlite:///{tmp_path / 'l.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "postgres_database" in out.stdout.split()

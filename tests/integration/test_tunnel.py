"""Rung 3's tunnel against real parts: sshd on loopback, a PostgreSQL primary and its streaming
standby, the keeper process, the lease ledger. Nothing is mocked."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from servers.sshd import KEY_ENV, Sshd

from ladder.config import DatabaseConfig, Environment
from ladder.connectors.postgres import connect
from ladder.errors import HostKeyError, NotReadOnlyError
from ladder.leases import LeaseLedger, LeaseState
from ladder.procs import pid_alive, run
from ladder.sandbox.cluster import Cluster
from ladder.tunnel import OpenedTunnel, open_read_only_tunnel, read_status

pytestmark = pytest.mark.integration

READER = "tunnel_reader"
WRITER = "tunnel_writer"


@pytest.fixture
def key_env(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, sshd.private_key_text)
    return KEY_ENV


@pytest.fixture
def ledger() -> Iterator[LeaseLedger]:
    led = LeaseLedger()  # the test's own LADDER_HOME (tests/conftest.py)
    yield led
    for lease in led.list():
        led.revert(lease.id)  # nothing a failed test opened outlives it
    led.close()


@pytest.fixture(scope="module")
def roles(pg_cluster: Cluster) -> Iterator[None]:
    """On the primary: a table, a role that can only read it, and one that may write to it."""
    with connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS tunnel_orders (id int PRIMARY KEY)")
        for role in (READER, WRITER):
            conn.execute(f"DROP ROLE IF EXISTS {role}")
            conn.execute(f"CREATE ROLE {role} LOGIN")
            conn.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
        conn.execute(f"GRANT SELECT ON tunnel_orders TO {READER}, {WRITER}")
        conn.execute(f"GRANT INSERT ON tunnel_orders TO {WRITER}")
    yield
    with connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP TABLE tunnel_orders")
        for role in (READER, WRITER):
            conn.execute(f"DROP ROLE {role}")


def environment(sshd: Sshd, target: str, **ssh: object) -> Environment:
    return Environment(name="test", ssh=sshd.config(**ssh), tunnel_db=DatabaseConfig(dsn=target))


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def assert_closed(tunnel: OpenedTunnel) -> None:
    eventually(lambda: not pid_alive(tunnel.keeper.pid), "the keeper exits")
    assert not accepts(tunnel.local_port)


def test_the_dsn_works_through_the_tunnel_and_refuses_writes(
    sshd: Sshd, key_env: str, pg_standby: Cluster, ledger: LeaseLedger
) -> None:
    env = environment(sshd, pg_standby.dsn())
    tunnel = open_read_only_tunnel(env, owner="test", ttl=timedelta(minutes=5), ledger=ledger)

    params = conninfo_to_dict(tunnel.dsn)
    assert params["host"] == "127.0.0.1" and int(params["port"]) == tunnel.local_port
    assert params["options"] == "-c default_transaction_read_only=on"
    assert "standby" in tunnel.read_only
    psql = run(["psql", tunnel.dsn, "-Atc", "SHOW default_transaction_read_only"])
    assert psql.ok and psql.stdout == "on\n", psql.describe()  # the DSN as the engineer pastes it
    with psycopg.connect(tunnel.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT inet_server_port()").fetchone() == (pg_standby.port,)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE tunnel_nope (id int)")
    lease = ledger.get(tunnel.lease.id)
    assert lease.kind == "ssh_tunnel" and lease.state is LeaseState.ACTIVE
    assert lease.undo["pid"] == tunnel.keeper.pid

    released = ledger.revert(tunnel.lease.id)  # what the hold's *release* and the run's end do

    assert released.state is LeaseState.REVERTED
    assert released.outcome == (
        f"closed the tunnel on 127.0.0.1:{tunnel.local_port} (keeper pid {tunnel.keeper.pid})"
    )
    assert_closed(tunnel)


def test_a_role_that_can_only_read_is_accepted_on_a_primary(
    sshd: Sshd, key_env: str, pg_cluster: Cluster, roles: None, ledger: LeaseLedger
) -> None:
    target = pg_cluster.dsn().replace("user=postgres", f"user={READER}")
    tunnel = open_read_only_tunnel(environment(sshd, target), owner="t", ttl=timedelta(minutes=5),
                                   ledger=ledger)  # fmt: skip
    assert f"role {READER} can only read" in tunnel.read_only
    with (
        psycopg.connect(tunnel.dsn, autocommit=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("INSERT INTO tunnel_orders VALUES (1)")
    ledger.revert(tunnel.lease.id)
    assert_closed(tunnel)


@pytest.mark.parametrize(
    ("user", "says"),
    [
        ("postgres", "role postgres is a superuser; role postgres has default_transaction_read_only=off"),
        (WRITER, f"role {WRITER} may write to 1 table(s) (public.tunnel_orders)"),
    ],
    ids=["superuser", "write-grant"],
)
def test_a_writable_target_is_refused_and_the_tunnel_closed(
    sshd: Sshd, key_env: str, pg_cluster: Cluster, roles: None, ledger: LeaseLedger,
    user: str, says: str,
) -> None:  # fmt: skip
    target = pg_cluster.dsn().replace("user=postgres", f"user={user}")
    with pytest.raises(NotReadOnlyError, match="refusing to hand out") as err:
        open_read_only_tunnel(environment(sshd, target), owner="t", ttl=timedelta(minutes=5),
                              ledger=ledger)  # fmt: skip
    assert says in str(err.value)
    [lease] = ledger.list()
    assert lease.state is LeaseState.REVERTED and lease.outcome.startswith("closed the tunnel")
    eventually(lambda: not pid_alive(lease.undo["pid"]), "the keeper exits")
    assert not accepts(lease.undo["local_port"])


def test_the_tunnel_closes_when_its_ttl_passes(
    sshd: Sshd, key_env: str, pg_standby: Cluster, ledger: LeaseLedger
) -> None:
    env = environment(sshd, pg_standby.dsn())
    tunnel = open_read_only_tunnel(env, owner="t", ttl=timedelta(minutes=5), ledger=ledger)
    assert accepts(tunnel.local_port)

    ledger.extend(tunnel.lease.id, datetime.now(UTC))  # its TTL passes now

    assert_closed(tunnel)
    assert read_status(tunnel.keeper.run_dir)["state"] == "closed"
    [reverted] = ledger.revert_expired()  # the janitor's pass finds nothing left to close
    assert reverted.outcome.startswith(f"the tunnel on 127.0.0.1:{tunnel.local_port} was already closed")


def test_the_tunnel_reconnects_after_sshd_is_killed_and_restarted(
    sshd: Sshd, key_env: str, pg_standby: Cluster, ledger: LeaseLedger
) -> None:
    env = environment(sshd, pg_standby.dsn())
    tunnel = open_read_only_tunnel(env, owner="t", ttl=timedelta(minutes=5), ledger=ledger)

    sshd.kill()
    eventually(lambda: read_status(tunnel.keeper.run_dir)["state"] == "reconnecting",
               "the keeper sees the drop")  # fmt: skip
    sshd.restart()
    eventually(lambda: read_status(tunnel.keeper.run_dir).get("reconnects") == 1
               and read_status(tunnel.keeper.run_dir)["state"] == "ready", "it reconnects")  # fmt: skip

    with psycopg.connect(tunnel.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    events = " | ".join(read_status(tunnel.keeper.run_dir)["events"])
    assert "the SSH connection dropped" in events and "reconnected (reconnect 1)" in events
    released = ledger.revert(tunnel.lease.id)
    assert released.outcome.endswith("after 1 reconnect(s))")
    assert_closed(tunnel)


def test_an_unknown_host_key_stops_the_tunnel(
    sshd: Sshd, key_env: str, pg_standby: Cluster, ledger: LeaseLedger, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    env = environment(sshd, pg_standby.dsn(), known_hosts=str(empty))
    with pytest.raises(HostKeyError, match=r"not in the pinned known_hosts"):
        open_read_only_tunnel(env, owner="t", ttl=timedelta(minutes=5), ledger=ledger)
    [lease] = ledger.list()
    assert lease.state is LeaseState.REVERTED
    assert not pid_alive(lease.undo["pid"]) and not accepts(lease.undo["local_port"])


def test_an_idle_keeper_ends_on_sigterm_and_on_end_of_input() -> None:
    """Before it is leased and instructed a keeper has opened nothing: SIGTERM (the opener's
    cleanup when the lease cannot be recorded) or its parent going away ends it cleanly."""
    import signal

    from ladder.tunnel import process

    for end in ("sigterm", "eof"):
        keeper = process.spawn_keeper()
        proc = process._children.pop(keeper.pid)
        assert process.is_keeper(keeper.pid, keeper.start_time)
        # wait until it blocks reading its instructions (its imports done, its handlers set)
        wchan = Path(f"/proc/{keeper.pid}/wchan")
        eventually(lambda w=wchan: "pipe_read" in w.read_text(), "the keeper waits on its stdin")
        if end == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            assert proc.stdin is not None
            proc.stdin.close()
        assert proc.wait(timeout=60) == 0, (keeper.run_dir / "keeper.log").read_text()
        assert not (keeper.run_dir / "status.json").exists()  # it never connected


def test_a_password_in_the_replica_dsn_is_never_handed_out_or_recorded(
    sshd: Sshd, key_env: str, pg_standby: Cluster, ledger: LeaseLedger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    secret = "pw-tunnel-0f3a9c"
    monkeypatch.setenv("LADDER_TEST_REPLICA_DSN", f"{pg_standby.dsn()} password={secret}")
    env = Environment(name="test", ssh=sshd.config(),
                      tunnel_db=DatabaseConfig(dsn={"env": "LADDER_TEST_REPLICA_DSN"}))  # fmt: skip
    tunnel = open_read_only_tunnel(env, owner="t", ttl=timedelta(minutes=5), ledger=ledger)
    lease = ledger.get(tunnel.lease.id)
    seen = [tunnel.dsn, tunnel.target, tunnel.read_only, lease.target, lease.description,
            str(lease.undo), *(p.read_text() for p in tunnel.keeper.run_dir.iterdir())]  # fmt: skip
    assert all(secret not in text for text in seen)
    ledger.revert(tunnel.lease.id)
    assert_closed(tunnel)


def test_a_keeper_that_cannot_reconnect_gives_up_and_releases_its_lease(
    sshd: Sshd, key_env: str, pg_standby: Cluster, ledger: LeaseLedger
) -> None:
    env = environment(sshd, pg_standby.dsn())
    tunnel = open_read_only_tunnel(env, owner="t", ttl=timedelta(minutes=5), ledger=ledger,
                                   max_reconnects=1)  # fmt: skip

    sshd.kill()  # and it stays down

    eventually(lambda: ledger.get(tunnel.lease.id).state is LeaseState.REVERTED,
               "the keeper gives up and reverts its lease")  # fmt: skip
    lease = ledger.get(tunnel.lease.id)
    assert lease.outcome.startswith(
        f"the tunnel on 127.0.0.1:{tunnel.local_port} closed: its keeper gave up after 1 "
        "reconnect attempts: "
    ), lease.outcome
    assert_closed(tunnel)
    assert read_status(tunnel.keeper.run_dir)["state"] == "failed"

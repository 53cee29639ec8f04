"""Rung 6 on VMs against real nginx and two real Pumas on loopback: the app behind nginx, and
the debug replica that rung 6 starts. Which process served a request is read from the shop's
``X-Shop-Pid`` header, not from anything Ladder says."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from servers.nginx import Front
from servers.sshd import KEY_ENV, Sshd

from ladder.errors import RoutingError
from ladder.leases import LeaseLedger, LeaseState
from ladder.procs import pid_alive
from ladder.replica_app.vm import OpenedRoute, RoutePlan, open_route, plan_from

pytestmark = pytest.mark.integration

TTL = timedelta(minutes=5)


@pytest.fixture(autouse=True)
def _reverted(ledger: LeaseLedger, front: Front) -> Iterator[None]:
    """Whatever a test leaves open is reverted before nginx stops, even when it failed: no
    replica outlives its test."""
    yield
    ledger.revert_owner("run-1")


def _plan(front: Front, **lb: object) -> RoutePlan:
    return plan_from(front.lb(**lb), "inc-1-run", {"LOG_LEVEL": "debug"}, 60)  # type: ignore[arg-type]


def _served_by(front: Front, token: str | None = None, cookie: bool = False) -> int:
    headers = {"X-Debug-Replica": token} if token and not cookie else {}
    cookies = {"debug_replica": token} if token and cookie else {}
    with httpx.Client(cookies=cookies, timeout=10) as client:
        res = client.get(f"{front.url}/health", headers=headers)
    assert res.status_code == 200, res.text
    return int(res.headers["x-shop-pid"])


def _open(front: Front, ledger: LeaseLedger, plan: RoutePlan | None = None) -> OpenedRoute:
    return open_route(plan or _plan(front), ledger, "run-1", TTL)


def test_tagged_requests_reach_the_replica_untagged_never(
    front: Front, ledger: LeaseLedger
) -> None:
    app_pid = front.app.pid()
    opened = _open(front, ledger)

    assert opened.pid != app_pid and pid_alive(opened.pid)
    assert {_served_by(front, opened.token) for _ in range(20)} == {opened.pid}
    assert {_served_by(front, opened.token, cookie=True) for _ in range(20)} == {opened.pid}
    assert {_served_by(front) for _ in range(40)} == {app_pid}
    assert {_served_by(front, "0" * 32) for _ in range(10)} == {app_pid}  # another token
    environ = Path(f"/proc/{opened.pid}/environ").read_bytes().split(b"\0")
    assert b"LOG_LEVEL=debug" in environ
    assert ledger.get(opened.process_lease.id).state is LeaseState.ACTIVE
    assert ledger.get(opened.route_lease.id).state is LeaseState.ACTIVE
    assert len(opened.checks) == 3

    ledger.revert_owner("run-1")
    assert not pid_alive(opened.pid)


def test_revert_restores_the_old_routing_and_the_include_byte_for_byte(
    front: Front, ledger: LeaseLedger
) -> None:
    app_pid = front.app.pid()
    before = b"# hand-written\r\n\"~^keep:\" \"127.0.0.1:1\";\n# caf\xe9, no final newline"
    front.nginx.include.write_bytes(before)
    front.nginx.include.chmod(0o640)
    opened = _open(front, ledger)
    assert front.nginx.include.read_bytes().startswith(before + b"\n# ladder route inc-1-run")

    reverted = ledger.revert_owner("run-1")

    assert [lease.state for lease in reverted] == [LeaseState.REVERTED] * 2
    assert front.nginx.include.read_bytes() == before
    assert front.nginx.include.stat().st_mode & 0o777 == 0o640
    assert {_served_by(front, opened.token) for _ in range(10)} == {app_pid}
    assert not pid_alive(opened.pid)
    assert not Path(opened.run_dir).exists()
    again = [ledger.revert(lease.id).state for lease in reverted]  # idempotent
    assert again == [LeaseState.REVERTED] * 2


def test_revert_takes_out_only_its_block_when_the_include_changed_since(
    front: Front, ledger: LeaseLedger
) -> None:
    opened = _open(front, ledger)
    added = b'"~^other:" "127.0.0.1:2";\n'
    with front.nginx.include.open("ab") as f:
        f.write(added)

    ledger.revert(opened.route_lease.id)

    text = front.nginx.include.read_bytes()
    assert opened.token.encode() not in text and text.endswith(added)
    assert _served_by(front, opened.token) == front.app.pid()
    ledger.revert_owner("run-1")


def test_a_burst_of_requests_during_the_reloads_loses_none(
    front: Front, ledger: LeaseLedger
) -> None:
    app_pid = front.app.pid()
    seen: Counter[object] = Counter()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:  # a new connection per request, as clients reach a load balancer
                res = httpx.get(f"{front.url}/health", timeout=10,
                                headers={"Connection": "close"})  # fmt: skip
                seen[int(res.headers.get("x-shop-pid", 0)) if res.status_code == 200 else
                     res.status_code] += 1  # fmt: skip
            except httpx.HTTPError as exc:
                seen[type(exc).__name__] += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(2):  # two reloads each time: route added, route removed
            _open(front, ledger)
            ledger.revert_owner("run-1")
    finally:
        stop.set()
        for t in threads:
            t.join()

    assert set(seen) == {app_pid}, seen  # every untagged request answered, by the app only
    assert seen[app_pid] > 0


def test_a_configuration_nginx_refuses_reverts_both_changes(
    front: Front, ledger: LeaseLedger
) -> None:
    before = front.nginx.include.read_bytes()
    plan = _plan(front, test_command=["sh", "-c", "echo 'emerg: bad map' >&2; exit 1"])

    with pytest.raises(RoutingError, match="nginx refused the configuration: emerg: bad map"):
        _open(front, ledger, plan)

    assert front.nginx.include.read_bytes() == before
    leases = ledger.list(owner="run-1")
    assert [lease.kind for lease in leases] == ["replica_process", "nginx_route"]
    assert {lease.state for lease in leases} == {LeaseState.REVERTED}
    assert "stopped the debug replica" in (leases[0].outcome or "")
    assert not any(Path(front.directory).glob("ladder-replica-*"))


def test_a_replica_that_cannot_start_is_reported_with_its_log(
    front: Front, ledger: LeaseLedger
) -> None:
    lb = front.lb()
    assert lb.replica is not None
    broken = lb.replica.model_copy(update={"command": ["sh", "-c", "echo no such app; exit 3"]})
    plan = plan_from(lb.model_copy(update={"replica": broken}), "inc-1-run", {}, 30)
    before = front.nginx.include.read_bytes()

    with pytest.raises(RoutingError, match="the debug replica exited: no such app"):
        _open(front, ledger, plan)

    assert front.nginx.include.read_bytes() == before
    assert {lease.state for lease in ledger.list(owner="run-1")} == {LeaseState.REVERTED}


def test_over_ssh(
    front: Front, ledger: LeaseLedger, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load balancer's host and the replica's host reached with fabric (a real sshd)."""
    monkeypatch.setenv(KEY_ENV, sshd.private_key_text)
    plan = plan_from(front.lb(ssh=sshd.config()), "inc-1-ssh", {"LOG_LEVEL": "debug"}, 60)
    before = front.nginx.include.read_bytes()

    opened = open_route(plan, ledger, "run-1", TTL)

    assert _served_by(front, opened.token) == opened.pid
    assert _served_by(front) == front.app.pid()
    undo = ledger.get(opened.route_lease.id).undo
    assert undo["host"]["ssh"]["key"] == {"env": KEY_ENV}  # a reference, never the key
    ledger.revert_owner("run-1")
    assert front.nginx.include.read_bytes() == before
    assert not pid_alive(opened.pid)

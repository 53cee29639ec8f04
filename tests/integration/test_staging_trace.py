"""Rung 4 against real parts: the shop on Puma with rbtrace, reached through a real sshd.

Each test climbs the rung's runner (no Prefect) on a runbook written into a temporary directory
and checks what the host looks like afterwards: no tracer attached (a fresh ``rbtrace -e 1``
works), no probe installed, every lease reverted.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servers.puma import FAILING_USER, OK_USER
from servers.sshd import KEY_ENV
from trace_helpers import (
    OWNER,
    climb_state,
    failing_checkout,
    fresh_eval,
    settings_of,
    ssh_staging,
    write_runbook,
)

from ladder.connectors import rbtrace
from ladder.connectors.hosts import LocalHost
from ladder.errors import GuardrailError, RbtraceError
from ladder.leases import LeaseLedger
from ladder.rungs.staging_trace import StagingTraceResult, run
from ladder.trace.parse import parse_trace

pytestmark = pytest.mark.integration


@pytest.fixture
def ssh_key(sshd, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(KEY_ENV, sshd.private_key_text)


@pytest.fixture
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trace-work")


def _leases() -> dict[str, str]:
    return {lease.kind: lease.state.value for lease in LeaseLedger().list(owner=OWNER)}


def _probe_installed(pid: int) -> str:
    return rbtrace.evaluate(
        LocalHost(), pid, "defined?(LadderProbes::Raises) ? "
        "!LadderProbes::Raises.instance_variable_get(:@tracepoint).nil? : :never_loaded",
    )  # fmt: skip


def test_replayed_failing_request_shows_failing_method_and_exception(
    sshd, puma, ssh_key, work_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    runbook = write_runbook(tmp_path, ssh_staging(sshd, puma, work_dir))
    state = climb_state(runbook, [failing_checkout(FAILING_USER)])

    result = run(state, settings_of(runbook))

    assert isinstance(result, StagingTraceResult), result.reason
    assert result.status == "done"
    assert result.target_pid == puma.pid()
    assert [r["status"] for r in result.replayed] == [500]
    raised = {(e["exception"], e["raised in"]) for e in result.exceptions}
    assert ("NoMethodError", "Shop::Payment#capture!") in raised
    assert "Shop::Payment#capture!" in result.trace
    assert any("FROM payments" in s for s in result.sql), result.trace
    assert "NoMethodError" in (result.details_markdown or "")
    # nothing left behind: the tracer detached, the probe undone, every lease reverted
    assert fresh_eval(puma.pid()).ok
    assert _probe_installed(puma.pid()) == "false"
    assert _leases() == {"rbtrace_probe": "reverted", "rbtrace_tracer": "reverted"}
    assert list(work_dir.iterdir()) == []


def test_runbook_requests_replayed_without_evidence(
    sshd, puma, ssh_key, work_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    requests = [{"method": "POST", "path": "/checkout", "user_id": OK_USER}]
    rung = {
        "requests": requests,
        "identity": {"cookie": "_shop_session", "value": "user_id={user_id}"},
        "backtraces": 5,
    }
    runbook = write_runbook(tmp_path, ssh_staging(sshd, puma, work_dir), rung)

    result = run(climb_state(runbook), settings_of(runbook))

    assert isinstance(result, StagingTraceResult), result.reason
    assert [r["status"] for r in result.replayed] == [201]  # the session cookie said who
    assert "Shop::Payment#capture!" in result.trace
    assert not [e for e in result.exceptions if e["exception"] == "NoMethodError"]
    details = result.details_markdown or ""
    assert (
        "### Thread backtraces" in details and "puma/" in details.split("### Thread backtraces")[1]
    )


def test_slow_calls_are_traced_as_a_tree(sshd, puma, ssh_key, work_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``slow_ms`` alone (no selectors): every call slower than 1 ms, put back into its tree.
    The checkout connects to PostgreSQL twice, far above 1 ms."""
    rung = {"methods": [], "probes": [], "slow_ms": 1}
    runbook = write_runbook(tmp_path, ssh_staging(sshd, puma, work_dir), rung)

    result = run(climb_state(runbook, [failing_checkout(FAILING_USER)]), settings_of(runbook))

    assert isinstance(result, StagingTraceResult), result.reason
    checkout = [c for c in parse_trace(result.trace).all_calls() if c.name.endswith("#call")]
    assert any(c.name == "Shop::CheckoutService#call" for c in checkout)
    under = {d.name for c in checkout for d in c.walk()}
    assert "Shop::Payment#capture!" in under  # its slow child, under it
    assert fresh_eval(puma.pid()).ok


def test_probe_lease_is_reverted_by_the_janitor(
    sshd, puma, ssh_key, work_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A probe left installed (the run died) is undone when the janitor reverts its lease."""
    from ladder.connectors.hosts import HostRef

    write_runbook(tmp_path, {})
    ref = HostRef(ssh=sshd.config())
    host = ref.open()
    pid = puma.pid()
    files = [f"{work_dir}/exceptions.rb", f"{work_dir}/exceptions.undo.rb"]
    for local, remote in zip(("exceptions.rb", "exceptions.undo.rb"), files, strict=True):
        host.put(tmp_path / "probes" / local, remote)
    ledger = LeaseLedger()
    lease = ledger.take(
        "rbtrace_probe", f"probe in {pid}", owner=OWNER, ttl=timedelta(minutes=1),
        undo={"host": ref.model_dump(mode="json"), "target_pid": pid, "probe": "exceptions.rb",
              "undo_file": files[1], "files": files},
    )  # fmt: skip
    rbtrace.load_file(host, pid, files[0])
    ledger.activate(lease.id)
    host.close()
    assert _probe_installed(pid) == "true"

    reverted = ledger.revert_expired(datetime.now(UTC) + timedelta(minutes=2))

    assert [r.state.value for r in reverted] == ["reverted"]
    assert "undone" in (reverted[0].outcome or "")
    assert _probe_installed(pid) == "false"
    assert not any(Path(f).exists() for f in files)


def test_stale_rbtrace_socket_is_removed(sshd, puma, ssh_key, work_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pid = puma.pid()
    stale = Path(rbtrace.socket_path(pid))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(stale))  # closed without unlinking: what a SIGKILLed client leaves
    assert not fresh_eval(pid).ok  # the trap is real: nothing can attach now
    runbook = write_runbook(tmp_path, ssh_staging(sshd, puma, work_dir))

    result = run(climb_state(runbook, [failing_checkout(FAILING_USER)]), settings_of(runbook))

    assert isinstance(result, StagingTraceResult), result.reason
    assert any("removed a stale rbtrace socket" in c for c in result.checks)
    assert fresh_eval(pid).ok


def test_target_without_rbtrace_is_explained(
    sshd, puma_plain, ssh_key, work_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    runbook = write_runbook(tmp_path, ssh_staging(sshd, puma_plain, work_dir))

    with pytest.raises(RbtraceError) as caught:
        run(climb_state(runbook, [failing_checkout(FAILING_USER)]), settings_of(runbook))

    message = str(caught.value)
    assert "does not have rbtrace loaded" in message
    assert "RUBYOPT=-rrbtrace" in message
    assert "\n" not in message
    assert _leases() == {}  # refused before anything was installed


def test_tracer_is_detached_when_the_replay_fails(
    sshd, puma, ssh_key, work_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The staging app does not answer mid-trace: the rung fails, and still leaves nothing."""
    from ladder.procs import free_port

    staging = {**ssh_staging(sshd, puma, work_dir), "app_url": f"http://127.0.0.1:{free_port()}"}
    runbook = write_runbook(tmp_path, staging)

    with pytest.raises(Exception, match="did not answer"):
        run(climb_state(runbook, [failing_checkout(FAILING_USER)]), settings_of(runbook))

    assert fresh_eval(puma.pid()).ok
    assert _probe_installed(puma.pid()) == "false"
    assert _leases() == {"rbtrace_probe": "reverted", "rbtrace_tracer": "reverted"}


def test_cluster_mode_traces_the_chosen_worker(
    sshd, puma_cluster, ssh_key, work_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    staging = ssh_staging(sshd, puma_cluster, work_dir)
    unchosen = write_runbook(tmp_path, staging)
    with pytest.raises(GuardrailError, match="cluster mode: choose the worker"):
        run(climb_state(unchosen, [failing_checkout(FAILING_USER)]), settings_of(unchosen))

    chosen = write_runbook(tmp_path, staging, {"worker": 1})
    result = run(climb_state(chosen, [failing_checkout(FAILING_USER)]), settings_of(chosen))

    assert isinstance(result, StagingTraceResult), result.reason
    workers = puma_cluster.worker_pids()
    assert result.target_pid == workers[1]
    assert all(fresh_eval(pid).ok for pid in workers)


def test_tracer_is_ready_only_once_the_target_has_taken_every_selector(puma, work_dir) -> None:  # type: ignore[no-untyped-def]
    """Every selector of several is in place when the tracer is handed back (the target used to
    leave the second and third unread in its queue now and then, and they missed the replay)."""
    host, pid = LocalHost(), puma.pid()
    selectors = ["Shop::CheckoutService#call", "Shop::Payment#capture!", "Shop::DB.query(sql)"]
    for attempt in range(8):
        output = f"{work_dir}/rbtrace-{attempt}.out"
        tracer = rbtrace.start_tracer(host, pid, selectors, None, 30, output)
        said = Path(output).read_text()
        rbtrace.stop_tracer(host, tracer)
        assert said.count(rbtrace.TRACING) == len(selectors), said
    assert fresh_eval(pid).ok


def test_tracer_left_attached_is_detached_by_the_janitor(sshd, puma, ssh_key, work_dir) -> None:  # type: ignore[no-untyped-def]
    """The run died with the tracer attached: its lease's undo (run by the janitor) detaches it."""
    from ladder.connectors.hosts import HostRef

    ref = HostRef(ssh=sshd.config())
    host = ref.open()
    pid = puma.pid()
    output = f"{work_dir}/rbtrace.out"
    ledger = LeaseLedger()
    lease = ledger.take(
        "rbtrace_tracer", f"rbtrace on {pid}", owner=OWNER, ttl=timedelta(minutes=1),
        undo={"host": ref.model_dump(mode="json"), "target_pid": pid, "output": output},
    )  # fmt: skip
    rbtrace.start_tracer(host, pid, ["Shop::Payment#capture!"], None, 600, output)
    ledger.activate(lease.id)
    host.close()
    assert rbtrace.tracer_clients(LocalHost(), pid)
    assert not fresh_eval(pid).ok  # one tracer per process: this one is still attached

    reverted = ledger.revert_expired(datetime.now(UTC) + timedelta(minutes=2))

    assert [r.state.value for r in reverted] == ["reverted"]
    assert rbtrace.tracer_clients(LocalHost(), pid) == []
    assert fresh_eval(pid).ok
    assert not Path(output).exists()


def test_tracer_stops_itself_at_its_deadline(puma, work_dir) -> None:  # type: ignore[no-untyped-def]
    """Nobody sends SIGINT (Ladder died): ``timeout -s INT`` does, and rbtrace detaches."""
    import time

    host, pid = LocalHost(), puma.pid()
    output = f"{work_dir}/rbtrace.out"
    tracer = rbtrace.start_tracer(host, pid, ["Shop::Payment#capture!"], None, 3, output)
    deadline = time.monotonic() + 30
    while rbtrace.tracer_clients(host, pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rbtrace.tracer_clients(host, pid) == []
    assert "detached from process" in Path(output).read_text()
    assert fresh_eval(pid).ok
    rbtrace.stop_tracer(host, tracer)  # idempotent: already stopped


def test_root_over_ssh_traces_puma_running_as_another_user(
    sshd, puma_as_nobody, ssh_key, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """SSH as root, Puma as ``nobody``: the probes' directory is handed to nobody, who must
    read the probes and write their log (the exception only shows if it could)."""
    staging = {**ssh_staging(sshd, puma_as_nobody, Path("/tmp")), "work_dir": "/tmp"}
    runbook = write_runbook(tmp_path, staging)

    result = run(climb_state(runbook, [failing_checkout(FAILING_USER)]), settings_of(runbook))

    assert isinstance(result, StagingTraceResult), result.reason
    assert ("NoMethodError", "Shop::Payment#capture!") in {
        (e["exception"], e["raised in"]) for e in result.exceptions
    }
    assert fresh_eval(puma_as_nobody.pid()).ok
    assert not list(Path("/tmp").glob(f"trace-ladder-*-{puma_as_nobody.pid()}"))

"""`ladder serve` as a newcomer starts it: no PREFECT_API_URL, so it starts the one Prefect server
itself; a run created from the served deployment pauses at its checkpoint, says so in its Logs
tab, and completes once someone resumes it with an approver."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings
from uiruns import Runs

from cli.serving import SERVER_LOG

pytestmark = pytest.mark.e2e


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    api: str
    prefect_home: Path
    ladder_home: Path
    output: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _listening_ports(pid: int) -> set[int]:
    """TCP ports process ``pid`` itself listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def _answers_health(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _deployments(api: str, want: int = 3, timeout: float = 30) -> list[str]:
    """The deployments' names, once ``want`` are registered (serve registers them one by one)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=api) as client:
        while True:
            names = sorted(d["name"] for d in client.post("/deployments/filter", json={}).json())
            if len(names) >= want or time.monotonic() > deadline:
                return names
            time.sleep(0.5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`ladder serve` started the way a newcomer starts it, from another directory, with its own
    PREFECT_HOME (so no profile's API URL) and LADDER_HOME; stopped by PID afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LADDER_"))}
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "LADDER_HOME": str(tmp_path / "home"),
            "LADDER_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
            "LADDER_CHECKPOINT_POLL_SECONDS": "1",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "DO_NOT_TRACK": "1",
        }
    )
    output = tmp_path / "serve.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(
        proc, f"http://127.0.0.1:{port}/api", tmp_path / "prefect", tmp_path / "home", output
    )
    try:
        with temporary_settings({PREFECT_API_URL: served.api}):
            yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(
                signal.SIGTERM
            )  # SIGINT may be ignored when pytest runs in the background
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_serve_starts_one_server_and_a_run_is_approved_through_it(
    served: Served, runbook_file: Path, runs: Runs
) -> None:
    started = time.monotonic()
    runs.deployment_id()  # registered: the server is up and the deployments are served

    # one server: a `prefect server start` child with its log under PREFECT_HOME, and no API
    # (an ephemeral server) inside the serve process itself
    (server,) = [p for p in _children(served.proc.pid) if "prefect server start" in _cmdline(p)]
    assert not [p for p in _listening_ports(served.proc.pid) if _answers_health(p)]
    assert (served.prefect_home / SERVER_LOG).stat().st_size > 0
    assert "Uvicorn running" not in served.output.read_text()

    assert _deployments(served.api) == ["escalate-incident", "janitor", "refresh-staging"]

    run_id = runs.start(runbook_file)
    assert runs.wait_state(run_id, {"PAUSED"}) == "PAUSED"
    assert runs.wait_log(run_id, "waiting for approval at evidence until ").endswith(" UTC")

    resume_flow_run(run_id, run_input={"decision": "approve", "approver": "ana", "samples": 1})
    assert runs.wait_state(run_id, {"COMPLETED"}) == "COMPLETED"
    (decision,) = runs.report(served.ladder_home)["decisions"]
    assert (decision["decision"], decision["approver"]) == ("approve", "ana")
    runs.wait_log(run_id, "rung evidence: done")

    # stopped by PID: the server goes with it, and it was the only API on its SQLite file
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=40) is not None
    assert not Path(f"/proc/{server}").exists()
    databases = sorted(p.name for p in served.prefect_home.rglob("*.db"))
    assert databases == ["prefect.db"]
    assert time.monotonic() - started < 90


def test_sigterm_while_starting_stops_the_server_too(served: Served) -> None:
    deadline = time.monotonic() + 30
    servers: list[int] = []
    while not servers and time.monotonic() < deadline:
        servers = [p for p in _children(served.proc.pid) if "prefect server start" in _cmdline(p)]
        time.sleep(0.1)
    assert servers, "ladder serve started no server"
    served.proc.send_signal(signal.SIGTERM)  # before the deployments are served
    served.proc.wait(timeout=40)
    assert not [p for p in servers if Path(f"/proc/{p}").exists()]

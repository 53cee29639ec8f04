"""``ladder tunnel open`` as a person runs it, in a subprocess, against sshd and a real standby:
it prints a DSN that works, and closes the tunnel on Ctrl-C or when its TTL passes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from servers.sshd import KEY_ENV, Sshd

from cli.entrypoints import PROJECT_ROOT
from ladder.leases import LeaseLedger, LeaseState
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def runbook(tmp_path: Path, sshd: Sshd, pg_standby: Cluster) -> Path:
    (tmp_path / "env.yaml").write_text(
        f"name: clitest\n{sshd.ssh_yaml()}tunnel_db:\n  dsn: '{pg_standby.dsn()}'\n"
    )
    path = tmp_path / "rb.yaml"
    path.write_text("name: clitest\nenvironment: env.yaml\nrungs:\n  tunnel: {}\n")
    return path


@pytest.fixture
def env(tmp_path: Path, sshd: Sshd) -> dict[str, str]:
    return {
        **os.environ,
        KEY_ENV: sshd.private_key_text,
        "LADDER_HOME": str(tmp_path / "home"),
        "LADDER_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
    }


@pytest.fixture
def ladder(runbook: Path, env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _open(started: list, runbook: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "tunnel", "open", "--runbook", str(runbook), *args],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started.append(proc)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("psql '"):
            return proc, lines
    raise AssertionError(f"no DSN printed: {''.join(lines)}{proc.stderr.read() if proc.stderr else ''}")


def _dsn(lines: list[str]) -> str:
    return lines[-1].strip().removeprefix("psql '").removesuffix("'")


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def test_ctrl_c_closes_the_tunnel(ladder: list, runbook: Path, env: dict[str, str]) -> None:
    proc, lines = _open(ladder, runbook, env)
    dsn = _dsn(lines)
    port = psycopg.conninfo.conninfo_to_dict(dsn)["port"]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    assert "read-only: the server is a standby" in "".join(lines)

    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    assert f"closed the tunnel on 127.0.0.1:{port}" in rest and "Traceback" not in err
    assert not accepts(int(port))
    [lease] = LeaseLedger(env["LADDER_LEDGER_URL"]).list()
    assert lease.kind == "ssh_tunnel" and lease.state is LeaseState.REVERTED
    assert lease.owner.startswith("cli:")


def test_the_tunnel_closes_by_itself_at_its_ttl(
    ladder: list, runbook: Path, env: dict[str, str]
) -> None:
    proc, lines = _open(ladder, runbook, env, "--ttl", "8s")
    port = int(psycopg.conninfo.conninfo_to_dict(_dsn(lines))["port"])

    rest, err = proc.communicate(timeout=120)

    assert proc.returncode == 0, err
    assert "closed: its TTL passed" in rest
    assert not accepts(port)
    [lease] = LeaseLedger(env["LADDER_LEDGER_URL"]).list()
    assert lease.state is LeaseState.REVERTED

"""Rung 3's declaration and its parts that need no server: unavailable without ssh (naming the
Debian package on the sandbox), the read-only DSN, the TTL parser, keeper identity by PID."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from ladder.config import Environment, load_environment
from ladder.errors import ConfigError
from ladder.incident import Incident
from ladder.rungs import ClimbState, rung
from ladder.rungs.tunnel import TunnelSettings
from ladder.tunnel import read_only_dsn, tunnel_target
from ladder.tunnel.process import is_keeper, start_time

INCIDENT = Incident(id="i-1", title="t", started_at=datetime(2026, 1, 1, tzinfo=UTC))


def _state(env: Environment) -> ClimbState:
    return ClimbState(incident=INCIDENT, environment=env, runbook_path=Path("rb.yaml"), owner="o")


def test_the_rung_is_built_and_asks_for_approval() -> None:
    tunnel = rung("tunnel")
    assert tunnel.built and tunnel.approval_by_default and tunnel.hands_over


def test_without_ssh_the_rung_is_unavailable_and_the_sandbox_names_the_package() -> None:
    sandbox = Environment(name="sandbox", sandbox=True).model_copy(
        update={"sandbox_missing": {"ssh": "openssh-server"}}
    )
    result = rung("tunnel").run(_state(sandbox), TunnelSettings())  # type: ignore[misc]
    assert result.status == "unavailable"
    assert result.reason == (
        "the environment 'sandbox' has no ssh section (this machine lacks it: install the "
        "Debian package openssh-server)"
    )
    plain = rung("tunnel").run(_state(Environment(name="prod")), TunnelSettings())  # type: ignore[misc]
    assert plain.status == "unavailable" and plain.reason == "the environment 'prod' has no ssh section"


def test_the_target_is_tunnel_db_else_production_db(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(
        "name: prod\nssh: {host: db, user: ladder, known_hosts: /k}\n"
        "production_db: {dsn: 'host=replica.internal port=5433 dbname=shop user=ro'}\n"
    )
    env = load_environment(path)
    assert tunnel_target(env)[1:] == ("replica.internal", 5433)
    path.write_text(path.read_text() + "tunnel_db: {dsn: 'host=localhost dbname=shop user=ro'}\n")
    assert tunnel_target(load_environment(path))[1:] == ("localhost", 5432)
    path.write_text(path.read_text().replace("host=localhost", "host=/var/run/postgresql"))
    with pytest.raises(ConfigError, match="needs one TCP host"):
        tunnel_target(load_environment(path))


def test_a_private_key_in_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("name: prod\nssh: {host: db, user: u, known_hosts: /k, private_key: hunter2}\n")
    with pytest.raises(ConfigError, match=r"env.yaml:2: ssh.private_key: .*never read from YAML") as err:
        load_environment(path)
    assert "hunter2" not in str(err.value)


def test_the_handed_out_dsn_is_read_only_and_keeps_other_options() -> None:
    dsn = read_only_dsn("host=127.0.0.1 port=6000 user=ro dbname=shop options='-c search_path=app'")
    params = conninfo_to_dict(dsn)
    assert params["options"] == "-c search_path=app -c default_transaction_read_only=on"
    assert (params["host"], params["port"], params["user"], params["dbname"]) == (
        "127.0.0.1", "6000", "ro", "shop",
    )  # fmt: skip
    assert "'" not in dsn and " " not in dsn  # pastes into `psql '...'` as it is


@pytest.mark.parametrize("text", ["soon", "0m", "-5m", "8d", "5 minutes", ""])
def test_bad_ttls_are_refused(text: str) -> None:
    from cli.tunnel import parse_ttl

    with pytest.raises(ConfigError, match=f"--ttl {text!r}"):
        parse_ttl(text)


def test_a_pid_is_a_keeper_only_while_it_is_the_same_process() -> None:
    sleep = "import time; time.sleep(30)"
    keeper = subprocess.Popen([sys.executable, "-c", sleep, "ladder.tunnel.keeper"])
    other = subprocess.Popen([sys.executable, "-c", sleep])
    try:
        started = start_time(keeper.pid)
        assert started is not None
        assert is_keeper(keeper.pid, started)
        assert not is_keeper(keeper.pid, started + 1)  # the same PID, started another time
        assert not is_keeper(other.pid, start_time(other.pid) or 0)  # not a keeper
        assert not is_keeper(os.getpid(), started)
    finally:
        for proc in (keeper, other):
            proc.kill()
            proc.wait()
    assert not is_keeper(keeper.pid, started)


def test_known_hosts_is_relative_to_the_environment_file(tmp_path: Path) -> None:
    (tmp_path / "envs").mkdir()
    path = tmp_path / "envs" / "env.yaml"
    path.write_text("name: prod\nssh: {host: db, user: u, known_hosts: pins/known_hosts}\n")
    env = load_environment(path)
    assert env.ssh is not None and env.ssh.known_hosts == str(tmp_path / "envs" / "pins" / "known_hosts")


@pytest.mark.parametrize("bastion", ["bad host", "a@b@c", "jump:ssh", "jump:22:1", "@jump"])
def test_a_malformed_bastion_is_refused_at_its_line(tmp_path: Path, bastion: str) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(f"name: prod\nssh:\n  host: db\n  user: u\n  known_hosts: /k\n  bastion: '{bastion}'\n")
    with pytest.raises(ConfigError, match=r"env.yaml:6: ssh.bastion: expected user@host\[:port\]"):
        load_environment(path)


def test_runbook_check_warns_when_known_hosts_is_missing_here(tmp_path: Path) -> None:
    from ladder.config import check_runbook

    (tmp_path / "env.yaml").write_text(
        f"name: prod\nssh: {{host: db, user: u, known_hosts: {tmp_path}/pins}}\n"
        "production_db: {dsn: 'host=db dbname=shop'}\n"
    )
    (tmp_path / "rb.yaml").write_text("name: rb\nenvironment: env.yaml\nrungs:\n  tunnel: {}\n")
    errors, warnings = check_runbook(tmp_path / "rb.yaml")
    assert errors == []
    assert warnings == [f"{tmp_path}/rb.yaml:4: rungs.tunnel: ssh.known_hosts {tmp_path}/pins is not a "
                        "file here: every connection will be refused until the host keys are pinned in it"]  # fmt: skip
    (tmp_path / "pins").write_text("")
    assert check_runbook(tmp_path / "rb.yaml") == ([], [])


def test_keeper_directories_older_than_a_week_are_pruned(tmp_path: Path) -> None:
    from ladder.tunnel.process import _prune

    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
        (d / "keeper.log").write_text("x")
    for f in (old / "keeper.log", old):
        os.utime(f, (0, 0))
    _prune(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]

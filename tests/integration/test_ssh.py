"""The SSH connector against a real sshd on loopback: commands, pinned host keys, keys from
secrets, a bastion as gateway, and a local forward (to a real PostgreSQL)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from servers.sshd import KEY_ENV, Sshd

from ladder.connectors.ssh import SSHConnection
from ladder.errors import HostKeyError, SSHError
from ladder.procs import free_port, run
from ladder.sandbox.cluster import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def key_env(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, sshd.private_key_text)
    return KEY_ENV


def test_runs_a_command_with_the_key_from_an_env_var(sshd: Sshd, key_env: str) -> None:
    with SSHConnection(sshd.config()) as conn:
        res = conn.run(["sh", "-c", "echo hello from $(id -un)"])
    assert res.ok and res.stdout.strip() == f"hello from {sshd.user}"
    assert not conn.is_connected


def test_a_failing_command_is_a_result_not_an_error(sshd: Sshd, key_env: str) -> None:
    with SSHConnection(sshd.config()) as conn:
        res = conn.run("echo oops >&2; exit 3")
    assert res.exit_code == 3 and not res.ok and res.tail() == "oops"


def test_key_given_by_the_caller(sshd: Sshd) -> None:
    with SSHConnection(sshd.config(key=None), private_key=sshd.private_key_text) as conn:
        assert conn.run(["true"]).ok


def test_through_a_bastion(sshd: Sshd, key_env: str) -> None:
    config = sshd.config(bastion=f"{sshd.user}@{sshd.host}:{sshd.port}")
    with SSHConnection(config) as conn:
        assert conn.run(["echo", "via bastion"]).stdout == "via bastion\n"
    assert "via" in conn.address


def _other_host_key(tmp_path: Path, port: int) -> Path:
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")])
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    path = tmp_path / "known_hosts"
    path.write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
    return path


def test_an_unknown_host_key_is_refused(sshd: Sshd, key_env: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError, match=r"not in the pinned known_hosts") as err:
        SSHConnection(sshd.config(known_hosts=str(empty))).open()
    assert f"[127.0.0.1]:{sshd.port}" in str(err.value) and "SHA256:" in str(err.value)


def test_a_changed_host_key_is_refused(sshd: Sshd, key_env: str, tmp_path: Path) -> None:
    pinned = _other_host_key(tmp_path, sshd.port)
    with pytest.raises(HostKeyError, match=r"is not the one pinned"):
        SSHConnection(sshd.config(known_hosts=str(pinned))).open()


def test_a_missing_known_hosts_file_is_refused(sshd: Sshd, key_env: str, tmp_path: Path) -> None:
    with pytest.raises(SSHError, match=r"known_hosts .* is not a file"):
        SSHConnection(sshd.config(known_hosts=str(tmp_path / "nope"))).open()


def test_a_wrong_key_is_refused_without_showing_it(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "wrong")])
    text = (tmp_path / "wrong").read_text()
    monkeypatch.setenv(KEY_ENV, text)
    with pytest.raises(SSHError, match=r"authentication refused \(key from environment variable"):
        SSHConnection(sshd.config()).open()
    monkeypatch.setenv(KEY_ENV, "not a key")
    with pytest.raises(SSHError, match="does not hold an unencrypted") as err:
        SSHConnection(sshd.config()).open()
    assert "not a key" not in str(err.value)


def test_nobody_listening_is_one_clear_error(sshd: Sshd, key_env: str) -> None:
    with pytest.raises(SSHError, match="cannot reach it"):
        SSHConnection(sshd.config(port=free_port()), connect_timeout=3).open()


def test_forward_local_reaches_postgres_on_loopback_only(
    sshd: Sshd, key_env: str, pg_cluster: Cluster
) -> None:
    port = free_port()
    conn = SSHConnection(sshd.config())
    with conn, conn.forward_local(port, "127.0.0.1", int(pg_cluster.port or 0)) as local:
        with psycopg.connect(
            host="127.0.0.1", port=local, user="postgres", dbname="postgres"
        ) as db:
            assert db.execute("SELECT inet_server_port()").fetchone() == (pg_cluster.port,)
        listeners = Path("/proc/net/tcp").read_text()
        assert f"0100007F:{port:04X}" in listeners  # 127.0.0.1 in /proc's byte order
        assert f"00000000:{port:04X}" not in listeners  # never 0.0.0.0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_key_from_a_prefect_secret_block(sshd: Sshd, prefect_server: str) -> None:
    from prefect.blocks.system import Secret

    Secret(value=sshd.private_key_text).save("ladder-test-ssh-key", overwrite=True)
    with SSHConnection(sshd.config(key={"secret": "ladder-test-ssh-key"})) as conn:
        assert conn.run(["echo", "from a block"]).stdout == "from a block\n"


@pytest.fixture
def agent(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real ssh-agent holding the sshd fixture's key, on a socket of its own; stopped by PID."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.05)
        added = run(["ssh-add", str(sshd.private_key)], env={"SSH_AUTH_SOCK": str(sock)})
        assert added.ok, added.describe()
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait()


def test_without_a_key_the_ssh_agent_is_asked(sshd: Sshd, agent: str) -> None:
    with SSHConnection(sshd.config(key=None)) as conn:
        assert conn.run(["echo", "via the agent"]).stdout == "via the agent\n"


def test_without_a_key_or_an_agent_authentication_is_refused(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(SSHError, match=r"no key to offer: set ssh.key .* or load the key into an SSH agent"):
        SSHConnection(sshd.config(key=None)).open()


def test_put_uploads_a_file_over_sftp(sshd: Sshd, key_env: str, tmp_path: Path) -> None:
    local = tmp_path / "probe.rb"
    local.write_text("puts :probe\n")
    remote = tmp_path / "uploaded" / "probe.rb"
    remote.parent.mkdir()
    with SSHConnection(sshd.config()) as conn:
        conn.put(local, str(remote))
        assert conn.run(["cat", str(remote)]).stdout == "puts :probe\n"
    with pytest.raises(SSHError, match=r"uploading probe\.rb failed"), SSHConnection(sshd.config()) as conn:
        conn.put(local, str(tmp_path / "no-such-dir" / "probe.rb"))

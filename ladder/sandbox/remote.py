"""What rung 3 needs in the sandbox, wherever the machine has it: sshd on loopback with the
sandbox's own key (``DIR/ssh``) and a streaming standby of the sandbox cluster (``DIR/standby``,
``pg_basebackup -R``), the read-only replica the tunnel reaches.

``ensure`` builds them on first use and starts them; ``stop`` stops them; ``environment_parts``
gives the environment's ``ssh``, ``tunnel_db`` and ``sandbox_missing`` (the Debian package for
each part this machine lacks, which rung 3 names when it reports itself unavailable).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from ladder.sandbox import sshd, standby
from ladder.sandbox.cluster import Cluster
from ladder.sandbox.sshd import SshServer

SSH_DIR = "ssh"
STANDBY_DIR = "standby"


def missing() -> dict[str, str]:
    """The parts this machine cannot run, each with the Debian package that provides it."""
    found = {"ssh": sshd.available(), "tunnel_db": standby.available()}
    return {part: package for part, package in found.items() if package}


def ensure(directory: Path, primary: Cluster, say: Callable[[str], None] = print) -> None:
    """Start sshd and the standby (building them the first time) where the machine has them."""
    lacking = missing()
    if "ssh" not in lacking:
        server = SshServer(directory / SSH_DIR)
        if not server.running():
            server.start()
            say(f"sshd for the tunnel on 127.0.0.1:{server.port}")
    if "tunnel_db" not in lacking:
        replica = Cluster(directory / STANDBY_DIR)
        if not replica.exists():
            say("creating a streaming standby of the sandbox database (pg_basebackup -R)")
        standby.create_standby(primary, replica.directory)


def stop(directory: Path) -> None:
    """Stop sshd and the standby (safe when they were never built)."""
    SshServer(directory / SSH_DIR).stop()
    replica = Cluster(directory / STANDBY_DIR)
    if replica.exists():
        replica.stop()


def environment_parts(directory: Path, dbname: str) -> dict[str, object]:
    """``ssh``, ``tunnel_db`` and ``sandbox_missing`` for the sandbox environment."""
    from ladder.config import DatabaseConfig, SSHConfig
    from ladder.connectors.postgres import with_dbname

    parts: dict[str, object] = {"sandbox_missing": missing()}
    server = SshServer(directory / SSH_DIR)
    server.load_state()
    if server.port is not None and server.private_key.exists():
        config = SSHConfig(host=server.host, port=server.port, user=server.user,
                           known_hosts=str(server.known_hosts))  # fmt: skip
        key = SecretStr(server.private_key.read_text())
        parts["ssh"] = config.model_copy(update={"private_key": key})
    replica = Cluster(directory / STANDBY_DIR)
    if replica.exists():
        replica.load_state()
        if replica.port is not None:
            parts["tunnel_db"] = DatabaseConfig(dsn=with_dbname(replica.dsn(), dbname))
    return parts

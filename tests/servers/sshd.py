"""A real OpenSSH server on 127.0.0.1 for the tests: ``sshd`` (one per test) and ``sshd_module``.

Each yields an :class:`Sshd`: ``host``, ``port``, ``user`` (the user running the tests; root in
CI), ``private_key`` (path of the only authorized key), ``known_hosts`` (pinning the server's
temporary host key on its port), ``config()`` (an :class:`~ladder.config.SSHConfig` for it) and
``kill()`` / ``restart()`` to drop established connections the way a crash does. The server runs
in a temporary directory and is stopped by PID, its per-connection children with it.

Skips the test when the machine has no ``/usr/sbin/sshd`` (Debian: ``openssh-server``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ladder.config import SSHConfig
from ladder.sandbox import sshd as sshd_server
from ladder.sandbox.sshd import SshServer
from servers import not_installed

__all__ = ["Sshd", "sshd", "sshd_module"]

KEY_ENV = "LADDER_TEST_SSH_KEY"


@dataclass
class Sshd:
    server: SshServer

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    @property
    def user(self) -> str:
        return self.server.user

    @property
    def private_key(self) -> Path:
        return self.server.private_key

    @property
    def known_hosts(self) -> Path:
        return self.server.known_hosts

    @property
    def private_key_text(self) -> str:
        return self.private_key.read_text()

    @property
    def pid(self) -> int | None:
        return self.server.pid()

    def config(self, **overrides: object) -> SSHConfig:
        """An SSHConfig for this server, its key from ``{env: LADDER_TEST_SSH_KEY}`` (set the
        variable with ``monkeypatch.setenv(KEY_ENV, sshd.private_key_text)``, or pass
        ``key=None`` and hand the key to the connection)."""
        fields: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "known_hosts": str(self.known_hosts),
            "key": {"env": KEY_ENV},
        }
        return SSHConfig.model_validate({**fields, **overrides})

    def ssh_yaml(self) -> str:
        """The ``ssh:`` section of an environment file for this server (key from KEY_ENV)."""
        return (
            f"ssh:\n  host: {self.host}\n  port: {self.port}\n  user: {self.user}\n"
            f"  known_hosts: {self.known_hosts}\n  key: {{env: {KEY_ENV}}}\n"
        )

    def kill(self) -> None:
        """SIGKILL sshd and every session it forked: established connections drop."""
        self.server.kill()

    def restart(self) -> None:
        """Start sshd again on the same port with the same host key."""
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


def _start(directory: Path) -> Iterator[Sshd]:
    missing = sshd_server.available()
    if missing:
        not_installed("sshd", missing)
    server = SshServer(directory)
    server.start()
    try:
        yield Sshd(server)
    finally:
        server.stop()


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """sshd on a free loopback port for one test."""
    yield from _start(tmp_path_factory.mktemp("sshd"))


@pytest.fixture(scope="module")
def sshd_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """sshd on a free loopback port shared by a module's tests (don't kill it there)."""
    yield from _start(tmp_path_factory.mktemp("sshd"))

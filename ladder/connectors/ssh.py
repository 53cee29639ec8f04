"""SSH to an environment's hosts with fabric: pinned host keys, keys from secrets, one error type.

Lifecycle of an :class:`SSHConnection` (the shape of :mod:`ladder.connectors.base`):

1. ``SSHConnection(config)`` stores an :class:`~ladder.config.SSHConfig` (host, user, port,
   ``bastion`` as ``user@host[:port]``, ``known_hosts``, ``key``): no I/O, no secret read yet.
2. The first use (``run``, ``put``, ``forward_local``, or ``open()``) resolves the private key
   (the config's ``key`` secret reference, else ``private_key=`` given by the caller, else the
   SSH agent), opens the bastion if there is one, then the host *through* it (fabric's
   ``gateway=``, a ``direct-tcpip`` channel: ``ssh -J``).
3. ``close()`` closes both, is safe twice; ``with`` closes on the way out.

Host keys of the host and the bastion must be in the pinned ``known_hosts`` file (``[host]:port``
lines for ports other than 22): paramiko's ``RejectPolicy`` refuses an unknown key and a changed
key alike, as :class:`~ladder.errors.HostKeyError`. No user or system SSH config file, no
``~/.ssh/known_hosts`` and no ``~/.ssh/id_*`` key is read: what connects is what the environment
says. Every failure is one :class:`~ladder.errors.SSHError` line naming ``user@host:port``, never
a key or a passphrase.

>>> from ladder.config import SSHConfig
>>> SSHConnection(SSHConfig(host="db", user="ladder", known_hosts="/k", bastion="jump:2222")).address
'ladder@db:22 via ladder@jump:2222'
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ladder.connectors._ssh_keys import (
    Bastion,
    load_private_key,
    parse_bastion,
    private_key_text,
    reject_policy,
)
from ladder.connectors.base import Connection, one_line
from ladder.errors import HostKeyError, SSHError
from ladder.procs import Result

if TYPE_CHECKING:
    import fabric

    from ladder.config import SSHConfig

__all__ = [
    "Bastion", "SSHConnection", "load_private_key", "parse_bastion", "private_key_text",
    "wait_for_port",
]  # fmt: skip

LOCALHOST = "127.0.0.1"


def wait_for_port(port: int, timeout: float, host: str = LOCALHOST) -> bool:
    """True once something accepts TCP connections on ``host:port`` (polled), False at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


class SSHConnection(Connection["fabric.Connection"]):
    """A fabric connection to ``config.host`` (through ``config.bastion``); see the module docstring.

    ``private_key`` is the key's text when the caller holds it already (e.g. the sandbox's key, or
    a key read by a parent process); the config's ``key`` reference wins when set. Without either
    the SSH agent (``SSH_AUTH_SOCK``) is asked.
    """

    def __init__(
        self,
        config: SSHConfig,
        *,
        private_key: str | None = None,
        connect_timeout: float = 10,
        keepalive_seconds: int = 5,
    ) -> None:
        super().__init__()
        self.config = config
        self._private_key = private_key
        self.connect_timeout = connect_timeout
        self.keepalive_seconds = keepalive_seconds
        self._gateway: fabric.Connection | None = None

    @property
    def address(self) -> str:
        where = f"{self.config.user}@{self.config.host}:{self.config.port}"
        if self.config.bastion:
            user, host, port = parse_bastion(self.config.bastion, self.config.user)
            where += f" via {user}@{host}:{port}"
        return where

    @property
    def is_connected(self) -> bool:
        """True while the SSH transport is up (it drops when the server or the network goes)."""
        return self._handle is not None and bool(self._handle.is_connected)

    # --- opening -------------------------------------------------------------------------------

    def _open(self) -> fabric.Connection:
        import fabric
        import paramiko

        known_hosts = Path(self.config.known_hosts).expanduser()
        if not known_hosts.is_file():
            raise SSHError(
                f"ssh.known_hosts {known_hosts} is not a file: host keys must be pinned "
                f"before Ladder connects to {self.address}"
            )
        auth = self._auth()
        gateway = None
        if self.config.bastion:
            user, host, port = parse_bastion(self.config.bastion, self.config.user)
            gateway = self._fabric(fabric, paramiko, host, user, port, auth, known_hosts, None)
            self._gateway = gateway
        conn = self._fabric(
            fabric,
            paramiko,
            self.config.host,
            self.config.user,
            self.config.port,
            auth,
            known_hosts,
            gateway,
        )
        try:
            conn.open()
        except BaseException:
            self._close_gateway()
            raise
        if conn.transport is not None and self.keepalive_seconds:
            conn.transport.set_keepalive(self.keepalive_seconds)
        return conn

    def _auth(self) -> dict[str, Any]:
        text, where = private_key_text(self.config, self._private_key)
        if text is None:
            return {"allow_agent": True, "look_for_keys": False}
        return {"pkey": load_private_key(text, where), "allow_agent": False, "look_for_keys": False}

    def _fabric(
        self,
        fabric: Any,
        paramiko: Any,
        host: str,
        user: str,
        port: int,
        auth: dict[str, Any],
        known_hosts: Path,
        gateway: Any,
    ) -> fabric.Connection:
        # an empty SSHConfig and lazy: no ~/.ssh/config, /etc/ssh/ssh_config or fabric.yaml
        config = fabric.Config(ssh_config=paramiko.SSHConfig(), lazy=True)
        conn = fabric.Connection(
            host,
            user=user,
            port=port,
            config=config,
            gateway=gateway if gateway is not None else False,
            connect_timeout=int(self.connect_timeout),
            connect_kwargs={**auth, "banner_timeout": self.connect_timeout,
                            "auth_timeout": self.connect_timeout},
        )  # fmt: skip
        conn.client.set_missing_host_key_policy(reject_policy())
        conn.client.load_system_host_keys(str(known_hosts))
        return conn

    def _close(self, handle: fabric.Connection) -> None:
        try:
            handle.close()
        finally:
            self._close_gateway()

    def _close_gateway(self) -> None:
        gateway, self._gateway = self._gateway, None
        if gateway is not None:
            gateway.close()

    # --- errors --------------------------------------------------------------------------------

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        import paramiko
        from invoke.exceptions import CommandTimedOut, ThreadException

        try:
            yield
        except SSHError:
            raise
        except (paramiko.SSHException, OSError, EOFError, CommandTimedOut, ThreadException) as exc:
            raise self.translate(exc, doing) from None

    def translate(self, exc: BaseException, doing: str) -> SSHError:
        import paramiko

        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyError(
                f"{doing} failed on {self.address}: the host key of {exc.hostname} "
                f"({exc.key.get_name()} {exc.key.fingerprint}) is not the one pinned in "
                f"{self.config.known_hosts} (expected {exc.expected_key.fingerprint}): refusing "
                "to connect; the host was replaced or someone is in the middle"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            how = (
                f"key from {self.config.key.describe()}"
                if self.config.key is not None
                else private_key_text(self.config, self._private_key)[1]
            )
            return SSHError(f"{doing} failed on {self.address}: authentication refused ({how})")
        if isinstance(exc, paramiko.SSHException) and "No authentication methods" in str(exc):
            return SSHError(
                f"{doing} failed on {self.address}: no key to offer: set ssh.key to {{env: NAME}} "
                "or {secret: NAME}, or load the key into an SSH agent (SSH_AUTH_SOCK)"
            )
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError | ConnectionError):
            return SSHError(f"{doing} failed on {self.address}: cannot reach it ({one_line(exc)})")
        if isinstance(exc, TimeoutError | socket.timeout):
            return SSHError(f"{doing} failed on {self.address}: timed out")
        return SSHError(f"{doing} failed on {self.address}: {type(exc).__name__}: {one_line(exc)}")

    # --- using it ------------------------------------------------------------------------------

    def run(self, command: str | Sequence[str], *, timeout: float | None = 60) -> Result:
        """Run ``command`` on the host (an argv list is shell-quoted word by word) and return its
        :class:`~ladder.procs.Result`; a non-zero exit is a result, not an error."""
        line = command if isinstance(command, str) else shlex.join(command)
        conn = self.open()
        with self.errors(f"running {line.split(' ', 1)[0]!r}"):
            res = conn.run(
                line, hide=True, warn=True, in_stream=False, timeout=timeout, pty=False
            )
        argv = (line,) if isinstance(command, str) else tuple(command)
        return Result(argv, int(res.exited), res.stdout, res.stderr)

    def put(self, local: str | Path, remote: str) -> None:
        """Upload the file ``local`` to the path ``remote`` on the host (SFTP)."""
        conn = self.open()
        with self.errors(f"uploading {Path(local).name}"):
            conn.put(str(local), remote)

    @contextmanager
    def forward_local(
        self, local_port: int, remote_host: str, remote_port: int, *, ready_timeout: float = 10
    ) -> Iterator[int]:
        """Forward ``127.0.0.1:local_port`` to ``remote_host:remote_port`` as the host sees it
        (``ssh -L``); yields the local port once it accepts connections, closes it on exit.

        Only loopback listens. fabric opens the listener in a thread after the block is
        entered, so this waits until a connection is really accepted.
        """
        _check_free(local_port)
        conn = self.open()
        doing = f"forwarding 127.0.0.1:{local_port} to {remote_host}:{remote_port}"
        forward = conn.forward_local(
            local_port, remote_port=remote_port, remote_host=remote_host, local_host=LOCALHOST
        )
        with self.errors(doing):
            forward.__enter__()
        try:
            if not wait_for_port(local_port, ready_timeout):
                raise SSHError(
                    f"{doing} failed on {self.address}: 127.0.0.1:{local_port} did not accept "
                    f"connections within {ready_timeout:.0f} s"
                )
            yield local_port
        except BaseException as exc:
            # the caller's error wins; the listener is closed all the same
            with suppress(Exception):  # a tunnel thread's error, after the caller's own
                forward.__exit__(type(exc), exc, exc.__traceback__)
            raise
        with self.errors(f"closing the forward of 127.0.0.1:{local_port}"):
            forward.__exit__(None, None, None)


def _check_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOCALHOST, port))
        except OSError:
            raise SSHError(f"127.0.0.1:{port} is already in use: choose another local port") from None

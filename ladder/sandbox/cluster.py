"""A throwaway PostgreSQL cluster on loopback, for the sandbox, the tests and the benchmarks.

A :class:`Cluster` lives in a directory of its own (``DIR/data``, the socket and the log beside it)
and listens on 127.0.0.1 only. As root the server runs as the ``postgres`` system user, because
PostgreSQL refuses to run as root. The directory may contain spaces: the options handed to the
server through ``pg_ctl -o`` are shell-quoted.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

from ladder.connectors.postgres import find_bindir
from ladder.errors import PostgresError
from ladder.procs import Result, free_port, pid_alive, run

SUPERUSER = "postgres"


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster in ``directory``.

    No I/O in ``__init__``. ``init()`` creates it, ``start()``/``stop()`` run it (``stop`` is safe
    twice), ``dsn(db)`` addresses a database in it. The port is kept in ``DIR/cluster.json`` so
    that another process can find a running cluster.
    """

    directory: Path
    port: int | None = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).absolute()

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def _state_file(self) -> Path:
        return self.directory / "cluster.json"

    def exists(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def load_state(self) -> None:
        if self._state_file.exists():
            self.port = json.loads(self._state_file.read_text())["port"]

    def init(self) -> None:
        """Create the cluster files (trust auth on loopback, UTF8, no fsync)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
        res = self._run(
            "initdb", "-A", "trust", "-E", "UTF8", "-U", SUPERUSER, "--no-sync", "--locale=C",
            timeout=120,
        )  # fmt: skip
        if not res.ok:
            raise PostgresError(f"initdb failed in {self.data_dir}: {res.tail()}")

    def start(self) -> None:
        """Start the server on a free loopback port and wait until it accepts connections."""
        if self.running():
            return
        self.port = self.port or free_port()
        # pg_ctl hands -o to a shell (it runs "postgres" through /bin/sh): quote every word
        opts = shlex.join(
            [
                "-p", str(self.port), "-k", str(self.directory),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=100",
            ]
        )  # fmt: skip
        res = self._run(
            "pg_ctl", "-l", str(self.log_file), "-w", "-t", "60", "start", "-o", opts, timeout=90
        )
        if not res.ok:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise PostgresError(
                f"could not start PostgreSQL in {self.directory}: {res.tail()}\n{log}"
            )
        self._state_file.write_text(json.dumps({"port": self.port}))

    def pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid_alive(pid)

    def stop(self) -> None:
        """Stop the server (fast mode); a no-op when it is not running."""
        if not self.running():
            return
        res = self._run("pg_ctl", "-m", "fast", "-w", "stop", timeout=60)
        if not res.ok and self.running():
            raise PostgresError(f"could not stop PostgreSQL in {self.directory}: {res.tail()}")

    def _run(self, program: str, *args: str, timeout: float) -> Result:
        """Run server program ``program`` (initdb, pg_ctl) on this cluster's data directory."""
        if os.geteuid() == 0:
            _ensure_traversable(self.directory)
        argv = [str(find_bindir() / program), "-D", str(self.data_dir), *args]
        return run(_as_server_user(argv), timeout=timeout)

    def dsn(self, dbname: str = "postgres") -> str:
        if self.port is None:
            self.load_state()
        if self.port is None:
            raise PostgresError(f"cluster in {self.directory} has no port: is it started?")
        return make_conninfo(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname)


def _ensure_traversable(directory: Path) -> None:
    """Make every parent of ``directory`` searchable by the server user (temp dirs are 0700)."""
    for parent in [directory, *directory.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)

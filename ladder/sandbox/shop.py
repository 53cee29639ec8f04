"""The sandbox shop on Puma with rbtrace, for the sandbox's staging and the tests (``tests/servers/puma.py``).

A :class:`ShopServer` runs ``shop_app/config.ru`` (a Rack app with the incident's bug on
``POST /checkout``) under Puma on ``127.0.0.1:port``, reading the database in ``database_url``,
from a directory of its own (pidfile, log, state). ``RUBYOPT=-rrbtrace`` loads rbtrace into the
server (``rbtrace=False`` leaves it out, as an app that never required it). ``workers=0`` is
single mode, ``workers=N`` cluster mode; ``user`` runs Puma as another user (root only).
``start()`` waits until ``/health`` answers (and every worker booted); ``stop()`` ends the
master and its workers by PID. With ``flipper_dsn`` the app
reads Flipper's tables there (ActiveRecord adapter, Debian ruby-flipper) and writes a
``[debug_mode] user_id=N ...`` line for each request of a user whose ``debug_mode`` is enabled,
to ``debug_log`` if given (the sandbox's Rails log, a rung 1 log source), else to its own log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ladder.errors import SandboxError
from ladder.procs import child_env, free_port, pid_alive
from ladder.sandbox.service_state import UNAVAILABLE_FILE, recorded

APP = Path(__file__).with_name("shop_app")
IMPERSONATE_HEADER = "X-Shop-Impersonate"
SESSION_COOKIE = "_shop_session"


def available() -> str | None:
    """None when this machine can run the shop with rbtrace, else the Debian package missing."""
    for program, package in (("ruby", "ruby"), ("puma", "puma"), ("rbtrace", "ruby-rbtrace")):
        if shutil.which(program) is None:
            return package
    probe = subprocess.run(
        ["ruby", "-e", 'require "pg"; require "rack"'], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return "ruby-pg" if b"pg" in probe.stderr else "ruby-rack"
    return None


def flipper_available() -> str | None:
    """None when the shop can read Flipper's ActiveRecord tables here, else the Debian package
    missing (ruby-flipper, ruby-activerecord or ruby-pg)."""
    if shutil.which("ruby") is None:
        return "ruby"
    for lib, package in (("pg", "ruby-pg"), ("active_record", "ruby-activerecord"),
                         ("flipper", "ruby-flipper"),
                         ("flipper/adapters/active_record", "ruby-flipper")):  # fmt: skip
        probe = subprocess.run(["ruby", "-e", f"require {json.dumps(lib)}"], capture_output=True,
                               check=False)  # fmt: skip
        if probe.returncode != 0:
            return package
    return None


def activerecord_url(dsn: str) -> str:
    """A libpq DSN as the ``postgresql://`` URL ActiveRecord's ``establish_connection`` takes
    (the sandbox's and the tests' servers trust loopback: there is no password to carry)."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    p = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    user = quote(p.get("user", ""), safe="")
    host = p.get("host", "127.0.0.1")
    port = p.get("port", "5432")
    return f"postgresql://{user}{'@' if user else ''}{host}:{port}/{quote(p.get('dbname', ''))}"


@dataclass
class ShopServer:
    directory: Path
    database_url: str
    workers: int = 0
    rbtrace: bool = True
    port: int | None = None
    user: str | None = None  # run Puma as this user (``runuser``; needs root), as deploys do
    flipper_dsn: str | None = None
    debug_log: Path | None = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).absolute()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pidfile(self) -> Path:
        return self.directory / "puma.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "puma.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def worker_pids(self) -> list[int]:
        from ladder.sandbox.sshd import children

        master = self.pid()
        if master is None:
            return []
        return sorted(p for p in children(master) if _is_worker(p, master))

    def start(self, timeout: float = 30) -> None:
        if self.pid() is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        extra = {"SHOP_DATABASE_URL": self.database_url, "RACK_ENV": "production"}
        if self.rbtrace:
            extra["RUBYOPT"] = "-rrbtrace"
        if self.flipper_dsn:
            extra["SHOP_FLIPPER_DATABASE_URL"] = activerecord_url(self.flipper_dsn)
        if self.debug_log:
            extra["SHOP_DEBUG_LOG"] = str(self.debug_log)
        env = child_env(extra, drop=() if self.rbtrace else ("RUBYOPT",))
        argv = ["runuser", "-u", self.user, "--"] if self.user else []
        argv += ["puma", "-b", f"tcp://127.0.0.1:{self.port}", "-t", "1:4"]
        argv += ["--pidfile", str(self.pidfile), "-e", "production"]
        if self.workers:
            argv += ["-w", str(self.workers)]
        argv.append(str(APP / "config.ru"))
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(  # argv list, no shell
                argv, cwd=APP, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        (self.directory / STATE_FILE).write_text(json.dumps(self.state()))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready():
                return
            time.sleep(0.2)
        tail = self.log_file.read_text(errors="replace")[-600:]
        self.stop()
        raise SandboxError(f"Puma did not start the shop on port {self.port}: {tail}")

    def state(self) -> dict[str, object]:
        return {"port": self.port, "pidfile": str(self.pidfile), "workers": self.workers,
                "url": self.url, "rbtrace": self.rbtrace, "log": str(self.log_file),
                "flipper": bool(self.flipper_dsn)}  # fmt: skip

    def _ready(self) -> bool:
        import httpx

        if self.pid() is None or len(self.worker_pids()) < self.workers:
            return False
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, grace: float = 10) -> None:
        """Stop the master (SIGTERM, then SIGKILL) and any worker left, by PID."""
        master = self.pid()
        if master is None:
            return
        workers = self.worker_pids()
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            for pid in (master, *workers):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while any(pid_alive(p) for p in (master, *workers)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not any(pid_alive(p) for p in (master, *workers)):
                break
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
        self.pidfile.unlink(missing_ok=True)


def _is_worker(pid: int, master: int) -> bool:
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return title.startswith("puma: cluster worker") and f": {master}" in title


# --- the sandbox's staging app ---------------------------------------------------------------

SHOP_DIR = "shop"
STATE_FILE = "shop.json"


def running(sandbox_dir: Path) -> dict[str, object] | None:
    """The sandbox's shop as ``shop.json`` says (url, pidfile, work_dir), if it is running."""
    directory = Path(sandbox_dir) / SHOP_DIR
    state = recorded(directory, STATE_FILE)
    if state is None or "unavailable" in state:
        return state
    server = ShopServer(directory, "", port=state.get("port"))  # type: ignore[arg-type]
    if server.pid() is None:
        return None
    return {**state, "work_dir": str(directory / "work")}


def serve(
    sandbox_dir: Path, production_dsn: str, staging_dsn: str, policy: Path, key: str,
    say: Callable[[str], None],
) -> str | None:  # fmt: skip
    """Run the shop on Puma with rbtrace as the sandbox's staging app, staging's database filled
    first (a sanitized copy of production, as refresh-staging makes it) when it is empty.
    None when it runs; else why not, naming the Debian package missing."""
    directory = Path(sandbox_dir) / SHOP_DIR
    missing = available()
    if missing:
        why = f"the sandbox has no staging app: this machine lacks Debian package {missing}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / UNAVAILABLE_FILE).write_text(why + "\n")
        return why
    (directory / UNAVAILABLE_FILE).unlink(missing_ok=True)
    if running(sandbox_dir) is not None:
        state = running(sandbox_dir) or {}
        from ladder.sandbox import nginx

        if nginx.running(sandbox_dir) is None:
            nginx.front(sandbox_dir, f"127.0.0.1:{state['port']}", staging_dsn)
        return None
    if not _has_tables(staging_dsn):
        from pydantic import SecretStr

        from ladder.replica.pipeline import create_replica

        say("copying production into staging, sanitized (as refresh-staging does)")
        create_replica(production_dsn, staging_dsn, str(policy), all_tables=True, key=SecretStr(key),
                       owner="sandbox")  # fmt: skip
    (directory / "work").mkdir(parents=True, exist_ok=True)
    (directory / "work").chmod(0o700)
    flipper_missing = flipper_available()
    from ladder.sandbox.traffic import HOSTS

    server = ShopServer(directory, staging_dsn,
                        flipper_dsn=None if flipper_missing else production_dsn,
                        debug_log=Path(sandbox_dir) / "logs" / HOSTS[0] / "production.log")  # fmt: skip
    server.start()
    if flipper_missing:  # rung 5 reads this from shop.json: no app here reads a flag
        state = {**server.state(), "flipper_unavailable": "the sandbox's app reads no Flipper "
                 f"flags: this machine lacks Debian package {flipper_missing}"}  # fmt: skip
        (directory / STATE_FILE).write_text(json.dumps(state))
    say(f"the shop runs on Puma with rbtrace at {server.url} (staging)"
        + ("" if flipper_missing else ", reading Flipper flags from production"))  # fmt: skip
    _front(sandbox_dir, server, staging_dsn, say)
    return None


def _front(sandbox_dir: Path, server: ShopServer, dsn: str, say: Callable[[str], None]) -> None:
    from ladder.sandbox import nginx

    why = nginx.front(sandbox_dir, f"127.0.0.1:{server.port}", dsn)
    if why:
        say(f"{why}: rung 6 (replica_app) will be unavailable")
    else:
        say(f"nginx fronts the shop at {nginx.running(sandbox_dir)['url']}")  # type: ignore[index]


def staging_config(state: dict[str, object] | None, staging_dsn: str) -> object | None:
    """The sandbox environment's ``staging`` with its app, from :func:`running`'s state."""
    from ladder.config import DatabaseConfig, StagingConfig

    if not state:
        return None
    staging = StagingConfig(database=DatabaseConfig(dsn=staging_dsn))
    if state.get("unavailable"):
        return staging.model_copy(update={"unavailable": str(state["unavailable"])})
    return staging.model_copy(update={"app_url": state["url"], "local": True,
                              "puma_pidfile": state["pidfile"], "work_dir": state["work_dir"]})  # fmt: skip


def stop(sandbox_dir: Path) -> None:
    """Stop the sandbox's shop, if it runs, and remove its directory."""
    from ladder.sandbox import nginx

    nginx.stop(sandbox_dir)
    directory = Path(sandbox_dir) / SHOP_DIR
    if directory.exists():
        ShopServer(directory, "").stop()
        shutil.rmtree(directory, ignore_errors=True)


def _has_tables(dsn: str) -> bool:
    from ladder.connectors.postgres import connect

    with connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('public.orders') IS NOT NULL").fetchone()
    return bool(row and row[0])

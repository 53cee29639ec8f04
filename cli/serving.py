"""``ladder serve``: one Prefect server (a running one, or one started here) and the deployments
of prefect.yaml served from this process.

This is the one-machine set-up. A team runs a Prefect server on PostgreSQL and workers instead
(``prefect deploy --all`` reads the same prefect.yaml); nothing here is needed then.

Nothing here writes ``os.environ``: the API URL and log level reach this process through
``temporary_settings`` and the flow runs it starts through Prefect's runner, which hands the
current settings to each run's process. Runs start in the project directory (this process
moves there), as prefect.yaml's pull step makes them for workers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cli import entrypoints
from ladder.config import load_runbook
from ladder.errors import ConfigError, LadderError

MANIFEST = entrypoints.PROJECT_ROOT / "prefect.yaml"
SERVER_LOG = "ladder-server.log"  # under PREFECT_HOME

# keys of a prefect.yaml deployment that `ladder serve` applies, and those that only matter to
# `prefect deploy` (a work pool, a version); anything else would be silently dropped, so it is refused
_SERVED_KEYS = {"name", "entrypoint", "description", "tags", "parameters", "schedules"}
_DEPLOY_ONLY_KEYS = {"work_pool", "version"}


@dataclass(frozen=True)
class ManifestDeployment:
    """One deployment of prefect.yaml, as ``ladder serve`` serves it."""

    name: str
    entrypoint: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)


def manifest(path: Path = MANIFEST) -> list[ManifestDeployment]:
    """The deployments of prefect.yaml, checked for what ``ladder serve`` can serve."""
    import yaml

    doc = yaml.safe_load(path.read_text()) or {}
    out = []
    for i, item in enumerate(doc.get("deployments") or []):
        where = f"{path}: deployments[{i}]"
        unknown = set(item) - _SERVED_KEYS - _DEPLOY_ONLY_KEYS
        if unknown:
            raise ConfigError(f"{where}: `ladder serve` cannot serve {', '.join(sorted(unknown))}")
        missing = {"name", "entrypoint"} - set(item)
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(sorted(missing))}")
        out.append(ManifestDeployment(**{k: v for k, v in item.items() if k in _SERVED_KEYS}))
    if not out:
        raise ConfigError(f"{path}: no deployments")
    return out


def _schedule(config: dict[str, Any]) -> Any:
    from prefect.client.schemas.schedules import construct_schedule

    known = {"cron", "interval", "rrule", "timezone", "anchor_date"}
    if set(config) - known:
        raise ConfigError(f"prefect.yaml: schedule keys {sorted(set(config) - known)} not served")
    return construct_schedule(**config)


def runner_deployments(runbook: str | None = None) -> list[Any]:
    """prefect.yaml's deployments as runner deployments for ``prefect.serve``; ``runbook``, when
    given, replaces escalate-incident's default runbook."""
    out = []
    for d in manifest():
        flow = entrypoints.load_flow(d.entrypoint)
        parameters = dict(d.parameters)
        if runbook and "runbook" in parameters and d.entrypoint == entrypoints.ESCALATE:
            parameters["runbook"] = runbook
        out.append(
            flow.to_deployment(
                name=d.name,
                description=d.description or None,
                tags=d.tags,
                parameters=parameters,
                schedules=[_schedule(s) for s in d.schedules] or None,
            )
        )
    return out


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _server_environment() -> dict[str, str]:
    """Environment of the server we start: the user's, without telemetry."""
    return {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


@contextmanager
def prefect_server(host: str, port: int, say: Callable[[str], None]) -> Iterator[Callable[[], str]]:
    """The one Prefect API to use: yields a function that returns its URL once it answers.

    ``PREFECT_API_URL`` if it is configured (it must answer); else a server already answering
    on ``host:port``; else ``prefect server start`` as a child process, its output in
    ``$PREFECT_HOME/ladder-server.log``, stopped by PID on the way out. The caller may do other
    work (load the flows) while a started server boots, before it asks for the URL.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    configured = PREFECT_API_URL.value()
    if configured:
        if not _healthy(configured):
            raise LadderError(
                f"PREFECT_API_URL is {configured} but it does not answer /health: start that "
                "server, or unset PREFECT_API_URL to let `ladder serve` start one"
            )
        say(f"using the Prefect server at {configured}")
        yield lambda: configured
        return
    url = f"http://{host}:{port}/api"
    if _healthy(url):
        say(f"using the Prefect server already running at {url}")
        yield lambda: url
        return
    home = Path(PREFECT_HOME.value())
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / SERVER_LOG
    say(f"starting a Prefect server on {host}:{port} (its log: {log_path}) …")
    command = [sys.executable, "-m", "prefect", "server", "start"]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [*command, "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_server_environment(),
            start_new_session=True,  # Ctrl-C stops the runner first; the server is stopped below
        )

    def ready() -> str:
        _wait_healthy(url, proc, log_path)
        return url

    # SIGTERM before Prefect's runner takes it over (while the flows load, the server boots or
    # the deployments register) would end this process without the `finally` and orphan the server
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield ready
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(proc)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise LadderError(f"the Prefect server exited with {proc.returncode}:\n{tail}")
        if _healthy(url):
            return
        time.sleep(0.5)
    _stop(proc)
    raise LadderError(f"the Prefect server did not answer {url}/health within {timeout:.0f} s")


def _run_log_level() -> str:
    """INFO unless a more verbose level is configured: a run's checkpoints log at INFO, and the
    Logs tab shows only what reaches the API."""
    from prefect.settings import PREFECT_LOGGING_LEVEL

    configured = str(PREFECT_LOGGING_LEVEL.value()).upper()
    return configured if logging.getLevelName(configured) in range(1, logging.INFO) else "INFO"


def serve(host: str, port: int, runbook: str | None, say: Callable[[str], None]) -> None:
    """Serve prefect.yaml's deployments against one Prefect server until interrupted."""
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_LEVEL, temporary_settings

    deployments = manifest()  # a broken manifest fails before a server is started
    if runbook:
        runbook = str(Path(runbook).resolve())
        load_runbook(runbook)  # a typo fails here, not in the first run started from the UI
    # runs start in this process's directory: the project's, as prefect.yaml's pull step does
    # for workers, so a runbook typed in the form as runbooks/... is found wherever serve started
    os.chdir(entrypoints.PROJECT_ROOT)
    with prefect_server(host, port, say) as ready:
        served = runner_deployments(runbook)  # loads the flows while a new server boots
        api = ready()
        with temporary_settings({PREFECT_API_URL: api, PREFECT_LOGGING_LEVEL: _run_log_level()}):
            say(f"Prefect UI: {api.removesuffix('/api')}")
            say("serving: " + ", ".join(d.name for d in deployments) + "  (Ctrl-C stops)")
            prefect_serve(*served, print_starting_message=False)

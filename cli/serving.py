"""``ladder serve``: a Prefect server (unless one is configured) with Ladder's deployments served.

This is the one-machine set-up. A team runs a Prefect server on PostgreSQL and workers instead
(``prefect deploy --all`` reads prefect.yaml); nothing here is needed then.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from cli import entrypoints
from ladder.errors import LadderError

REFRESH_CRON = "0 4 * * *"
JANITOR_INTERVAL_SECONDS = 60


@contextmanager
def prefect_api(host: str, port: int, say: Callable[[str], None]) -> Iterator[str]:
    """The Prefect API to use: ``PREFECT_API_URL`` if set, else a local server started here."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        say(f"using the Prefect API at {configured}")
        yield configured
        return
    url = f"http://{host}:{port}/api"
    say(f"starting a local Prefect server on {host}:{port} …")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_healthy(url, proc)
        os.environ["PREFECT_API_URL"] = url
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (proc.stderr.read() if proc.stderr else "")[-1500:]
            raise LadderError(f"the Prefect server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise LadderError(f"the Prefect server did not answer {url}/health within {timeout:.0f} s")


def deployments(runbook: str) -> list:
    """The three deployments of prefect.yaml, as runner deployments for ``prefect.serve``."""
    escalate = entrypoints.load_flow(entrypoints.ESCALATE)
    refresh = entrypoints.load_flow(entrypoints.REFRESH_STAGING)
    janitor = entrypoints.load_flow(entrypoints.JANITOR)
    return [
        escalate.to_deployment(
            name="escalate-incident",
            parameters={"runbook": runbook},
            description="Climb the ladder for an incident; checkpoints pause for approval.",
            tags=["ladder"],
        ),
        refresh.to_deployment(name="refresh-staging", cron=REFRESH_CRON, tags=["ladder"]),
        janitor.to_deployment(name="janitor", interval=JANITOR_INTERVAL_SECONDS, tags=["ladder"]),
    ]


def serve(host: str, port: int, runbook: str, say: Callable[[str], None]) -> None:
    """Serve the deployments until interrupted."""
    from prefect import serve as prefect_serve

    with prefect_api(host, port, say) as api:
        ui = api.removesuffix("/api")
        say(f"Prefect UI: {ui}  (Deployments → escalate-incident → Run)")
        prefect_serve(*deployments(runbook), print_starting_message=False)

"""What the intake tests share: signing per scheme, `ladder intake serve` as a real process,
the session's Prefect server's deployments and runs, and a TCP relay to take Prefect away."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from cli.entrypoints import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "intake"
SENTRY_SECRET = "sentry-client-secret-0123456789"
DATADOG_TOKEN = "datadog-token-abcdef"
ALERTMANAGER_TOKEN = "alertmanager-token-123456"
PAGERDUTY_SECRET = "pagerduty-signing-secret-xyz"
WEBHOOK_KEY = b"standard-webhooks-key-0123456789"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()
SECRET_ENV = {
    "LADDER_SENTRY_SECRET": SENTRY_SECRET,
    "LADDER_DATADOG_TOKEN": DATADOG_TOKEN,
    "LADDER_ALERTMANAGER_TOKEN": ALERTMANAGER_TOKEN,
    "LADDER_PAGERDUTY_SECRET": PAGERDUTY_SECRET,
    "LADDER_WEBHOOK_SECRET": WEBHOOK_SECRET,
}


def payload(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hexmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(key: bytes, msg_id: str, stamp: str, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed(source: str, body: bytes, *, resource: str = "issue", now: float | None = None,
           delivery: str | None = None) -> dict[str, str]:  # fmt: skip
    """Headers that a real sender with the test secrets would send for ``body``."""
    now = time.time() if now is None else now
    h = {"content-type": "application/json"}
    if source == "sentry":
        h |= {
            "sentry-hook-resource": resource,
            "sentry-hook-timestamp": str(int(now)),
            "sentry-hook-signature": hexmac(SENTRY_SECRET, body),
            "request-id": delivery or str(uuid.uuid4()),
        }
    elif source == "datadog":
        h["x-ladder-token"] = DATADOG_TOKEN
    elif source == "alertmanager":
        h["authorization"] = f"Bearer {ALERTMANAGER_TOKEN}"
    elif source == "pagerduty":
        h["x-pagerduty-signature"] = "v1=" + hexmac(PAGERDUTY_SECRET, body)
    elif source == "generic":
        msg_id, stamp = delivery or f"msg_{uuid.uuid4().hex}", str(int(now))
        h |= {
            "webhook-id": msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": standard_signature(WEBHOOK_KEY, msg_id, stamp, body),
        }
    return h


def write_config(tmp_path: Path, deployment: str, window: int = 60) -> Path:
    """An intake config routing every source (the generic one only for service shop-web) to a
    small runbook with a dedup window of ``window`` minutes."""
    (tmp_path / "env.yaml").write_text("name: intake-test\n")
    (tmp_path / "runbook.yaml").write_text(
        "name: intake-test\nenvironment: env.yaml\n"
        f"dedup_window_minutes: {window}\n"
        "match:\n"
        "  - {source: sentry}\n  - {source: datadog}\n  - {source: alertmanager}\n"
        "  - {source: pagerduty}\n  - {source: webhook, service: shop-web}\n"
        "rungs:\n  evidence: {}\n"
    )
    path = tmp_path / "intake.yaml"
    path.write_text(f"deployment: {deployment}\nrunbooks: [runbook.yaml]\n")
    return path


class Intake:
    """`ladder intake serve` in its own process group; start/stop/kill by PID, same port."""

    def __init__(self, tmp_path: Path, config: Path, api_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
        self.log_path = tmp_path / "intake.log"
        self.config = config
        self.env = {
            **os.environ, **SECRET_ENV,
            "LADDER_HOME": str(tmp_path / "home"), "LADDER_LEDGER_URL": self.ledger,
            "PREFECT_API_URL": api_url, **env,
        }  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Intake:
        log = open(self.log_path, "a")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "intake", "serve", "--port", str(self.port),
             "--config", str(self.config), "--max-backoff", "1"],
            cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"intake exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("intake did not answer /healthz within 60 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def post(self, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.url}/hooks/{source}", content=body, headers=headers, timeout=30)

    def records(self) -> list[dict[str, Any]]:
        out = subprocess.run(
            [sys.executable, "-m", "cli", "intake", "list", "--json", "--limit", "100000"],
            cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(out.stdout)


def make_deployment(name: str) -> str:
    """A deployment of escalate-incident named ``name`` on the current Prefect server; its id."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("escalate-incident")
        return str(client.create_deployment(flow_id=flow_id, name=name))


def flow_runs(deployment_id: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[uuid.UUID(deployment_id)])
            )
        )


def wait_for(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


class Relay:
    """A TCP relay on a fixed loopback port to ``target``: Prefect is 'down' until started."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None
        self.server: asyncio.base_events.Server | None = None

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except OSError:
            pass
        finally:
            w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            w.close()
            return
        await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))

    def start(self) -> None:
        async def boot() -> None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(boot(), self.loop).result(10)

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(10)

"""Intake throughput: 5,000 alerts over 500 fingerprints from 50 concurrent clients, one intake.

    .venv/bin/python benchmarks/intake.py [--alerts 5000] [--fingerprints 500] [--clients 50]
                                          [--api-url URL]

Starts a Prefect server (``prefect_test_harness``, unless ``--api-url`` names one), a deployment
of escalate-incident of its own, and one ``ladder intake serve`` process on a SQLite inbox in a
temporary directory. The alerts rotate over four sources by fingerprint (Sentry event alerts
signed with HMAC, Datadog with a token, PagerDuty v3 signed, Standard Webhooks signed), so every
request pays for its source's check, JSON parsing, normalization, scrubbing and one committed
transaction. Prints accepted alerts/s, p50/p99 latency (client side, per request), flow runs
created (must be the number of fingerprints) and inbox rows (must be the number of alerts), then
``RESULT alerts_per_s=... p50_ms=... p99_ms=... runs=... inbox=...``.
Target on 2 cores: >= 500 alerts/s with p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
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
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "intake"
SECRETS = {
    "LADDER_SENTRY_SECRET": "bench-sentry-secret",
    "LADDER_DATADOG_TOKEN": "bench-datadog-token",
    "LADDER_PAGERDUTY_SECRET": "bench-pagerduty-secret",
    "LADDER_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"bench-webhook-key-0123").decode(),
}
SOURCES = ("sentry", "datadog", "pagerduty", "generic")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def request_for(i: int, fingerprint: int, tag: str) -> tuple[str, bytes, dict[str, str]]:
    """The i-th alert: its endpoint, body and headers, as the source would sign them."""
    source = SOURCES[fingerprint % len(SOURCES)]
    fp = f"{tag}-{fingerprint}"
    h = {"content-type": "application/json"}
    now = str(int(time.time()))
    if source == "sentry":
        data = _fixture("sentry_event_alert")
        data["data"]["event"]["issue_id"] = fp
        body = json.dumps(data).encode()
        h |= {"sentry-hook-resource": "event_alert", "sentry-hook-timestamp": now,
              "sentry-hook-signature": _mac(SECRETS["LADDER_SENTRY_SECRET"], body),
              "request-id": f"{tag}-{i}"}  # fmt: skip
    elif source == "datadog":
        data = _fixture("datadog")
        data["aggregate_key"] = fp
        body = json.dumps(data).encode()
        h["x-ladder-token"] = SECRETS["LADDER_DATADOG_TOKEN"]
    elif source == "pagerduty":
        data = _fixture("pagerduty_triggered")
        data["event"]["id"] = f"{tag}-{i}"
        data["event"]["data"]["id"] = fp
        body = json.dumps(data).encode()
        h["x-pagerduty-signature"] = "v1=" + _mac(SECRETS["LADDER_PAGERDUTY_SECRET"], body)
    else:
        data = _fixture("generic")
        data["data"]["fingerprint"] = fp
        body = json.dumps(data).encode()
        key = base64.b64decode(SECRETS["LADDER_WEBHOOK_SECRET"].removeprefix("whsec_"))
        msg = f"{tag}-{i}"
        mac = hmac.new(key, f"{msg}.{now}.".encode() + body, hashlib.sha256).digest()
        h |= {"webhook-id": msg, "webhook-timestamp": now,
              "webhook-signature": "v1," + base64.b64encode(mac).decode()}  # fmt: skip
    return source, body, h


async def blast(url: str, requests: list[tuple[str, bytes, dict[str, str]]], clients: int) -> tuple[float, list[float], list[int]]:  # fmt: skip
    queue: asyncio.Queue[tuple[str, bytes, dict[str, str]]] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    latencies: list[float] = []
    statuses: list[int] = []

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while not queue.empty():
                source, body, headers = queue.get_nowait()
                t0 = time.perf_counter()
                r = await client.post(f"/hooks/{source}", content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                statuses.append(r.status_code)

    t0 = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return time.perf_counter() - t0, latencies, statuses


def _blast_process(args: tuple[str, list[tuple[str, bytes, dict[str, str]]], int]) -> tuple[float, float, list[float], list[int]]:  # fmt: skip
    """One client process: its share of the clients and requests; (start, end, latencies, statuses)."""
    url, requests, clients = args
    start = time.time()
    _, latencies, statuses = asyncio.run(blast(url, requests, clients))
    return start, time.time(), latencies, statuses


def run_clients(url: str, requests: list[tuple[str, bytes, dict[str, str]]], clients: int, procs: int) -> tuple[float, list[float], list[int]]:  # fmt: skip
    """``clients`` concurrent clients spread over ``procs`` processes (one Python process
    saturates a core at ~700 requests/s of httpx alone); elapsed is first start to last end."""
    if procs <= 1:
        return asyncio.run(blast(url, requests, clients))
    import multiprocessing

    shares = [
        (url, requests[i::procs], clients // procs + (i < clients % procs)) for i in range(procs)
    ]
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_blast_process, shares)
    elapsed = max(p[1] for p in parts) - min(p[0] for p in parts)
    return elapsed, [x for p in parts for x in p[2]], [x for p in parts for x in p[3]]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _deployment(name: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("escalate-incident")
        return str(client.create_deployment(flow_id=flow_id, name=name))


def _runs(deployment_id: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        f = DeploymentFilter(id=DeploymentFilterId(any_=[uuid.UUID(deployment_id)]))
        return client.count_flow_runs(deployment_filter=f)


def _inbox(ledger: str) -> tuple[int, int, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(ledger)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM ladder_intake_alerts")).scalar_one()
        dispatched, total = conn.execute(sa.text(
            "SELECT sum(CASE WHEN state = 'dispatched' THEN 1 ELSE 0 END), count(*)"
            " FROM ladder_intake_records")).one()  # fmt: skip
    engine.dispose()
    return rows, int(dispatched or 0), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=5000)
    ap.add_argument("--fingerprints", type=int, default=500)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--client-procs", type=int, default=2, help="processes the clients run in")
    ap.add_argument("--api-url", help="a running Prefect server (default: start one)")
    args = ap.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    with ExitStack() as stack:
        if args.api_url:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            stack.enter_context(temporary_settings({PREFECT_API_URL: args.api_url}))
            api = args.api_url
        else:
            from prefect.settings import PREFECT_API_URL
            from prefect.testing.utilities import prefect_test_harness

            print("starting a Prefect server ...", flush=True)
            stack.enter_context(prefect_test_harness(server_startup_timeout=120))
            api = str(PREFECT_API_URL.value())
        tmp = Path(tempfile.mkdtemp(prefix="intake-bench-"))
        name = f"bench-{uuid.uuid4().hex[:8]}"
        deployment_id = _deployment(name)
        (tmp / "env.yaml").write_text("name: bench\n")
        (tmp / "runbook.yaml").write_text(
            "name: bench\nenvironment: env.yaml\ndedup_window_minutes: 60\nmatch:\n"
            "  - {source: sentry}\n  - {source: datadog}\n  - {source: pagerduty}\n"
            "  - {source: webhook}\nrungs:\n  evidence: {}\n"
        )
        (tmp / "intake.yaml").write_text(
            f"deployment: escalate-incident/{name}\nrunbooks: [runbook.yaml]\n"
        )
        ledger = f"sqlite:///{tmp / 'ledger.db'}"
        port = _free_port()
        env = {**os.environ, **SECRETS, "LADDER_HOME": str(tmp / "home"),
               "LADDER_LEDGER_URL": ledger, "PREFECT_API_URL": api}  # fmt: skip
        log = open(tmp / "intake.log", "w")  # noqa: SIM115 - closed with the stack
        stack.callback(log.close)
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "intake", "serve", "--port", str(port),
             "--config", str(tmp / "intake.yaml")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

        def stop() -> None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

        stack.callback(stop)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        tag = uuid.uuid4().hex[:8]
        requests = [request_for(i, i % args.fingerprints, tag) for i in range(args.alerts)]
        print(f"sending {args.alerts} alerts over {args.fingerprints} fingerprints "
              f"from {args.clients} clients in {args.client_procs} process(es) to {url} ...",
              flush=True)  # fmt: skip
        elapsed, latencies, statuses = run_clients(url, requests, args.clients, args.client_procs)
        accepted = statuses.count(202)
        t_dispatch = time.perf_counter()
        while True:
            rows, dispatched, total = _inbox(ledger)
            if dispatched >= args.fingerprints or time.perf_counter() - t_dispatch > 300:
                break
            time.sleep(0.5)
        dispatch_s = time.perf_counter() - t_dispatch
        runs = _runs(deployment_id)
        rate = accepted / elapsed
        p50, p99 = _percentile(latencies, 0.50) * 1000, _percentile(latencies, 0.99) * 1000
        others = {s: statuses.count(s) for s in set(statuses) if s != 202}
        print(f"accepted: {accepted}/{args.alerts} in {elapsed:.2f} s = {rate:.0f} alerts/s"
              + (f" (other answers: {others})" if others else ""))  # fmt: skip
        print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms")
        print(f"records: {total} ({dispatched} dispatched; the last {dispatch_s:.1f} s after "
              f"the last alert)")  # fmt: skip
        print(f"flow runs created: {runs} (expected {args.fingerprints})")
        print(f"inbox rows: {rows} (expected {args.alerts})")
        print(f"RESULT alerts_per_s={rate:.0f} p50_ms={p50:.1f} p99_ms={p99:.1f} "
              f"runs={runs} inbox={rows}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Lossless: alerts that arrive while Prefect is away are answered 202 and get their runs when
it is back; an intake SIGKILLed at any moment and restarted loses nothing and doubles nothing."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from intake_util import Intake, Relay, flow_runs, free_port, payload, signed, wait_for, write_config


def _datadog(key: str) -> bytes:
    data = payload("datadog")
    data["aggregate_key"] = key
    return json.dumps(data).encode()


def test_prefect_down_then_back(
    prefect_server: str, deployment: tuple[str, str], tmp_path: Path
) -> None:
    server = urlsplit(prefect_server)
    relay_port = free_port()  # nothing listens here until the relay starts
    api = f"http://127.0.0.1:{relay_port}{server.path}"
    proc = Intake(tmp_path, write_config(tmp_path, deployment[0]), api).start()
    relay = Relay(relay_port, (server.hostname or "127.0.0.1", server.port or 80))
    try:
        keys = [uuid.uuid4().hex for _ in range(10)]
        for key in keys:
            for _ in range(3):
                body = _datadog(key)
                assert proc.post("datadog", body, signed("datadog", body)).status_code == 202
        records = wait_for(  # the dispatcher has tried and failed meanwhile
            lambda: (rs := proc.records()) and all(r["attempts"] >= 1 for r in rs) and rs,
            timeout=90,
            what="a failed try per record",
        )
        assert len(records) == 10 and {r["state"] for r in records} == {"pending"}
        assert all("Connect" in r["last_error"] for r in records)
        relay.start()
        done = wait_for(
            lambda: (rs := proc.records()) and all(r["state"] == "dispatched" for r in rs) and rs,
            timeout=90,
            what="every record to be dispatched",
        )
        assert sorted(r["count"] for r in done) == [3] * 10
        runs = [r for r in flow_runs(deployment[1]) if r.idempotency_key in
                {f"ladder-intake:{r['id']}" for r in done}]  # fmt: skip
        assert len(runs) == 10
        assert {str(r.id) for r in runs} == {r["flow_run_id"] for r in done}
    finally:
        proc.stop()
        relay.stop()


def test_sigkill_and_restart_lose_nothing_and_double_nothing(
    prefect_server: str, deployment: tuple[str, str], tmp_path: Path
) -> None:
    proc = Intake(tmp_path, write_config(tmp_path, deployment[0]), prefect_server).start()
    accepted: list[tuple[str, str]] = []  # (key, record) of every 202
    unknown: list[str] = []  # requests cut off by a kill: counted once more, or not
    stop = threading.Event()
    keys = [uuid.uuid4().hex for _ in range(40)]

    def sender() -> None:
        i = 0
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                key = keys[i % len(keys)]
                body = _datadog(key)
                try:
                    r = client.post(
                        f"{proc.url}/hooks/datadog", content=body, headers=signed("datadog", body)
                    )
                except httpx.HTTPError:  # the intake is down: a sender retries
                    unknown.append(key)  # committed or not: the answer never came
                    time.sleep(0.05)
                    continue
                if r.status_code == 202:
                    accepted.append((key, r.json()["alerts"][0]["record"]))
                    i += 1

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):  # kill it mid-traffic, mid-dispatch, three times
            time.sleep(1.5)
            proc.stop(signal.SIGKILL)
            time.sleep(0.3)
            proc.start()
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        records: list[dict[str, Any]] = wait_for(
            lambda: (rs := proc.records()) and all(r["state"] == "dispatched" for r in rs) and rs,
            timeout=90,
            what="every record to be dispatched",
        )
        # nothing lost: every 202 is counted on its record (a request the kill cut off before
        # its answer may be counted too: its sender sent it again, as Datadog would)
        assert len(accepted) <= sum(r["count"] for r in records) <= len(accepted) + len(unknown)
        assert {rec for _, rec in accepted} == {r["id"] for r in records}
        # nothing doubled: one record per fingerprint, one run per record
        assert len({r["fingerprint"] for r in records}) == len(records) == len(keys)
        ids = {f"ladder-intake:{r['id']}" for r in records}
        runs = [r for r in flow_runs(deployment[1]) if r.idempotency_key in ids]
        assert len(runs) == len(records)
        assert {str(r.id) for r in runs} == {r["flow_run_id"] for r in records}
    finally:
        proc.stop()

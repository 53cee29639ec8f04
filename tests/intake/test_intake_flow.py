"""From alert to flow run: normalization, routing, dedup (200 copies → one run, count 200),
resolved alerts, bad input, and the records `ladder intake list` shows."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from intake_util import Intake, flow_runs, payload, signed, wait_for


def _record(intake: Intake, record_id: str) -> dict[str, Any]:
    return next(r for r in intake.records() if r["id"] == record_id)


def _runs_for(deployment_id: str, record_id: str) -> list[Any]:
    return [
        r for r in flow_runs(deployment_id)
        if r.idempotency_key == f"ladder-intake:{record_id}"
    ]  # fmt: skip


def test_sentry_event_alert_becomes_a_run_with_the_incident(
    intake: Intake, deployment: tuple[str, str]
) -> None:
    data = payload("sentry_event_alert")
    data["data"]["event"]["issue_id"] = issue = str(uuid.uuid4().int)[:10]
    body = json.dumps(data).encode()
    r = intake.post("sentry", body, signed("sentry", body, resource="event_alert"))
    assert r.status_code == 202, r.text
    (alert,) = r.json()["alerts"]
    assert alert["new"] and alert["state"] == "pending" and alert["count"] == 1
    record = wait_for(
        lambda: (rec := _record(intake, alert["record"]))["state"] == "dispatched" and rec,
        what="the run to be created",
    )
    (run,) = _runs_for(deployment[1], alert["record"])
    assert str(run.id) == record["flow_run_id"]
    incident = run.parameters["incident"]
    assert run.parameters["runbook"].endswith("runbook.yaml")
    assert incident["source"] == "sentry" and incident["fingerprint"] == issue
    assert incident["title"].startswith("NoMethodError")
    assert incident["params"] == {
        "user_id": "42", "user_ids": [42], "request_id": "6f2a1c9e-0b8d-4c53-9d0e-2d8f7b1a4e11",
    }  # fmt: skip
    assert incident["labels"]["severity"] == "error"
    assert incident["labels"]["url"].startswith("https://sentry.io/")


def test_raw_payload_is_scrubbed_in_the_inbox(intake: Intake) -> None:
    import sqlalchemy as sa

    data = payload("sentry_event_alert")
    data["data"]["event"]["issue_id"] = str(uuid.uuid4().int)[:10]
    body = json.dumps(data).encode()
    assert (
        intake.post("sentry", body, signed("sentry", body, resource="event_alert")).status_code
        == 202
    )
    engine = sa.create_engine(intake.ledger)
    with engine.connect() as conn:
        stored = " ".join(
            str(p) for (p,) in conn.execute(sa.text("SELECT payload FROM ladder_intake_alerts"))
        )
    engine.dispose()
    assert "jane.doe@example.org" not in stored and "203.0.113.9" not in stored
    assert "_shop_session=abc123" not in stored
    assert "CheckoutController#create" in stored


@pytest.mark.parametrize(
    ("source", "name", "fingerprints"),
    [
        ("datadog", "datadog", ["2b4f7d9c1e3a5b6d"]),
        ("alertmanager", "alertmanager", ["c3e8a1b2d4f60718", "9a7b6c5d4e3f2a10"]),
        ("pagerduty", "pagerduty_triggered", ["PGR0VU2"]),
        ("generic", "generic", ["checkout-latency"]),
        ("sentry", "sentry_issue_created", ["1170820242"]),
    ],
)
def test_each_source_is_normalized(
    intake: Intake, deployment: tuple[str, str], source: str, name: str, fingerprints: list[str]
) -> None:
    tag = uuid.uuid4().hex[:8]
    text = (
        json.dumps(payload(name))
        .replace("01DEN3CLX3J8KLQMK9YCCL3DBY", f"ev{tag}")
        .replace("checkout-latency", f"checkout-latency{tag}")
    )
    for fp in fingerprints:
        text = text.replace(f'"{fp}"', f'"{fp}{tag}"')
    body = text.encode()
    r = intake.post(source, body, signed(source, body))
    assert r.status_code == 202, r.text
    alerts = r.json()["alerts"]
    assert len(alerts) == len(fingerprints)
    for a in alerts:
        wait_for(lambda a=a: _record(intake, a["record"])["state"] == "dispatched", what="a run")
        (run,) = _runs_for(deployment[1], a["record"])
        assert run.parameters["incident"]["fingerprint"] in {f"{fp}{tag}" for fp in fingerprints}
        assert run.parameters["incident"]["source"] == (
            "webhook" if source == "generic" else source
        )


def test_no_matching_runbook_is_recorded_without_a_run(
    intake: Intake, deployment: tuple[str, str]
) -> None:
    data = payload("generic")
    data["data"]["service"] = "billing"  # the test runbook takes generic alerts of shop-web only
    data["data"]["fingerprint"] = uuid.uuid4().hex
    body = json.dumps(data).encode()
    r = intake.post("generic", body, signed("generic", body))
    assert r.status_code == 202
    (alert,) = r.json()["alerts"]
    assert alert["state"] == "unmatched"
    record = _record(intake, alert["record"])
    assert record["runbook"] is None and record["flow_run_id"] is None
    assert _runs_for(deployment[1], alert["record"]) == []


def test_resolved_closes_the_record_and_starts_nothing(
    intake: Intake, deployment: tuple[str, str]
) -> None:
    incident_id = f"P{uuid.uuid4().hex[:8]}"
    fired = json.loads(json.dumps(payload("pagerduty_triggered")).replace("PGR0VU2", incident_id))
    fired["event"]["id"] = uuid.uuid4().hex
    body = json.dumps(fired).encode()
    (alert,) = intake.post("pagerduty", body, signed("pagerduty", body)).json()["alerts"]
    wait_for(lambda: _record(intake, alert["record"])["state"] == "dispatched", what="a run")
    resolved = json.loads(json.dumps(payload("pagerduty_resolved")).replace("PGR0VU2", incident_id))
    body = json.dumps(resolved).encode()
    r = intake.post("pagerduty", body, signed("pagerduty", body))
    assert r.status_code == 202
    assert r.json()["alerts"][0]["state"] == "closed"
    assert _record(intake, alert["record"])["closed_at"] is not None
    # firing again after the close is a new incident with a run of its own
    fired["event"]["id"] = uuid.uuid4().hex
    body = json.dumps(fired).encode()
    (again,) = intake.post("pagerduty", body, signed("pagerduty", body)).json()["alerts"]
    assert again["new"] and again["record"] != alert["record"]
    wait_for(lambda: _record(intake, again["record"])["state"] == "dispatched", what="a run")
    assert len(_runs_for(deployment[1], alert["record"])) == 1


async def _send_many(intake: Intake, n: int, make: Any) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=intake.url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(make(client) for _ in range(n)))


def test_200_concurrent_copies_start_one_run_counted_200(
    intake: Intake, deployment: tuple[str, str]
) -> None:
    data = payload("datadog")
    data["aggregate_key"] = key = uuid.uuid4().hex
    body = json.dumps(data).encode()

    async def one(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/hooks/datadog", content=body, headers=signed("datadog", body))

    responses = asyncio.run(_send_many(intake, 200, one))
    assert [r.status_code for r in responses] == [202] * 200
    records = {r.json()["alerts"][0]["record"] for r in responses}
    assert len(records) == 1
    (record_id,) = records
    assert sum(r.json()["alerts"][0]["new"] for r in responses) == 1
    record = wait_for(
        lambda: (rec := _record(intake, record_id))["state"] == "dispatched" and rec, what="a run"
    )
    assert record["count"] == 200 and record["fingerprint"] == key
    assert len(_runs_for(deployment[1], record_id)) == 1


@pytest.mark.parametrize(
    ("body", "ctype", "status", "needle"),
    [
        (b"{not json", "application/json", 400, "JSON"),
        (b'{"a": NaN}', "application/json", 400, "JSON"),
        (b"[" * 100_000, "application/json", 400, "JSON"),
        (b'"\\ud800"', "application/json", 400, "JSON"),
        (b"{}", "text/plain", 415, "application/json"),
        (b"{}", "", 415, "application/json"),
        (b"[]", "application/json", 400, "object"),
        (b'{"title": "x"}', "application/json", 400, "aggregate_key"),
        (b'{"aggregate_key": "k"}', "application/json", 400, "title: missing"),
        (
            b'{"aggregate_key": "k", "title": {"a": 1}}',
            "application/json",
            400,
            "title: wrong type",
        ),
    ],
)
def test_bad_input_is_4xx_json(
    intake: Intake, body: bytes, ctype: str, status: int, needle: str
) -> None:
    headers = signed("datadog", body)
    headers["content-type"] = ctype
    r = intake.post("datadog", body, headers)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


@pytest.mark.parametrize(
    ("source", "body", "needle"),
    [
        ("sentry", b'{"action": "created", "data": {"issue": {"title": "t"}}}', "data.issue.id: missing"),
        ("alertmanager", b'{"version": "4", "alerts": [{"labels": {"alertname": "A"}}]}', "alerts.0.fingerprint"),
        ("alertmanager", b'{"version": "3", "alerts": []}', "version"),
        ("pagerduty", b'{"event": {"id": "e", "event_type": "incident.triggered"}}', "event.data: missing"),
        ("generic", b'{"type": "x", "data": {}}', "data.title: missing"),
    ],
)  # fmt: skip
def test_valid_signature_wrong_shape_names_the_field(
    intake: Intake, source: str, body: bytes, needle: str
) -> None:
    r = intake.post(source, body, signed(source, body))
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]


def test_body_over_1_mib_is_413(intake: Intake) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    r = intake.post("datadog", body, signed("datadog", body))
    assert r.status_code == 413 and r.json()["error"]

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming
        yield b'{"pad": "'
        for _ in range(300):
            yield b"x" * 4096
        yield b'"}'

    r = httpx.post(
        f"{intake.url}/hooks/datadog", content=chunks(), headers=signed("datadog", b""), timeout=30
    )
    assert r.status_code == 413


def test_wrong_method_and_path_are_json(intake: Intake) -> None:
    r = httpx.get(f"{intake.url}/hooks/datadog")
    assert r.status_code == 405 and r.json()["error"]
    r = httpx.get(f"{intake.url}/nothing/here")
    assert r.status_code == 404 and r.json()["error"]

"""Each scheme's signature or token: right → 202, wrong or missing → 401; rotation; replays;
timestamps more than 5 minutes off; disabled and unknown sources → 404."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from intake_util import (
    PAGERDUTY_SECRET,
    SECRET_ENV,
    WEBHOOK_KEY,
    Intake,
    hexmac,
    payload,
    signed,
    standard_signature,
    write_config,
)

BODIES = {
    "sentry": "sentry_issue_created",
    "datadog": "datadog",
    "alertmanager": "alertmanager",
    "pagerduty": "pagerduty_triggered",
    "generic": "generic",
}
AUTH_HEADERS = {
    "sentry": "sentry-hook-signature",
    "datadog": "x-ladder-token",
    "alertmanager": "authorization",
    "pagerduty": "x-pagerduty-signature",
    "generic": "webhook-signature",
}


def _body(source: str) -> bytes:
    data = payload(BODIES[source])
    data["_test"] = uuid.uuid4().hex  # a fresh body per test
    if source == "pagerduty":
        data["event"]["id"] = uuid.uuid4().hex  # PagerDuty's delivery id is in the body
    return json.dumps(data).encode()


@pytest.mark.parametrize("source", list(BODIES))
def test_right_signature_is_accepted(intake: Intake, source: str) -> None:
    body = _body(source)
    r = intake.post(source, body, signed(source, body))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"


@pytest.mark.parametrize("source", list(BODIES))
def test_wrong_signature_is_401(intake: Intake, source: str) -> None:
    body = _body(source)
    headers = signed(source, body)
    good = headers[AUTH_HEADERS[source]]
    headers[AUTH_HEADERS[source]] = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    r = intake.post(source, body, headers)
    assert r.status_code == 401, r.text
    assert "error" in r.json()
    assert good not in r.text and SECRET_ENV["LADDER_DATADOG_TOKEN"] not in r.text


@pytest.mark.parametrize("source", list(BODIES))
def test_missing_signature_is_401(intake: Intake, source: str) -> None:
    body = _body(source)
    headers = signed(source, body)
    del headers[AUTH_HEADERS[source]]
    assert intake.post(source, body, headers).status_code == 401


@pytest.mark.parametrize("source", ["sentry", "pagerduty", "generic"])
def test_body_changed_after_signing_is_401(intake: Intake, source: str) -> None:
    body = _body(source)
    headers = signed(source, body)
    assert intake.post(source, body.replace(b"Checkout", b"Checkoux"), headers).status_code == 401


def test_token_by_basic_auth(intake: Intake) -> None:
    body = _body("datadog")
    headers = {"content-type": "application/json"}
    import base64

    cred = base64.b64encode(f"datadog:{SECRET_ENV['LADDER_DATADOG_TOKEN']}".encode()).decode()
    assert (
        intake.post("datadog", body, {**headers, "authorization": f"Basic {cred}"}).status_code
        == 202
    )
    bad = base64.b64encode(b"datadog:nope").decode()
    assert (
        intake.post("datadog", body, {**headers, "authorization": f"Basic {bad}"}).status_code
        == 401
    )


def test_pagerduty_rotation_several_signatures(intake: Intake) -> None:
    body = _body("pagerduty")
    old = "v1=" + hexmac("the-old-secret", body)
    new = "v1=" + hexmac(PAGERDUTY_SECRET, body)
    headers = {"content-type": "application/json", "x-pagerduty-signature": f"{old},{new}"}
    assert intake.post("pagerduty", body, headers).status_code == 202
    headers["x-pagerduty-signature"] = f"{old},v1={hexmac('another', body)}"
    assert intake.post("pagerduty", body, headers).status_code == 401


def test_standard_webhooks_rotation_several_signatures(intake: Intake) -> None:
    body = _body("generic")
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    other = standard_signature(b"some-other-key", msg_id, stamp, body)
    right = standard_signature(WEBHOOK_KEY, msg_id, stamp, body)
    headers = {
        "content-type": "application/json", "webhook-id": msg_id,
        "webhook-timestamp": stamp, "webhook-signature": f"{other} {right}",
    }  # fmt: skip
    assert intake.post("generic", body, headers).status_code == 202


def test_our_side_rotation_accepts_either_secret(
    prefect_server: str, deployment: tuple[str, str], tmp_path
) -> None:
    config = write_config(tmp_path, deployment[0])
    config.write_text(
        config.read_text()
        + "sources:\n  sentry: [{env: INTAKE_OLD_SECRET}, {env: INTAKE_NEW_SECRET}]\n"
    )
    proc = Intake(
        tmp_path, config, prefect_server, INTAKE_OLD_SECRET="old-one", INTAKE_NEW_SECRET="new-one"
    ).start()
    try:
        for secret in ("old-one", "new-one"):
            body = _body("sentry")
            headers = signed("sentry", body)
            headers["sentry-hook-signature"] = hexmac(secret, body)
            assert proc.post("sentry", body, headers).status_code == 202
        body = _body("sentry")
        assert proc.post("sentry", body, signed("sentry", body)).status_code == 401  # default gone
    finally:
        proc.stop()


@pytest.mark.parametrize("source", ["sentry", "generic"])
def test_replayed_delivery_id_is_409(intake: Intake, source: str) -> None:
    body = _body(source)
    delivery = f"msg_{uuid.uuid4().hex}"
    headers = signed(source, body, delivery=delivery)
    assert intake.post(source, body, headers).status_code == 202
    r = intake.post(source, body, headers)
    assert r.status_code == 409 and "replay" in r.json()["error"]


def test_replayed_pagerduty_event_is_409(intake: Intake) -> None:
    data = payload("pagerduty_triggered")
    data["event"]["id"] = uuid.uuid4().hex
    body = json.dumps(data).encode()
    assert intake.post("pagerduty", body, signed("pagerduty", body)).status_code == 202
    assert intake.post("pagerduty", body, signed("pagerduty", body)).status_code == 409


@pytest.mark.parametrize("source", ["sentry", "generic"])
@pytest.mark.parametrize("skew", [-400, 400])
def test_timestamp_more_than_5_minutes_off_is_401(intake: Intake, source: str, skew: int) -> None:
    body = _body(source)
    r = intake.post(source, body, signed(source, body, now=time.time() + skew))
    assert r.status_code == 401 and "5 minutes" in r.json()["error"]


def test_generic_without_timestamp_is_401(intake: Intake) -> None:
    body = _body("generic")
    headers = signed("generic", body)
    del headers["webhook-timestamp"]
    assert intake.post("generic", body, headers).status_code == 401


def test_source_without_secret_is_disabled(
    prefect_server: str, deployment: tuple[str, str], tmp_path
) -> None:
    proc = Intake(
        tmp_path, write_config(tmp_path, deployment[0]), prefect_server, LADDER_PAGERDUTY_SECRET=""
    ).start()
    try:
        body = _body("pagerduty")
        r = proc.post("pagerduty", body, signed("pagerduty", body))
        assert r.status_code == 404 and r.json()["error"]
        assert proc.post("sentry", _body("sentry"), {}).status_code == 401  # the others stay on
    finally:
        proc.stop()


def test_unknown_source_is_404(intake: Intake) -> None:
    r = intake.post("nagios", b"{}", {"content-type": "application/json"})
    assert r.status_code == 404 and r.json()["error"]


def test_healthz(intake: Intake) -> None:
    import httpx

    r = httpx.get(f"{intake.url}/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "sources": sorted(BODIES)}

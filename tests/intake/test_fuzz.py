"""Property-based fuzzing of every endpoint: whatever arrives, never a 5xx, always JSON."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intake_util import Intake, payload, signed

SOURCES = ["sentry", "datadog", "alertmanager", "pagerduty", "generic"]
FIXTURE = {
    "sentry": "sentry_event_alert",
    "datadog": "datadog",
    "alertmanager": "alertmanager",
    "pagerduty": "pagerduty_triggered",
    "generic": "generic",
}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)  # fmt: skip
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(
    str.strip
)  # h11 refuses to send a value with outer spaces


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    assert isinstance(r.json(), dict)


@pytest.fixture(scope="module")
def client(intake: Intake) -> Any:
    with httpx.Client(base_url=intake.url, timeout=30) as c:
        yield c


@pytest.mark.parametrize("source", [*SOURCES, "unknown"])
@FUZZ
@given(body=st.binary(max_size=2000), headers=st.dictionaries(
    st.sampled_from(["content-type", "authorization", "x-ladder-token", "sentry-hook-signature",
                     "sentry-hook-resource", "sentry-hook-timestamp", "request-id",
                     "x-pagerduty-signature", "webhook-id", "webhook-timestamp",
                     "webhook-signature", "content-length"]),
    header_text, max_size=6))  # fmt: skip
def test_random_bytes_and_headers(
    client: httpx.Client, source: str, body: bytes, headers: dict[str, str]
) -> None:
    headers.pop("content-length", None)  # httpx sets it; a wrong one is a client-side error
    _check(client.post(f"/hooks/{source}", content=body, headers=headers))


@pytest.mark.parametrize("source", SOURCES)
@FUZZ
@given(data=json_values)
def test_signed_random_json(client: httpx.Client, source: str, data: Any) -> None:
    body = json.dumps(data).encode()
    _check(
        client.post(
            f"/hooks/{source}", content=body, headers=signed(source, body, resource="event_alert")
        )
    )


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    value = json.loads(json.dumps(value))
    cur = value
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = new
    return value


@pytest.mark.parametrize("source", SOURCES)
@FUZZ
@given(st.data())
def test_signed_real_payload_with_one_field_changed(
    client: httpx.Client, source: str, data: st.DataObject
) -> None:
    base = payload(FIXTURE[source])
    path = data.draw(st.sampled_from(_paths(base)))
    changed = _replace(base, path, data.draw(json_values))
    body = json.dumps(changed).encode()
    r = client.post(
        f"/hooks/{source}", content=body, headers=signed(source, body, resource="event_alert")
    )
    _check(r)
    assert r.status_code in (202, 400, 409), r.text

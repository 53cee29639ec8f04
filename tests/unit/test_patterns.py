"""The scrubber and the gate share one idea of PII: the gate flags what the scrubber scrubs and
accepts what the scrubber (and the email transformer) emits."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ladder.replica import gate
from ladder.sanitize import patterns
from ladder.sanitize.registry import get_transformer
from ladder.sanitize.scrub import scrub_text
from ladder.sanitize.vectorized import scrub_text_column

PII = {
    "email": ["ann@gmail.com", "ann%40gmail.com", "o'neil+vip@mail.corp.co.uk", "BOB@Corp.IO"],
    "card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"],
    "phone": ["+1 415 555 0134", "(415) 555-0134", "020 7946 0958", "+44 20 7946 0958"],
}
DETECTORS = {
    "email": patterns.has_foreign_email,
    "card": patterns.has_card_number,
    "phone": patterns.has_phone_number,
}
SAMPLES = [(kind, value) for kind, values in PII.items() for value in values]


def _flagged(text: str) -> list[str]:
    return [kind for kind, detect in DETECTORS.items() if detect(text)]


@pytest.mark.parametrize(("kind", "value"), SAMPLES)
def test_the_gate_flags_what_the_scrubber_scrubs(kind: str, value: str) -> None:
    text = f"customer wrote: reach me at {value} after 5pm"
    assert kind in _flagged(text)
    assert scrub_text(text) != text


@pytest.mark.parametrize(("kind", "value"), SAMPLES)
def test_the_gate_accepts_what_the_scrubber_emits(kind: str, value: str) -> None:
    text = f"customer wrote: reach me at {value} after 5pm"
    assert _flagged(scrub_text(text)) == []
    assert _flagged(scrub_text_column(pa.array([text])).to_pylist()[0]) == []


def test_reserved_addresses_pass_and_card_length_numbers_are_cards() -> None:
    for ok in (
        "ann@example.org",
        "x%40shop.example.com",
        "a@b.test",
        "c@d.invalid",
        "e@f.localhost",
    ):
        assert _flagged(ok) == [], ok
    # fails Luhn, but a card-shaped number is a card (fail closed, issue 8); a letter makes an id
    assert _flagged("order 4111111111111112 shipped") == ["card"]
    assert _flagged("order R4111111111111112 shipped") == []


def test_the_email_transformer_writes_what_the_gate_accepts() -> None:
    for domain in ("example.com", "shop.test", "mail.example"):
        out = get_transformer("email", {"domain": domain}).transform(
            pa.array(["ann@gmail.com", "bob@corp.io"]), b"k" * 32
        )
        for address in out.to_pylist():
            assert not patterns.has_foreign_email(address), address


def test_the_gate_uses_the_shared_sql_pattern() -> None:
    assert gate.RESERVED_EMAIL_SQL is patterns.RESERVED_EMAIL_SQL
    for tld in patterns.RESERVED_TLDS:
        assert tld in patterns.RESERVED_EMAIL_SQL

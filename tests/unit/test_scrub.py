"""The text scrubber: what it must catch, what it must leave alone, and the three entry points."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ladder.sanitize.scrub import is_sensitive_key, scrub_series, scrub_text, scrub_value

# (text, expected): every planted secret or PII value is replaced.
POSITIVE = [
    # emails
    ("mail sent to ann@example.org", "mail sent to [EMAIL]"),
    ("to: Ann.Smith+vip@mail.EXAMPLE.co.uk;", "to: [EMAIL];"),
    ("BOB_99@Shop-Mail.IO bounced", "[EMAIL] bounced"),
    ("Validation failed: Email 'x.y@sub.domain.example.com' is taken",
     "Validation failed: Email '[EMAIL]' is taken"),
    # phones
    ("call +44 20 7946 0958 today", "call [PHONE] today"),
    ("tel +49 (0)30 1234567", "tel [PHONE]"),
    ("(415) 555-2671", "[PHONE]"),
    ("415.555.2671", "[PHONE]"),
    ("415-555-2671 ext", "[PHONE] ext"),
    ("+1 415 555 2671", "[PHONE]"),
    ("+33 1 23 45 67 89", "[PHONE]"),
    ("020 7946 0958", "[PHONE]"),
    ("phone 030 1234567 (home)", "phone [PHONE] (home)"),
    # cards (Luhn-valid)
    ("card 4242 4242 4242 4242 declined", "card [CARD] declined"),
    ("4111-1111-1111-1111", "[CARD]"),
    ("amex 378282246310005", "amex [CARD]"),
    ("5555555555554444", "[CARD]"),
    # IPs
    ("Started GET \"/\" for 203.0.113.5 at 2026-11-25", "Started GET \"/\" for [IP] at 2026-11-25"),
    ("from 10.0.0.254:5432", "from [IP]:5432"),
    ("for ::1 at", "for [IP] at"),
    ("client 2001:db8::8a2e:370:7334 refused", "client [IP] refused"),
    ("fe80::1ff:fe23:4567:890a", "[IP]"),
    ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:443", "[[IP]]:443"),
    # tokens
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
     "jwt [TOKEN] ok"),
    ("Stripe key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "Stripe key [TOKEN]"),
    ("pk_test_TYooMQauvdEDq54NiTphI7jx used", "[TOKEN] used"),
    ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "[TOKEN]"),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws [TOKEN]"),
    ("slack xoxb-123456789012-1234567890123-abcdefghijkl", "slack [TOKEN]"),
    ("digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
     "digest [TOKEN]"),
    ("aws secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws secret [TOKEN]"),
    ("reset link has Zx81Lm0QpRt7Yb2Vc9Nd4Kf6Hg3Js5Aw1E", "reset link has [TOKEN]"),
    ("curl -H 'X: Bearer a1b2c3d4e5f6g7h8'", "curl -H 'X: Bearer [TOKEN]'"),
    # pairs in text
    ("password=hunter2", "password=[FILTERED]"),
    ("login user=ann password=hunter2 ok", "login user=ann password=[FILTERED] ok"),
    ("Authorization: Bearer abc.def.ghi", "Authorization: [FILTERED]"),
    ("Cookie: _shop_session=abc123; locale=en", "Cookie: [FILTERED]"),
    ('{"user"=>{"password"=>"hunter2", "remember_me"=>"1"}}',
     '{"user"=>{"password"=>"[FILTERED]", "remember_me"=>"1"}}'),
    ('{"password" => "hunter2", "token" => "abc"}',
     '{"password" => "[FILTERED]", "token" => "[FILTERED]"}'),
    ('{"api_key": "k-1", "qty": 2}', '{"api_key": "[FILTERED]", "qty": 2}'),
    ("{:password=>\"hunter2\"}", '{:password=>"[FILTERED]"}'),
    ('{password: "hunter2", name: "Ann Smith"}', '{password: "[FILTERED]", name: "[FILTERED]"}'),
    ("GET /reset?token=abc123&page=2", "GET /reset?token=[FILTERED]&page=2"),
    ("user[password]=x&user[email]=y", "user[password]=[FILTERED]&user[email]=[FILTERED]"),
    ('"billing_address"=>{"street"=>"1 Main St", "city"=>"Springfield"}',
     '"billing_address"=>"[FILTERED]"'),
    ("HTTP_COOKIE=abc", "HTTP_COOKIE=[FILTERED]"),
    ('[["first_name", "Ann"], ["LIMIT", 1]]', '[["first_name", "[FILTERED]"], ["LIMIT", 1]]'),
    ('WHERE "users"."last_name" = $1  [["last_name", "Smith"], ["LIMIT", 1]]',
     'WHERE "users"."last_name" = $1  [["last_name", "[FILTERED]"], ["LIMIT", 1]]'),
    ("postgres://app:s3cret@db.internal:5432/shop", "postgres://[FILTERED]@db.internal:5432/shop"),
    ('"card_number"=>"4242 4242 4242 4242", "cvv"=>"123"',
     '"card_number"=>"[FILTERED]", "cvv"=>"[FILTERED]"'),
]  # fmt: skip

# Text that must come back unchanged.
NEGATIVE = [
    "Processing by CheckoutController#create as JSON",
    "Completed 500 Internal Server Error in 123ms (ActiveRecord: 12.3ms | Allocations: 1234)",
    "I, [2026-11-25T10:00:01.123456 #1234]  INFO -- :",
    "at 2026-11-25 10:00:01 +0000",
    "timeout after 10:00:01",
    "took 12.5s, retried 3 times",
    "ActiveRecord::RecordNotFound",
    "ActionDispatch::Session::CookieStore",
    "Abc::Def::Cafe",
    "undefined method `amount_cents' for nil:NilClass",
    "undefined method 'amount_cents' for nil",
    "app/models/payment.rb:42:in `capture!'",
    "/srv/app/releases/20261125100001/app/models/order.rb:12:in `block in total'",
    "request 3f2b1c9e-5d4a-4e2b-9c1d-0a1b2c3d4e5f failed",
    "order 1234567890123 shipped",
    "order #R123456789",
    "GET /api/v1/orders/12345/line_items/67",
    "/admin/customers/merge_duplicate_accounts_controller_action",
    "Couldn't find Order with 'id'=123456",
    "version 1.2.3 and 10.4",
    "user_id=42 status=500",
    "PG::UniqueViolation: ERROR: duplicate key value violates unique constraint",
    "retry in 1500 ms",
    "epoch 1764064801123",
    "Processing by SessionsController#create as HTML",
    "Rendered layout layouts/application.html.erb (Duration: 12.0ms | Allocations: 3456)",
    "Redis::TimeoutError: Connection timed out",
    "quantity 3, total 59.90 EUR",
    "handleUserAuthenticationCallbackForProviders",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_scrub_text_replaces_pii_and_secrets(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize("text", NEGATIVE)
def test_scrub_text_keeps_ordinary_text(text: str) -> None:
    assert scrub_text(text) == text


def test_corpus_is_big_enough() -> None:
    assert len(POSITIVE) >= 40
    assert len(NEGATIVE) >= 25


def test_scrub_series_matches_scrub_text_and_keeps_missing() -> None:
    texts = [t for t, _ in POSITIVE] + NEGATIVE
    series = pd.Series([*texts, None, float("nan")])
    out = scrub_series(series)
    assert list(out[: len(texts)]) == [scrub_text(t) for t in texts]
    assert out.iloc[-1] is None
    assert out.iloc[-2] is None
    assert list(out.index) == list(series.index)


def test_scrub_series_on_string_dtype_and_empty() -> None:
    series = pd.Series(["ann@example.org", None], dtype="string")
    assert list(scrub_series(series)) == ["[EMAIL]", None]
    assert scrub_series(pd.Series([], dtype=object)).empty


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "user_password", "passwd", "client_secret", "auth_token",
     "api_key", "ApiKey", "X-Api-Key", "HTTP_AUTHORIZATION", "cookie", "_shop_session",
     "card", "card_number", "cvv", "cvc", "ssn", "email", "billing_email", "phone",
     "phone_number", "address", "shipping_address", "ip", "remote_ip", "remoteIp",
     "first_name", "lastName", "name", "date_of_birth", "zip"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    ["id", "user_id", "order_id", "quantity", "status", "description", "shipping_method",
     "controller", "action", "amount_cents", "currency", "sku", "format", "filename"],
)  # fmt: skip
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_scrub_value_filters_sensitive_keys_in_nested_structures() -> None:
    value = {
        "order": {
            "id": 1001,
            "billing_email": "ann@example.org",
            "items": [{"sku": "TSHIRT-M", "qty": 2}, {"note": "call me at +44 20 7946 0958"}],
            "payment": {"card_number": "4242424242424242", "CVC": "123"},
            "shipping_address": {"street": "1 Main St", "city": "Springfield"},
        },
        "X-Api-Key": "k_123",
        "Authorization": "Bearer abc",
        "comment": "from 203.0.113.5, token=abc123",
        "reference": 4242424242424242,
        "count": 3,
        "ok": True,
        "missing": None,
        "password": None,
    }
    assert scrub_value(value) == {
        "order": {
            "id": 1001,
            "billing_email": "[FILTERED]",
            "items": [{"sku": "TSHIRT-M", "qty": 2}, {"note": "call me at [PHONE]"}],
            "payment": {"card_number": "[FILTERED]", "CVC": "[FILTERED]"},
            "shipping_address": "[FILTERED]",
        },
        "X-Api-Key": "[FILTERED]",
        "Authorization": "[FILTERED]",
        "comment": "from [IP], token=[FILTERED]",
        "reference": "[CARD]",
        "count": 3,
        "ok": True,
        "missing": None,
        "password": None,
    }


def test_scrub_value_on_scalars_and_lists() -> None:
    assert scrub_value("ann@example.org") == "[EMAIL]"
    assert scrub_value(["ann@example.org", 7, None]) == ["[EMAIL]", 7, None]
    assert scrub_value(12.5) == 12.5
    assert json.dumps(scrub_value({"ann@example.org": 1})) == '{"[EMAIL]": 1}'


def test_the_fast_paths_skip_only_text_no_step_would_change() -> None:
    """The guards are an optimization: running every step on every text gives the same result."""
    from ladder.sanitize import scrub

    def every_step(text: str) -> str:
        for _, pattern, repl in scrub._STEPS:
            text = pattern.sub(repl, text)
        return text

    extra = [
        '[["first_name", "Ann"]]', "3f2b9a10-7c1d-4e8a-b2f4-000000000101", "Basic dXNlcjpwYXNz",
        "AKIAIOSFODNN7EXAMPLE", "x" * 40, "Zx81Lm0QpRt7Yb2Vc9Nd4Kf6Hg3Js5Aw1E", "ann%40example.org",
        "1.2.3.4", "+1 415 555 2671", "4242424242424242", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx.abc",
    ]  # fmt: skip
    for text in [t for t, _ in POSITIVE] + NEGATIVE + extra:
        assert scrub_text(text) == every_step(text), text

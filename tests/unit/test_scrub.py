"""The text scrubber: what it must catch, what it must leave alone, and the three entry points."""

from __future__ import annotations

import json
import re

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
    # fail closed (issue 8): card-length numbers are cards, Luhn or not; 13-digit epochs too
    ("order 1234567890123 shipped", "order [CARD] shipped"),
    ("epoch 1764064801123", "epoch [CARD]"),
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
    "order #R123456789",
    "GET /api/v1/orders/12345/line_items/67",
    "/admin/customers/merge_duplicate_accounts_controller_action",
    "Couldn't find Order with 'id'=123456",
    "version 1.2.3 and 10.4",
    "user_id=42 status=500",
    "PG::UniqueViolation: ERROR: duplicate key value violates unique constraint",
    "retry in 1500 ms",
    "epoch 176406480",
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
        for _, pattern, repl in scrub.STEPS:
            text = pattern.sub(repl, text)
        return text

    extra = [
        '[["first_name", "Ann"]]', "3f2b9a10-7c1d-4e8a-b2f4-000000000101", "Basic dXNlcjpwYXNz",
        "AKIAIOSFODNN7EXAMPLE", "x" * 40, "Zx81Lm0QpRt7Yb2Vc9Nd4Kf6Hg3Js5Aw1E", "ann%40example.org",
        "1.2.3.4", "+1 415 555 2671", "4242424242424242", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx.abc",
    ]  # fmt: skip
    for text in [t for t, _ in POSITIVE] + NEGATIVE + extra:
        assert scrub_text(text) == every_step(text), text


# --- the Arrow-vectorized scrubbers give the reference's output -----------------------------------

VECTOR_EXTRA = [
    "Prefers a call at +1-415-555-2671x123",
    "Asked us to use ann99@mail.example.com for invoices",
    "Called support re: refund; reach at 415.555.2671 or bob@corp.com",
    "a@b.com.x@y.org",
    "Café: crème brûlée for josé@exämple.com",  # non-ASCII: the reference decides
    "ch_00500742696162",
    "2026-11-25T10:00:01Z",
    "Foo::Bar::Baz",
    "line one\nline two with 4242 4242 4242 4242",
    "",
    "plain words only",
]


@pytest.mark.parametrize("text", [t for t, _ in POSITIVE] + NEGATIVE + VECTOR_EXTRA)
def test_vectorized_text_equals_the_reference(text: str) -> None:
    import pyarrow as pa

    from ladder.sanitize.vectorized import may_change, scrub_text_column

    column = pa.array([text, None, text])
    assert scrub_text_column(column).to_pylist() == [scrub_text(text), None, scrub_text(text)]
    if scrub_text(text) != text:  # the RE2 pre-filter never clears a value the reference changes
        assert may_change(column).to_pylist() == [True, False, True]


JSON_CORPUS = [
    {"id": "ch_00500742696162", "ip": "203.0.113.5", "billing_email": "a@b.com", "cardholder_name": "Ann"},
    {"id": "ch_1", "amount": 1250, "ip": "203.0.113.5", "billing_email": "a@b.com", "phone": "+1 415 555 2671",
     "cardholder_name": "Ann", "billing_address": "1 Main St", "shipping_address": "2 Main St"},
    {"shipping": {"email": "a@b.com", "phone": "+1 415 555 2671", "address": "1 Main St\nSpringfield"}, "newsletter": True},
    {"order": {"id": 1001, "items": [{"sku": "T-M", "qty": 2}, {"note": "call me at +44 20 7946 0958"}],
               "payment": {"card_number": "4242424242424242", "CVC": "123"},
               "shipping_address": {"street": "1 Main St", "city": "Springfield"}}},
    {"comment": "from 203.0.113.5, token=abc123", "reference": 4242424242424242, "count": 3,
     "ok": True, "missing": None, "password": None, "ratio": 1.5, "big": 12345678, "neg": -7},
    {"note": 'he said "hi" \\ and left \u00e9t\u00e9 \t tab', "escaped@key.com": 1, "tags": ["vip", "ann@corp.com"]},
    {"empty": {}, "list": [], "nested": [[1, 2], {"a": [None, False]}], "token": {"deep": [1, {"x": 2}]}},
    ["carol@corp.com", {"token": "abc"}, 5551234567, 0, -0.25, 1e20],
    "just a string with ann@corp.com",
    None,
]  # fmt: skip


def _json_reference(raw: str) -> str:
    return json.dumps(scrub_value(json.loads(raw)), ensure_ascii=False)


@pytest.mark.parametrize("doc", JSON_CORPUS, ids=range(len(JSON_CORPUS)))
def test_vectorized_json_equals_the_reference(doc) -> None:
    import pyarrow as pa

    from ladder.sanitize.vectorized_json import JsonScrubber

    texts = [json.dumps(doc, ensure_ascii=False)]
    # rows that share the layout with other values, so the column-wise path takes them
    texts += [
        t.replace("Ann", f"Ann{i}").replace("1001", str(1001 + i)) for i, t in enumerate(texts * 12)
    ]
    texts += [json.dumps(doc, separators=(",", ":")), json.dumps(doc, indent=1)]  # other spacing
    column = pa.array([*texts, None])
    fallbacks: list[int] = []
    out = JsonScrubber(lambda raw, row: fallbacks.append(row) or _json_reference(raw))(column)
    assert out.to_pylist() == [*(_json_reference(t) for t in texts), None]
    assert len(fallbacks) <= 2  # only the two rows with their own spacing


@pytest.mark.parametrize("doc", JSON_CORPUS[:2], ids=range(2))
def test_kept_values_early_in_the_document_are_extracted_by_prefix(doc) -> None:
    """The two first documents keep only values before their filtered fields: the cheaper
    prefix extraction serves them (and the test above proves it gives the reference's output)."""
    from ladder.sanitize.vectorized_json import plan_layout

    layout = plan_layout(json.dumps(doc))
    assert layout is not None and layout.extract_by_prefix


def test_vectorized_json_remembers_layouts_and_sends_odd_rows_to_the_reference() -> None:
    import pyarrow as pa

    from ladder.sanitize.vectorized_json import JsonScrubber

    calls: list[int] = []

    def reference(raw: str, row: int) -> str:
        calls.append(row)
        return _json_reference(raw)

    scrubber = JsonScrubber(reference)
    rows = [json.dumps({"id": i, "email": f"u{i}@corp.com"}) for i in range(50)]
    rows[0] = '{"odd": NaN}'  # no layout for the first row: the others still get theirs
    rows[7] = '{"id": 7, "email": "x@y.com", "id": 8}'  # a duplicate key: dict() semantics
    rows[9] = '{"odd": NaN}'
    assert scrubber(pa.array(rows)).to_pylist() == [_json_reference(r) for r in rows]
    assert calls == [0, 7, 9]
    calls.clear()
    again = [json.dumps({"id": 100 + i, "email": "v@corp.com"}) for i in range(3)]
    assert scrubber(pa.array(again)).to_pylist() == [_json_reference(r) for r in again]
    assert calls == []  # the layout learnt on the first chunk serves three rows


# --- the RE2 guards find what the Python guards find, ASCII or not --------------------------------

_EVERY_CHAR = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


@pytest.mark.parametrize("python_class", [r"\s", r"\d"])
def test_re2_guard_reads_every_character_class_as_python_does(python_class: str) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    from ladder.sanitize.vectorized import re2_guard

    python = [bool(re.fullmatch(python_class, c)) for c in _EVERY_CHAR]
    re2 = pc.match_substring_regex(pa.array(_EVERY_CHAR), f"^(?:{re2_guard(python_class)})$")
    missed = [hex(ord(c)) for c, p, r in zip(_EVERY_CHAR, python, re2.to_pylist(), strict=True) if p and not r]
    assert missed == []  # RE2 may know newer digits than this Python: a guard may fire more


def test_re2_guards_of_every_step_fire_wherever_python_guards_do_on_odd_letters() -> None:
    """Each step's guard, on texts where one character of something it matches is swapped for
    any character whose case relates to an ASCII letter (U+0130 'İ' matches 'i' under Python's
    IGNORECASE, not RE2's) or for a Unicode digit or space."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ladder.sanitize import scrub
    from ladder.sanitize.vectorized import _GUARDS

    odd = [
        c for c in _EVERY_CHAR
        if any(x.isascii() and x.isalpha() for x in (c.lower(), c.upper(), c.casefold()))
        or re.fullmatch(r"[\d\s]", c)
    ]  # fmt: skip
    seeds = ["Authorization: x", "cookie=1", "4111 1111 1111 1111", "1.2.3.4", "DE89 3704",
             "QQ 12 34 56 C", "a@b.c", 'x"k" => 1', "eyJhb", "Bearer abc"]  # fmt: skip
    texts = [s[:i] + c + s[i + 1 :] for s in seeds for i in range(len(s)) for c in odd]
    column = pa.array(texts)
    for (guard, _, _), re2 in zip(scrub.STEPS, _GUARDS, strict=True):
        fired = pc.match_substring_regex(column, re2).to_pylist()
        missed = [t for t, hit in zip(texts, fired, strict=True) if not hit and guard.search(t)]
        assert missed[:5] == [], guard.pattern


def test_re2_guard_refuses_what_it_cannot_spell_alike() -> None:
    from ladder.sanitize.vectorized import re2_guard

    for pattern in (r"\w+@", r"[\s,]", r"(?i)token", r"\bkey"):
        with pytest.raises(ValueError, match="guard"):
            re2_guard(pattern)

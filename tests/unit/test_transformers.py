"""One conformance suite over every registered transformer, then each transformer's own promises."""

from __future__ import annotations

import ipaddress
import json
import re

import pandas as pd
import pyarrow as pa
import pytest

from ladder.errors import ConfigError, SanitizeError
from ladder.sanitize import pools
from ladder.sanitize.registry import (
    TRANSFORMERS,
    Transformer,
    get_transformer,
    register,
    transformer_class,
)

KEY = b"test-key-0123456789abcdef"
OTHER_KEY = b"another-key-0123456789abcdef"

PEOPLE = [
    "Alice Johnson",
    "bob.smith@corp.example.de",
    "+49 30 1234567",
    "12 Baker Street, London",
    "carol",
    "Dave O'Brien",
    "eve@mail.com",
    "555-867-5309",
    "frank_99",
    "Grace Hopper",
] * 3 + [f"person-{i}@corp.com" for i in range(70)]
SAMPLES: dict[str, list[str]] = {name: PEOPLE for name in TRANSFORMERS}
SAMPLES["ip"] = [f"10.{i // 250}.{i % 250}.7" for i in range(60)] + [
    f"fe80::{i:x}:1" for i in range(40)
]
SAMPLES["json"] = [
    json.dumps({"email": f"u{i}@corp.com", "theme": "dark", "note": f"call +1 415 555 {1000 + i}"})
    for i in range(100)
]
OPTIONS: dict[str, dict] = {"fixed": {"value": "redacted"}}
UNIQUE_CAPABLE = [
    n for n in TRANSFORMERS if n not in ("fixed", "text", "json", "null", "keep")
]  # fmt: skip


def make(name: str, **extra) -> Transformer:
    return get_transformer(name, {**OPTIONS.get(name, {}), **extra})


def with_nulls(values: list[str]) -> list[str | None]:
    return [None if i % 7 == 3 else v for i, v in enumerate(values)]


# --- conformance: every transformer ----------------------------------------------------------------


def test_the_suite_covers_every_registered_transformer():
    expected = {"keep", "null", "email", "name", "first_name", "last_name", "phone", "address"}
    expected |= {"ip", "username", "text", "json", "hash", "fixed"}
    assert set(TRANSFORMERS) == expected
    assert set(SAMPLES) == set(TRANSFORMERS)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_same_input_and_key_give_the_same_output(name):
    values = pa.array(SAMPLES[name])
    first = make(name).transform(values, KEY)
    again = make(name).transform(values, KEY)
    assert first.to_pylist() == again.to_pylist()
    # the same value in another chunk, position and "table" gets the same pseudonym
    shifted = make(name).transform(pa.array(list(reversed(SAMPLES[name]))), KEY)
    assert shifted.to_pylist() == list(reversed(first.to_pylist()))


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_a_different_key_gives_different_outputs(name):
    values = pa.array(SAMPLES[name])
    a = make(name).transform(values, KEY).to_pylist()
    b = make(name).transform(values, OTHER_KEY).to_pylist()
    changed = sum(x != y for x, y in zip(a, b, strict=True)) / len(a)
    if transformer_class(name).keyed:
        assert changed >= 0.6, f"{name}: only {changed:.0%} of outputs depend on the key"
    else:  # keep, null, fixed and the scrubbers do not pseudonymize
        assert changed == 0


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_null_stays_null_and_length_is_kept(name):
    values = with_nulls(SAMPLES[name])
    for column in (pa.array(values), pd.Series(values, dtype=object)):
        out = make(name).transform(column, KEY)
        assert type(out) is type(column)
        assert len(out) == len(values)
        got_null = pd.isna(pd.Series(out.to_pylist() if isinstance(out, pa.Array) else out))
        expected = [True] * len(values) if name == "null" else [v is None for v in values]
        assert got_null.tolist() == expected


BLANKS = ["", " ", "\t", "  \n "]


@pytest.mark.parametrize(
    ("name", "unique"),
    [(n, u) for n in TRANSFORMERS for u in (False, True) if not u or n in UNIQUE_CAPABLE],
)
def test_blank_strings_stay_as_they_were(name, unique):
    """Issue 8: an empty address2 must not become a street address."""
    values = [*SAMPLES[name][:6], *BLANKS, None]
    for column in (pa.array(values), pd.Series(values, dtype=object)):
        out = make(name, unique=unique).transform(column, KEY)
        got = (
            out.to_pylist()
            if isinstance(out, pa.Array)
            else [None if pd.isna(v) else v for v in out]
        )
        assert got[6:] == [*BLANKS, None]


def test_blanks_kept_on_purpose_are_not_counted_as_survivors():
    from ladder.sanitize.blank import count_survivors

    original = pa.array(["", " ", "ann", "bob", None])
    assert count_survivors(original, pa.array(["", " ", "ann", "x", None])) == 1


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_pandas_and_arrow_inputs_agree_and_chunks_stay_chunked(name):
    values = SAMPLES[name]
    arrow = make(name).transform(pa.array(values), KEY).to_pylist()
    series = make(name).transform(pd.Series(values, index=range(100, 100 + len(values))), KEY)
    assert list(series.index) == list(range(100, 100 + len(values)))
    assert [None if pd.isna(v) else v for v in series] == arrow
    chunked = make(name).transform(pa.chunked_array([values[:10], values[10:]]), KEY)
    assert isinstance(chunked, pa.ChunkedArray)
    assert chunked.to_pylist() == arrow


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_an_empty_chunk_gives_an_empty_chunk(name):
    assert len(make(name).transform(pa.array([], type=pa.string()), KEY)) == 0


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_unknown_options_are_refused_by_name(name):
    with pytest.raises(ConfigError, match=rf"transformer {name}: colour: unknown option"):
        get_transformer(name, {**OPTIONS.get(name, {}), "colour": "blue"})


@pytest.mark.parametrize("name", UNIQUE_CAPABLE)
def test_unique_keeps_distinct_inputs_distinct(name):
    values = pa.array(
        [f"value {i}" if name != "ip" else f"10.0.{i // 256}.{i % 256}" for i in range(20_000)]
    )
    out = make(name, unique=True).transform(values, KEY).to_pylist()
    assert len(set(out)) == len(out)


@pytest.mark.parametrize("name", ["fixed", "text", "json"])
def test_transformers_that_cannot_stay_unique_refuse_unique(name):
    with pytest.raises(ConfigError, match="unique"):
        make(name, unique=True)


@pytest.mark.parametrize("name", [n for n in TRANSFORMERS if transformer_class(n).replaces_pii])
def test_the_original_never_survives_in_its_own_row(name):
    values = SAMPLES[name]
    out = make(name).transform(pa.array(values), KEY).to_pylist()
    assert all(o != v for o, v in zip(out, values, strict=True))


@pytest.mark.parametrize(
    ("name", "pool"),
    [
        ("first_name", pools.first_names),
        ("last_name", pools.last_names),
        ("username", pools.usernames),
        ("address", pools.addresses),
        ("phone", lambda: pools.phones()[:5000]),
    ],
)
def test_a_value_that_is_in_the_pool_is_still_replaced(name, pool):
    values = pool()  # every value is a possible pseudonym: some would map onto themselves
    out = make(name).transform(values, KEY)
    assert not any(o == v for o, v in zip(out.to_pylist(), values.to_pylist(), strict=True))


# --- per transformer -------------------------------------------------------------------------------

EMAIL = re.compile(r"^[a-z0-9]+(\.[a-z0-9]+)*@([a-z0-9-]+\.)+[a-z]{2,}$")


def test_emails_are_valid_addresses_on_a_reserved_domain_and_unique_at_200k():
    originals = pa.array([f"customer{i}@shop-{i % 13}.com" for i in range(200_000)])
    out = make("email", unique=True).transform(originals, KEY).to_pylist()
    assert len(set(out)) == 200_000
    assert all(EMAIL.match(e) and e.endswith("@example.com") for e in out)


def test_email_domain_option_must_be_reserved():
    out = make("email", domain="Mail.Example.ORG").transform(pa.array(["a@b.com"]), KEY)
    assert out[0].as_py().endswith("@mail.example.org")
    assert make("email", domain="shop.test").transform(pa.array(["a@b.com"]), KEY)[0].as_py()
    with pytest.raises(ConfigError, match=r"domain 'corp\.com' is not reserved"):
        make("email", domain="corp.com")
    with pytest.raises(ConfigError, match="not reserved"):
        make("email", domain="example.com.evil.io")


def test_ips_land_in_the_documentation_networks():
    v4_nets = [
        ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
    ]
    v6_net = ipaddress.ip_network("2001:db8::/32")
    values = [f"172.16.{i // 200}.{i % 200}" for i in range(2000)] + [
        "10.0.0.0/8",
        "::1",
        "2a00:1450::5/64",
    ]
    for unique in (False, True):
        out = make("ip", unique=unique).transform(pa.array(values), KEY).to_pylist()
        for original, new in zip(values, out, strict=True):
            addr = ipaddress.ip_address(new)
            if unique or ":" in original:
                assert addr in v6_net, new
            else:
                assert any(addr in n for n in v4_nets), new
                assert new.rsplit(".", 1)[1] not in ("0", "255")
    assert len(set(make("ip").transform(pa.array(values[:2000]), KEY).to_pylist())) > 600


def test_phones_are_in_the_fictional_555_01xx_range():
    out = make("phone").transform(pa.array(PEOPLE), KEY).to_pylist()
    assert all(re.fullmatch(r"\+1-[2-9]\d\d-555-01\d\d", p) for p in out)
    unique = make("phone", unique=True).transform(pa.array(PEOPLE[:3]), KEY).to_pylist()
    assert all(re.fullmatch(r"\+1-[2-9]\d\d-555-01\d\d;ext=\d{20}", p) for p in unique)


def test_names_are_first_and_last_from_the_pools():
    first, last = set(pools.first_names().to_pylist()), set(pools.last_names().to_pylist())
    for full in make("name").transform(pa.array(PEOPLE), KEY).to_pylist():
        f, l_ = full.split(" ")
        assert f in first and l_ in last


def test_json_output_parses_and_holds_no_planted_pii():
    docs = [
        '{"email": "ann@corp.com", "profile": {"phone": "+1 415 555 2671", "theme": "dark"}, "tags": ["vip"]}',
        '{"note": "reach me at bob@corp.com or 415-555-2671", "password": "hunter2", "n": 3}',
        '["carol@corp.com", {"token": "abc"}]',
        "null",
        None,
    ]
    out = make("json").transform(pa.array(docs), KEY).to_pylist()
    assert out[4] is None
    parsed = [json.loads(o) for o in out[:4]]
    text = json.dumps(parsed)
    for planted in ("ann@corp.com", "415", "bob@corp.com", "hunter2", "carol@corp.com", "abc"):
        assert planted not in text
    assert parsed[0]["profile"]["theme"] == "dark" and parsed[0]["tags"] == ["vip"]
    assert parsed[1]["n"] == 3 and parsed[3] is None


def test_json_refuses_invalid_json_without_showing_it():
    values = pa.array(['{"a": 1}', "{not json: ann@corp.com"])
    with pytest.raises(SanitizeError, match=r"json: row 1 is not valid JSON") as info:
        make("json").transform(values, KEY)
    assert "ann@corp.com" not in str(info.value)
    assert make("json", on_invalid="null").transform(values, KEY).to_pylist()[1] is None
    scrubbed = make("json", on_invalid="scrub").transform(values, KEY).to_pylist()[1]
    assert "ann@corp.com" not in json.loads(scrubbed)


def test_text_scrubs_pii_and_keeps_the_rest():
    notes = ["Customer ann@corp.com called from 415-555-2671 about order 1234", "all good"]
    out = make("text").transform(pa.array(notes), KEY).to_pylist()
    assert "ann@corp.com" not in out[0] and "415-555-2671" not in out[0]
    assert "order 1234" in out[0] and out[1] == "all good"


def test_hash_length_alphabet_and_unique_bits():
    values = pa.array(["a", "b", None])
    out = make("hash", length=32).transform(values, KEY).to_pylist()
    assert all(re.fullmatch(r"[0-9a-f]{32}", h) for h in out[:2]) and out[2] is None
    b32 = make("hash", length=20, hex=False).transform(values, KEY).to_pylist()
    assert all(re.fullmatch(r"[0-9a-z]{20}", h) for h in b32[:2])
    with pytest.raises(ConfigError, match="unique needs at least 64 bits"):
        make("hash", length=8, unique=True)
    with pytest.raises(ConfigError, match="length"):
        make("hash", length=64)


def test_numbers_hash_like_their_text_so_keys_match_across_tables():
    as_int = make("hash").transform(pa.array([42, 7, None]), KEY).to_pylist()
    as_text = make("hash").transform(pa.array(["42", "7", None]), KEY).to_pylist()
    assert as_int == as_text


def test_fixed_writes_its_value():
    assert make("fixed").transform(pa.array(["x", None]), KEY).to_pylist() == ["redacted", None]
    with pytest.raises(ConfigError, match="value: Field required"):
        get_transformer("fixed", {})


def test_an_empty_key_is_refused():
    with pytest.raises(SanitizeError, match="pseudonym key is empty"):
        make("email").transform(pa.array(["a@b.com"]), b"")


def test_the_registry_refuses_duplicate_names_and_lists_choices():
    class Another(Transformer):
        name = "email"

        def transform(self, values, key):
            return values

    with pytest.raises(ValueError, match="'email' is already registered"):
        register(Another)
    with pytest.raises(ConfigError, match=r"unknown transformer 'emial': choose one of .*email"):
        get_transformer("emial", {})


def test_a_non_column_is_refused():
    with pytest.raises(TypeError, match="pyarrow Array or a pandas Series, not list"):
        make("email").transform(["a@b.com"], KEY)


def test_pseudonyms_are_the_same_in_another_process():
    import subprocess
    import sys

    code = (
        "import pyarrow as pa; from ladder.sanitize.registry import get_transformer; "
        "print(get_transformer('email', {}).transform(pa.array(['ann@corp.com']), b'k' * 16)[0])"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = make("email").transform(pa.array(["ann@corp.com"]), b"k" * 16)[0].as_py()
    assert other.stdout.strip() == here


def test_drawn_pools_are_cached_on_disk_and_a_bad_cache_file_is_drawn_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LADDER_CACHE_DIR", str(tmp_path))
    drawn = pools._draw(99, 50, lambda f: f.first_name())
    (cached,) = (tmp_path / "pools").glob("pool-*-99-50-*.arrow")
    assert pools._draw(99, 50, lambda f: "never called") == drawn  # read back, not drawn
    cached.write_bytes(b"not an arrow file")
    assert pools._draw(99, 50, lambda f: f.first_name()) == drawn

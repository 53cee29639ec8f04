"""Policies: parsing with file:line, the fail-closed check, key resolution, draft suggestions."""

from __future__ import annotations

from pathlib import Path

import pytest

from ladder.connectors.pg_catalog import Column
from ladder.errors import ConfigError, PolicyError, SecretError
from ladder.sanitize.policy import ColumnRule, check_policy, load_policy, raise_for_errors
from ladder.sanitize.suggest import guess_rule, render_policy

POLICIES = Path(__file__).parent.parent / "fixtures" / "policies"
KEY_VAR = "LADDER_TEST_PSEUDONYM_KEY"


def col(name, type_="text", *, nullable=True, unique=False, pk=False, category=None):
    category = category if category is not None else {"text": "S", "inet": "I"}.get(type_, "N")
    if type_ in ("jsonb", "json"):
        category = "U"
    return Column(name, type_, nullable, unique or pk, pk, category)


SHOP = {
    "public.users": [
        col("id", "bigint", nullable=False, pk=True),
        col("email", unique=True),
        col("name"),
        col("phone"),
        col("last_sign_in_ip", "inet"),
        col("preferences", "jsonb"),
        col("notes"),
        col("api_token", unique=True),
    ],
    "public.orders": [
        col("id", "bigint", nullable=False, pk=True),
        col("user_id", "bigint"),
        col("total_cents", "integer"),
        col("shipping_address"),
    ],
}


def codes(findings):
    return [(f.severity, f.code, f.table, f.column) for f in findings]


def test_a_complete_policy_passes():
    policy = load_policy(POLICIES / "shop.yaml")
    assert check_policy(policy, SHOP) == []
    rule = policy.rule("users", "api_token")
    assert rule == ColumnRule(transformer="hash", options={"length": 32})
    assert policy.rule("public.orders", "shipping_address").transformer == "address"


def test_unknown_transformers_are_reported_with_file_and_line():
    with pytest.raises(ConfigError) as info:
        load_policy(POLICIES / "unknown_transformer.yaml")
    path = POLICIES / "unknown_transformer.yaml"
    assert info.value.findings == [
        f"{path}:5: tables.users.email: unknown transformer 'emial': choose one of "
        "address, email, first_name, fixed, hash, ip, json, keep, last_name, name, null, phone, "
        "text, username",
        f"{path}:6: tables.users.phone.transformer: unknown transformer 'fone': choose one of "
        "address, email, first_name, fixed, hash, ip, json, keep, last_name, name, null, phone, "
        "text, username",
    ]


def test_unknown_and_invalid_options_are_reported_with_file_and_line():
    path = POLICIES / "unknown_option.yaml"
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    found = info.value.findings
    assert f"{path}:5: tables.users.email.domain: domain 'corp.com' is not reserved" in found[0]
    assert any(
        f.startswith(
            f"{path}:6: tables.users.api_token.valeu: unknown option for transformer fixed"
        )
        for f in found
    )
    assert any(f.startswith(f"{path}:6: tables.users.api_token.value: required") for f in found)


def test_a_table_named_twice_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        f"key: {{env: {KEY_VAR}}}\ntables:\n  users: {{id: keep}}\n  public.users: {{id: keep}}\n"
    )
    with pytest.raises(ConfigError, match=r"'users' and 'public\.users' name the same table"):
        load_policy(path)


def test_a_secret_in_the_key_field_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("key: s3cr3t-value\ntables: {}\n")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert f"{path}:1: key:" in str(info.value)


def test_every_unlisted_column_is_an_error():
    policy = load_policy(POLICIES / "shop.yaml")
    catalog = {
        **SHOP,
        "public.users": [*SHOP["public.users"], col("ssn"), col("birthday", "date", category="D")],
    }
    findings = check_policy(policy, catalog)
    assert codes(findings) == [
        ("error", "missing-column", "public.users", "ssn"),
        ("error", "missing-column", "public.users", "birthday"),
    ]
    assert findings[0].message == "public.users.ssn: no policy entry"
    assert findings[0].location == f"{POLICIES / 'shop.yaml'}:4"
    with pytest.raises(PolicyError) as info:
        raise_for_errors(findings)
    assert "public.users.ssn: no policy entry" in str(info.value)
    assert "public.users.birthday: no policy entry" in str(info.value)


def test_a_renamed_column_is_both_unknown_and_missing():
    policy = load_policy(POLICIES / "renamed_column.yaml")
    findings = check_policy(policy, SHOP)
    assert codes(findings) == [
        ("error", "missing-column", "public.users", "email"),
        ("error", "unknown-column", "public.users", "e_mail"),
    ]
    assert findings[1].location == f"{POLICIES / 'renamed_column.yaml'}:6"
    assert "renamed or dropped" in findings[1].message


def test_a_new_table_lists_all_its_columns_and_a_vanished_table_is_an_error():
    policy = load_policy(POLICIES / "shop.yaml")
    catalog = {k: v for k, v in SHOP.items() if k != "public.orders"}
    catalog["public.coupons"] = [col("id", "bigint", pk=True), col("code")]
    findings = check_policy(policy, catalog)
    assert codes(findings) == [
        ("error", "unknown-table", "public.orders", None),
        ("error", "missing-table", "public.coupons", None),
    ]
    assert (
        findings[1].message == "public.coupons: no policy entry for the table (columns: id, code)"
    )


def test_only_the_copied_tables_are_checked():
    policy = load_policy(POLICIES / "shop.yaml")
    catalog = {**SHOP, "public.coupons": [col("id", "bigint", pk=True)]}
    assert check_policy(policy, catalog, tables=["users", "public.orders"]) == []
    assert codes(check_policy(policy, catalog, tables=["ghosts"])) == [
        ("error", "unknown-table", "public.ghosts", None)
    ]


def write_policy(tmp_path, users_rules: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(f"key: {{env: {KEY_VAR}}}\ntables:\n  users:\n{users_rules}")
    return path


def test_mistakes_that_break_the_load_or_leak_are_reported(tmp_path):
    path = write_policy(
        tmp_path,
        "    id: null\n    email: keep\n    name: keep\n    phone: {transformer: fixed, value: x}\n"
        "    last_sign_in_ip: ip\n    preferences: email\n    notes: keep\n    api_token: text\n",
    )
    users = [*SHOP["public.users"]]
    users[3] = col("phone", unique=True)
    findings = check_policy(load_policy(path), {"public.users": users})
    assert codes(findings) == [
        ("error", "null-not-null", "public.users", "id"),
        ("warning", "keep-pii", "public.users", "email"),
        ("warning", "keep-pii", "public.users", "name"),
        ("error", "unique-broken", "public.users", "phone"),
        ("error", "type-mismatch", "public.users", "preferences"),
        ("error", "unique-broken", "public.users", "api_token"),
    ]
    assert findings[4].message == "public.users.preferences: email writes text, the column is jsonb"
    with pytest.raises(PolicyError):
        raise_for_errors([f for f in findings if f.severity == "warning"], strict=True)
    raise_for_errors([f for f in findings if f.severity == "warning"])


def test_the_key_comes_from_the_environment_and_is_never_shown(monkeypatch):
    policy = load_policy(POLICIES / "shop.yaml")
    monkeypatch.delenv(KEY_VAR, raising=False)
    with pytest.raises(SecretError, match=f"environment variable {KEY_VAR} is not set"):
        policy.key_bytes()
    monkeypatch.setenv(KEY_VAR, "short-secret")
    with pytest.raises(SecretError) as info:
        policy.key_bytes()
    assert "fewer than 16 characters" in str(info.value) and "short-secret" not in str(info.value)
    monkeypatch.setenv(KEY_VAR, "a-long-enough-random-key")
    assert policy.key_bytes() == b"a-long-enough-random-key"


def test_a_rule_builds_its_transformer_and_unique_is_forced():
    rule = ColumnRule.model_validate({"transformer": "email", "domain": "example.org"})
    assert rule.build().options.domain == "example.org"
    assert rule.build(unique=True).options.unique is True
    assert ColumnRule.model_validate("keep").build().name == "keep"
    # YAML reads `phone: null` as nothing: it means the null transformer
    assert ColumnRule.model_validate(None).transformer == "null"
    assert ColumnRule.model_validate({"transformer": None}).transformer == "null"


@pytest.mark.parametrize(
    ("table", "column", "samples", "expected"),
    [
        ("public.users", col("id", "bigint", pk=True), [], "keep"),
        ("public.orders", col("user_id", "bigint"), [], "keep"),
        ("public.users", col("contact", "text"), ["a@b.com", "c@d.org"], "email"),
        ("public.users", col("email_address"), [], "email"),
        ("public.users", col("mobile"), [], "phone"),
        ("public.users", col("current_sign_in_ip", "inet"), [], "ip"),
        ("public.users", col("settings", "jsonb"), [], "json"),
        ("public.users", col("name"), [], "name"),
        ("public.products", col("name"), ["Widget"], "keep"),
        ("public.users", col("encrypted_password"), [], "hash"),
        ("public.tickets", col("remarks"), ["mail me at x@y.com", "fine"], "text"),
        ("public.tickets", col("slug", unique=True), ["ping x@y.com"], "hash"),
        ("public.orders", col("status"), ["paid", "shipped"], "keep"),
        ("public.orders", col("status"), [], "text"),
        (
            "public.orders",
            col("created_at", "timestamp(6) without time zone", category="D"),
            [],
            "keep",
        ),
        ("public.users", col("aliases", "text[]", category="A"), [], "null"),
    ],
)
def test_suggestions_guess_from_names_types_and_samples(table, column, samples, expected):
    rule, reason = guess_rule(table, column, samples)
    assert rule == expected
    for value in samples:
        assert value not in reason


def test_a_rendered_draft_is_a_valid_policy(tmp_path):
    text = render_policy(
        {
            "public.users": [("id", "keep", "primary key"), ("on", "email", "named like email")],
            "audit.events": [("payload", {"transformer": "fixed", "value": "x"}, "REVIEW")],
        },
        header=["draft"],
    )
    assert text.startswith("# draft\nkey: {env: LADDER_PSEUDONYM_KEY}\ntables:\n  users:\n")
    assert '    "on": email  # named like email\n' in text
    path = tmp_path / "draft.yaml"
    path.write_text(text)
    policy = load_policy(path)
    assert policy.rule("users", "on").transformer == "email"
    assert policy.rule("audit.events", "payload").options == {"value": "x"}


@pytest.mark.parametrize(
    ("column", "samples", "expected"),
    [
        # tax and national ids: by name, and by shape where the name says nothing
        (col("tax_id"), ["12-3456789", "98-7654321"], "hash"),
        (col("vat_number"), [], "hash"),
        (col("ssn"), ["123-45-6789"], "hash"),
        (col("national_id", unique=True), [], "hash"),
        (col("passport_number"), [], "hash"),
        (col("drivers_license"), [], "hash"),
        (col("tax_id", "bigint"), [], "null"),  # not a foreign key: a number named like a tax id
        (col("reference"), ["123-45-6789", "987-65-4321", "555-12-3456"], "hash"),
        (col("reference"), ["12-3456789", "98-7654321"], "hash"),
        # IBANs and bank accounts
        (col("iban"), [], "hash"),
        (col("bank_account_number"), [], "hash"),
        (col("payout_to"), ["DE89370400440532013000", "GB29 NWBK 6016 1331 9268 19"], "hash"),
        # URLs and postal codes: dropped where allowed, else hashed
        (col("website"), [], "null"),
        (col("avatar_url", nullable=False), [], "hash"),
        (col("source"), ["https://linkedin.com/in/ann", "http://ann.example/me"], "null"),
        (col("zip"), ["12345"], "null"),
        (col("postal_code", nullable=False), ["SW1A 1AA"], "hash"),
        # secrets by name
        (col("password_digest"), [], "hash"),
        (col("session_token"), [], "hash"),
        (col("api_key"), [], "hash"),
        (col("confirmation_token", unique=True), [], "hash"),
        # still phones and keeps
        (col("contact"), ["555-867-5309", "(212) 555-0100"], "phone"),
        (col("status"), ["paid", "shipped"], "keep"),
    ],
)
def test_suggestions_know_ids_banks_urls_postal_codes_and_secrets(column, samples, expected):
    rule, reason = guess_rule("public.customers", column, samples)
    assert rule == expected, reason
    assert "phone" not in reason or expected == "phone"
    for value in samples:
        assert value not in reason

"""Secrets stay out of messages (ladder.secrets), and errors say what to fix (incident, YAML, CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ladder.errors import ConfigError, PolicyError, PostgresError
from ladder.secrets import (
    describe_server,
    dsn_params,
    holds_password,
    parse_dsn,
    redact_dsn,
    scrub,
    without_password,
)

PW = "s3cr3t-Pw"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"host=db password={PW} dbname=shop", "host=db password=*** dbname=shop"),
        (f"host=db password = '{PW} x' dbname=shop", "host=db password = *** dbname=shop"),
        (f"postgresql://ladder:{PW}@db:5432/shop", "postgresql://ladder:***@db:5432/shop"),
        (f"could not use redis://:{PW}@cache/0 today", "could not use redis://:***@cache/0 today"),
        (f"PGPASSWORD={PW} psql -h db", "PGPASSWORD=*** psql -h db"),
        (f"postgresql://ladder:{PW} with space@db/shop", "postgresql://ladder:***@db/shop"),
        ("password authentication failed for user", "password authentication failed for user"),
        ("https://example.com/a@b", "https://example.com/a@b"),
    ],
)
def test_scrub_masks_every_password_shape(text: str, masked: str) -> None:
    assert scrub(text) == masked
    assert PW not in scrub(text)


def test_redact_dsn_masks_the_password_and_keeps_the_rest() -> None:
    assert (
        redact_dsn(f"postgresql://u:{PW}@h:5/db") == "user=u password=*** dbname=db host=h port=5"
    )
    assert redact_dsn("host=h dbname=db") == "dbname=db host=h"
    assert PW not in redact_dsn(f"postgresql://u:{PW} x@h/db")  # unparseable: scrubbed instead


def test_without_password_and_describe_server() -> None:
    dsn = f"host=db port=6432 dbname=shop user=u password={PW}"
    assert without_password(dsn) == "user=u dbname=shop host=db port=6432"
    assert describe_server(dsn) == "db:6432/shop"
    assert describe_server("dbname=shop") == "localhost:5432/shop"


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        (f"postgresql://u:{PW}@h/db", True),
        (f"host=h password={PW}", True),
        (f"host=h password='{PW}", True),  # does not parse; the keyword is enough
        ("postgresql://u@h/db", False),
        ("host=h dbname=db", False),
        ("a plain sentence", False),
    ],
)
def test_holds_password(text: str, holds: bool) -> None:
    assert holds_password(text) is holds


@pytest.mark.parametrize(
    ("dsn", "why"),
    [
        ("shop_production", "expected key=value pairs"),
        (f"host=h password=two {PW}", "it does not parse"),
        (f"postgresql://u:two {PW}@h/db", "it does not parse"),
        (f"host=h password='{PW}", "it does not parse"),
    ],
)
def test_a_dsn_that_does_not_parse_is_refused_without_its_text(dsn: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        dsn_params(dsn)
    assert PW not in str(caught.value) and "shop_production" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(ConfigError, match=r"^--source: not a valid PostgreSQL") as config:
        parse_dsn(dsn, "--source")
    assert config.value.__cause__ is None and config.value.__suppress_context__


def test_connect_names_host_port_on_one_line_without_the_password() -> None:
    from ladder.connectors.postgres import connect
    from ladder.procs import free_port

    port = free_port()
    with (
        pytest.raises(PostgresError) as caught,
        connect(f"postgresql://u:{PW}@127.0.0.1:{port}/db"),
    ):
        pass
    message = str(caught.value)
    assert message.startswith(f"cannot connect to 127.0.0.1:{port}/db: ")
    assert "Connection refused" in message and "\n" not in message and PW not in message
    assert caught.value.__cause__ is None


# --- incident ------------------------------------------------------------------------------------


def test_an_incident_time_that_is_not_a_time_says_how_to_write_one() -> None:
    from pydantic import ValidationError

    from ladder.incident import Incident

    with pytest.raises(ValidationError) as caught:
        Incident(id="i", title="t", started_at="yesterday")  # type: ignore[arg-type]
    (err,) = caught.value.errors()
    assert err["loc"] == ("started_at",)
    assert "'yesterday' is not a time: write an ISO 8601 time" in err["msg"]


def test_an_incident_that_ends_before_it_starts_points_at_ended_at() -> None:
    from pydantic import ValidationError

    from ladder.incident import Incident

    with pytest.raises(ValidationError) as caught:
        Incident(
            id="i",
            title="t",
            started_at="2026-05-04T13:00:00Z",  # type: ignore[arg-type]
            ended_at="2026-05-04T12:00:00+00:00",  # type: ignore[arg-type]
        )
    (err,) = caught.value.errors()
    assert err["loc"] == ("ended_at",)
    assert (
        "ended_at (2026-05-04 12:00:00 UTC) is before started_at (2026-05-04 13:00:00 UTC)"
        in (err["msg"])
    )


def test_incident_times_are_utc_and_an_open_incident_is_fine() -> None:
    from ladder.incident import Incident

    inc = Incident(id="i", title="t", started_at="2026-05-04T15:00:00+02:00")  # type: ignore[arg-type]
    assert inc.started_at.isoformat() == "2026-05-04T13:00:00+00:00"
    assert inc.ended_at is None


# --- YAML -----------------------------------------------------------------------------------------


def test_a_schema_error_is_file_line_and_chains_nothing(tmp_path: Path) -> None:
    from ladder.incident import Incident
    from ladder.yamlfile import load_yaml, parse_model

    path = tmp_path / "incident.yaml"
    path.write_text("id: i\ntitle: t\nstarted_at: 2026-05-04T13:00:00Z\nsource: sentri\n")
    with pytest.raises(ConfigError) as caught:
        parse_model(load_yaml(path), Incident)
    (finding,) = caught.value.findings
    assert finding.startswith(f"{path}:4: source: Input should be")
    assert finding.endswith("did you mean 'sentry'?")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_password_dsn_in_yaml_is_refused_without_echoing_it(tmp_path: Path) -> None:
    from ladder.config import load_environment

    path = tmp_path / "env.yaml"
    path.write_text(f'name: prod\nproduction_db:\n  dsn: "host=db password={PW}"\n')
    with pytest.raises(ConfigError) as caught:
        load_environment(path)
    assert str(caught.value) == (
        f"{path}:3: production_db.dsn: a connection string in YAML must not hold a password: "
        "use {env: NAME} or {secret: NAME} for the whole DSN"
    )
    assert caught.value.__cause__ is None


# --- the CLI's one line --------------------------------------------------------------------------


def test_messages_are_one_line_each_and_scrubbed() -> None:
    from cli.errors import messages, one_line

    assert one_line(f"connection failed:\n\tpassword={PW}  refused") == (
        "connection failed: password=*** refused"
    )
    assert messages(ConfigError(["a.yaml:1: x: bad", "a.yaml:2: y: bad"])) == [
        "a.yaml:1: x: bad",
        "a.yaml:2: y: bad",
    ]
    assert messages(PolicyError("p.yaml:3: users.email: no rule")) == [
        "p.yaml:3: users.email: no rule"
    ]
    assert messages(PostgresError(f"failed\nat postgresql://u:{PW}@h/db")) == [
        "failed at postgresql://u:***@h/db"
    ]


def test_an_os_error_is_the_machine_not_a_bug(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.errors import exit_code_for

    assert exit_code_for(PermissionError(13, "Permission denied", "/srv/ladder")) == 1
    assert capsys.readouterr().err == "error: /srv/ladder: Permission denied\n"

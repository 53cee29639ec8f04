"""Rung 5 without services: the blast-radius guard's refusals (each one line, before any I/O),
the runbook file's limits a form cannot widen, the actor's log lines, the flipper config."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from ladder.config import check_runbook, load_runbook
from ladder.connectors.flipper_config import FlipperConfig
from ladder.connectors.log_source import LogSource
from ladder.errors import GuardrailError
from ladder.flags.collect import collect, mark, user_pattern
from ladder.flags.guard import actors_from_params, check_flags
from ladder.incident import Incident
from ladder.rungs import ClimbState
from ladder.rungs.production_flags import ProductionFlagsSettings, run

# A Flipper database nobody listens on: a refusal must come before any connection.
NOWHERE = {"database": {"dsn": "host=127.0.0.1 port=1 dbname=nowhere connect_timeout=1"}}


def _guard(**changes: object) -> object:
    args: dict[str, object] = {"gate": "actors", "features": ["debug_mode"],
                               "actors": ["User;42"], "allowed_features": ["debug_mode"],
                               "max_actors": 1}  # fmt: skip
    return check_flags(**{**args, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("gate", "why"),
    [
        ("boolean", "for everyone"),
        ("groups", "every member of the group"),
        ("percentage_of_actors", "share of all actors"),
        ("percentage_of_time", "share of all requests"),
        ("expression", "whoever matches it"),
        ("anything", "actor gates only"),
    ],
)
def test_wider_gates_are_refused_in_one_line(gate: str, why: str) -> None:
    with pytest.raises(GuardrailError, match=f"refused gate '{gate}'.*{why}") as info:
        _guard(gate=gate)
    assert "\n" not in str(info.value)


def test_more_actors_than_the_runbook_allows_are_refused() -> None:
    with pytest.raises(GuardrailError, match=r"refused 2 actors \(User;1, User;2\).*at most 1"):
        _guard(actors=["User;1", "User;2"])
    assert _guard(actors=["User;1", "User;1"]).actors == ("User;1",)  # the same actor once
    assert _guard(actors=["User;1", "User;2"], max_actors=2).actors == ("User;1", "User;2")


def test_features_off_the_allow_list_are_refused() -> None:
    with pytest.raises(GuardrailError, match=r"refused feature 'checkout_v2'.*allowed_features"):
        _guard(features=["debug_mode", "checkout_v2"])


@pytest.mark.parametrize("actor", ["admins", "true", "25%", "User;", ";42", "User;4 2", "user;42"])
def test_what_is_not_one_actor_id_is_refused(actor: str) -> None:
    with pytest.raises(GuardrailError, match="refused actor"):
        _guard(actors=[actor])


def test_the_actor_comes_from_the_incident_or_the_evidence() -> None:
    assert actors_from_params({"user_ids": [42, 43]}, "User") == ["User;42"]
    assert actors_from_params({"user_id": "7"}, "Account") == ["Account;7"]
    assert actors_from_params({}, "User") == []


def _state(tmp_path: Path, rung: dict[str, object], params: dict[str, object]) -> ClimbState:
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"name": "t", "flipper": NOWHERE}))
    (tmp_path / "rb.yaml").write_text(yaml.safe_dump(
        {"name": "t", "environment": "env.yaml", "rungs": {"production_flags": rung}}))  # fmt: skip
    loaded = load_runbook(tmp_path / "rb.yaml")
    incident = Incident(id="i-1", title="t", started_at=datetime(2026, 1, 1, tzinfo=UTC),
                        params=params)  # type: ignore[arg-type]  # fmt: skip
    return ClimbState(incident, loaded.environment, loaded.path, owner="unit")


def test_a_form_cannot_widen_the_runbook_files_limits(tmp_path: Path) -> None:
    state = _state(tmp_path, {"features": ["debug_mode"]}, {"user_ids": [1]})
    wider = ProductionFlagsSettings(
        features=["verbose_logging"], allowed_features=["debug_mode", "verbose_logging"]
    )
    with pytest.raises(GuardrailError, match="refused feature 'verbose_logging'"):
        run(state, wider)
    more = ProductionFlagsSettings(actors=["User;1", "User;2"], max_actors=5)
    with pytest.raises(GuardrailError, match="at most 1"):
        run(state, more)


def test_no_actor_is_a_refusal_not_a_guess(tmp_path: Path) -> None:
    state = _state(tmp_path, {}, {})
    with pytest.raises(GuardrailError, match="no actor"):
        run(state, ProductionFlagsSettings())


def test_runbook_check_names_the_refusal(tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"name": "t", "flipper": NOWHERE}))
    (tmp_path / "rb.yaml").write_text(yaml.safe_dump({"name": "t", "environment": "env.yaml",
        "rungs": {"production_flags": {"actors": ["User;1", "User;2"]}}}))  # fmt: skip
    errors, _ = check_runbook(tmp_path / "rb.yaml")
    assert len(errors) == 1 and "rungs.production_flags: refused 2 actors" in errors[0]


def test_flipper_config_takes_exactly_one_adapter() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        FlipperConfig.model_validate({})
    with pytest.raises(ValueError, match="exactly one"):
        FlipperConfig.model_validate({**NOWHERE, "api": {"url": "http://x"}})
    with pytest.raises(ValueError, match="secret"):  # a header value is never written in YAML
        FlipperConfig.model_validate({"api": {"url": "http://x", "auth": "Bearer abc"}})
    with pytest.raises(ValueError, match="sandbox's own note"):
        FlipperConfig.model_validate({**NOWHERE, "unavailable": "x"})


def test_the_users_lines_in_the_shapes_rails_logs_name_them() -> None:
    hit = user_pattern("42").search
    for line in ('[user:42] Started GET', "user_id=42", '{"user_id": "42"}', "Current user: 42",
                 "flipper User;42 on", "user_id: 42"):  # fmt: skip
        assert hit(line), line
    for line in ("user_id=420", "user_id=142", "order 42", "user_id=42-b"):
        assert not hit(line), line
    both = user_pattern("42", "7").search
    assert both("user_id=7") and both("[user:42]") and not both("user_id=77")


def test_collect_reads_what_was_appended_scrubbed(tmp_path: Path) -> None:
    log = tmp_path / "production.log"
    log.write_text("I, user_id=42 before the flag\n")
    marks = mark([LogSource(path=log), LogSource(path=tmp_path / "old.log.gz")])
    clock = iter(range(100))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        with log.open("a") as f:
            f.write("D, [debug_mode] user_id=42 card 4111 1111 1111 1111\nD, user_id=420 no\n")

    lines = collect(marks, ["42"], 3, sleep=sleep, clock=lambda: float(next(clock)))

    assert list(marks) == [log]  # compressed history is not read
    assert lines == ["D, [debug_mode] user_id=42 card [CARD]"] * len(sleeps)
    assert len(sleeps) >= 1


def test_the_form_shows_the_incidents_user_as_the_actor(tmp_path: Path) -> None:
    from ladder.rungs.production_flags import RUNG

    state = _state(tmp_path, {}, {"user_ids": [77, 78]})
    assert RUNG.prefill is not None
    assert RUNG.prefill(state, ProductionFlagsSettings()).actors == ["User;77"]
    chosen = ProductionFlagsSettings(actors=["User;5"])
    assert RUNG.prefill(state, chosen).actors == ["User;5"]  # the runbook's choice stays


def test_the_sandbox_says_why_no_app_reads_its_flags() -> None:
    from ladder.connectors.flipper_config import sandbox_flipper

    dsn = "host=127.0.0.1 dbname=shop_production"
    assert sandbox_flipper(dsn, {"url": "http://x"}).unavailable is None
    assert "not running" in (sandbox_flipper(dsn, None).unavailable or "")
    missing = {"flipper_unavailable": "this machine lacks Debian package ruby-flipper"}
    assert sandbox_flipper(dsn, missing).unavailable == missing["flipper_unavailable"]
    assert sandbox_flipper(dsn, {"unavailable": "lacks ruby"}).unavailable == "lacks ruby"

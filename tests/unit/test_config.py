"""Runbook and environment loading: every broken file gives one clear line per problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from cli.entrypoints import runbook_path
from ladder.config import check_runbook, load_runbook
from ladder.errors import ConfigError

SANDBOX_ENV = "name: sandbox\nsandbox: true\n"


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def runbook(tmp: Path, body: str, env: str = SANDBOX_ENV) -> Path:
    write(tmp, "env.yaml", env)
    return write(
        tmp, "rb.yaml", "name: rb\nenvironment: env.yaml\n" + textwrap.dedent(body).lstrip("\n")
    )


def findings(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_runbook(path)
    return info.value.findings


def test_shipped_runbooks_load(monkeypatch: pytest.MonkeyPatch) -> None:
    demo = load_runbook(runbook_path("demo.yaml"))
    assert demo.environment.sandbox
    assert demo.runbook.rungs.named()[0] == "evidence"
    example = load_runbook(runbook_path("example-production.yaml"))
    assert example.runbook.until == "production_flags"
    assert example.environment.sentry is not None
    # unbuilt rungs are named, not silently accepted
    assert not [w for w in example.warnings if "not built" in w]  # rungs 1-5 are built


def test_unknown_key_and_wrong_type_each_get_file_and_line(tmp_path: Path) -> None:
    path = runbook(
        tmp_path,
        """
        checkpoint_timeout_minutes: soon
        rungs:
          evidence:
            baseline_minutes: 30
            colour: blue
        """,
    )
    lines = findings(path)
    assert f"{path}:3: checkpoint_timeout_minutes: Input should be a valid number" in lines[0]
    assert f"{path}:7: rungs.evidence.colour: unknown key" in lines
    assert len(lines) == 2


def test_unknown_rung_lists_the_rungs(tmp_path: Path) -> None:
    path = runbook(tmp_path, "rungs:\n  evidence: {}\n  tunel: {}\n")
    (line,) = findings(path)
    assert line.startswith(f"{path}:5: rungs.tunel: unknown rung; did you mean 'tunnel'? the rungs are:")


def test_until_must_be_a_named_rung(tmp_path: Path) -> None:
    path = runbook(tmp_path, "until: tunnel\nrungs:\n  evidence: {}\n")
    (line,) = findings(path)
    assert line == f"{path}:3: until: 'tunnel' is not among the runbook's rungs (evidence)"


def test_missing_secret_reference_and_literal_secret(tmp_path: Path) -> None:
    env = """
    name: prod
    production_db:
      dsn: "host=db.internal dbname=shop password=hunter2"
    sentry:
      organization: shop
      project: web
    datadog:
      api_key: abc123
      app_key: {env: DD_APP_KEY}
    """
    path = runbook(tmp_path, "rungs:\n  evidence: {}\n", env=textwrap.dedent(env).lstrip())
    lines = findings(path)
    env_file = tmp_path / "env.yaml"
    text = "\n".join(lines)
    assert (
        f"{env_file}:3: production_db.dsn: a connection string in YAML must not hold a password"
        in text
    )
    assert f"{env_file}:4: sentry.token: required key is missing" in text
    assert f"{env_file}:8: datadog.api_key: must be a secret reference" in text
    assert "hunter2" not in text and "abc123" not in text


def test_a_pseudonym_key_in_environment_yaml_is_refused(tmp_path: Path) -> None:
    key = "pseudonym_key: 0123456789abcdef0123\n"
    path = runbook(tmp_path, "rungs:\n  evidence: {}\n", env=SANDBOX_ENV + key)
    [problem] = findings(path)
    assert "env.yaml:3" in problem and "pseudonym_key" in problem
    assert "secrets never live in YAML" in problem
    assert "0123456789abcdef0123" not in problem


def test_rung_needs_its_part_of_the_environment(tmp_path: Path) -> None:
    path = runbook(tmp_path, "rungs:\n  evidence: {}\n  production_flags: {}\n", env="name: bare\n")
    lines = findings(path)
    assert any("rungs.evidence: the environment 'bare' has no logs" in f for f in lines)
    assert any("rungs.production_flags: the environment 'bare' has no flipper" in f for f in lines)


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "rb.yaml", "name: rb\nrungs:\n  evidence: [\n")
    (line,) = findings(path)
    assert line.startswith(f"{path}:") and "YAML syntax error" in line


def test_missing_environment_file_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path, "rb.yaml", "name: rb\nenvironment: nowhere.yaml\nrungs:\n  evidence: {}\n"
    )
    (line,) = findings(path)
    assert line == f"{path}:2: environment: {tmp_path / 'nowhere.yaml'}: file not found"


def test_log_paths_are_relative_to_the_environment_file(tmp_path: Path) -> None:
    env = "name: e\nlogs:\n  - path: logs/production.log\n"
    path = runbook(tmp_path, "rungs:\n  evidence: {}\n", env=env)
    loaded = load_runbook(path)
    assert loaded.environment.logs[0].path == tmp_path / "logs/production.log"


def test_check_cli_exit_codes(tmp_path: Path) -> None:
    cli = CliRunner()
    ok = cli.invoke(app, ["runbook", "check", str(runbook_path("demo.yaml"))])
    assert ok.exit_code == 0, ok.output
    assert "ok" in ok.output
    bad = runbook(tmp_path, "rungs:\n  evidence: {colour: 1}\n")
    res = cli.invoke(app, ["runbook", "check", str(bad)])
    assert res.exit_code == 1
    assert "rungs.evidence.colour: unknown key" in res.output
    strict = cli.invoke(app, ["runbook", "check", "--strict", str(runbook_path("demo.yaml"))])
    assert strict.exit_code == 0, strict.output  # every rung the demo names is built
    example = str(runbook_path("example-production.yaml"))
    strict = cli.invoke(app, ["runbook", "check", "--strict", "--offline", example])
    assert strict.exit_code == 1  # its secrets' variables are not set here: warnings
    errors, warnings = check_runbook(runbook_path("example-production.yaml"))
    assert errors == [] and any("is not set here" in w for w in warnings)

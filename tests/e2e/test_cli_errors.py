"""Bad input ends every ``ladder`` command with one line, ``error: ...``, and exit 1: never a traceback.

Each case runs the CLI as a person does, in a subprocess (``python -m cli``), and checks that
stderr is exactly one line, that the line names the file:line or the option to fix, and that no
``Traceback`` shows anywhere. No database is needed: the connection case uses a port nobody
listens on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.entrypoints import PROJECT_ROOT
from ladder.procs import free_port

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Case:
    """``args`` (``{tmp}`` and ``{port}`` filled in) must fail with a line holding ``says``."""

    args: tuple[str, ...]
    says: str
    env: tuple[tuple[str, str], ...] = ()


GOOD_RUNBOOK = "name: flowtest\nenvironment: env.yaml\nrungs:\n  evidence: {}\n"
FILES = {
    "env.yaml": "name: prod\nlogs:\n  - path: production.log\n",
    "rb.yaml": GOOD_RUNBOOK,
    "syntax.yaml": "name: x\n  bad: [\n",
    "unknown-rung.yaml": "name: flowtest\nenvironment: env.yaml\nrungs:\n  tunel: {}\n",
    "yesterday.yaml": "id: inc-1\ntitle: Checkout 500s\nstarted_at: yesterday\n",
    "reversed.yaml": (
        "id: inc-1\ntitle: Checkout 500s\nstarted_at: 2026-05-04T13:20:00Z\n"
        "ended_at: 2026-05-04T12:00:00Z\n"
    ),
    "policy.yaml": "key: {env: LADDER_PSEUDONYM_KEY}\ntables: {}\n",
    "exists.yaml": "# already here\n",
    "replica-env.yaml": (
        "name: flowtest\nenvironment: env.yaml\nrungs:\n  replica_app:\n"
        "    env: {LOG-LEVEL: debug}\n"
    ),
    "lb-env.yaml": "name: prod\nload_balancer: {kind: nginx, local: true}\n",
    "replica-lb.yaml": "name: flowtest\nenvironment: lb-env.yaml\nrungs:\n  replica_app: {}\n",
}
DEAD = "host=127.0.0.1 port={port} dbname=shop user=ladder"
OTHER = DEAD.replace("shop", "copy")
ALL = ("--policy", "{tmp}/policy.yaml", "--all")
SEED_WITH_BAD_PARAM = (
    "--policy",
    "{tmp}/policy.yaml",
    "--seed",
    "users: id = :id",
    "--param",
    "id",
)

CASES = {
    # the cases the issue lists
    "until-typo": Case(("escalate", "{tmp}/rb.yaml", "--until", "tunel"), "did you mean 'tunnel'"),
    "incident-yesterday": Case(
        ("escalate", "{tmp}/rb.yaml", "--incident", "{tmp}/yesterday.yaml"),
        "yesterday.yaml:3: started_at: 'yesterday' is not a time",
    ),
    "incident-reversed": Case(
        ("escalate", "{tmp}/rb.yaml", "--incident", "{tmp}/reversed.yaml"),
        "reversed.yaml:4: ended_at: ended_at (2026-05-04 12:00:00 UTC) is before started_at",
    ),
    "dsn-without-equals": Case(
        ("replica", "create", "--source", "shop_production", "--target", "dbname=x", *ALL),
        "--source: not a valid PostgreSQL connection string",
    ),
    "missing-runbook": Case(("escalate", "{tmp}/nope.yaml"), "nope.yaml: file not found"),
    # files
    "check-missing": Case(("runbook", "check", "{tmp}/nope.yaml"), "nope.yaml: file not found"),
    "check-directory": Case(("runbook", "check", "{tmp}"), "is a directory"),
    "yaml-syntax": Case(("escalate", "{tmp}/syntax.yaml"), "syntax.yaml:2: YAML syntax error"),
    "unknown-rung": Case(
        ("runbook", "check", "{tmp}/unknown-rung.yaml"),
        "unknown-rung.yaml:4: rungs.tunel: unknown rung",
    ),
    "missing-incident": Case(
        ("escalate", "{tmp}/rb.yaml", "--incident", "{tmp}/nope.json"), "nope.json: file not found"
    ),
    "missing-policy": Case(
        ("policy", "check", "--source", DEAD, "--policy", "{tmp}/nope.yaml"),
        "nope.yaml: file not found",
    ),
    # DSNs and connections
    "policy-dsn-without-equals": Case(
        ("policy", "check", "--source", "shop_production", "--policy", "{tmp}/policy.yaml"),
        "--source: not a valid PostgreSQL connection string",
    ),
    "dsn-from-env": Case(
        ("replica", "create", "--target", "dbname=x", "--policy", "{tmp}/policy.yaml", "--all"),
        "--source (from LADDER_SOURCE_DSN): not a valid",
        env=(("LADDER_SOURCE_DSN", "shop_production"),),
    ),
    "same-source-and-target": Case(
        ("replica", "create", "--source", DEAD, "--target", DEAD, *ALL),
        "the source and the target name the same database (127.0.0.1:{port}/shop)",
    ),
    "connection-refused": Case(
        ("policy", "suggest", "--source", DEAD),
        "cannot connect to 127.0.0.1:{port}/shop: ",
    ),
    "bad-param": Case(
        ("replica", "create", "--source", DEAD, "--target", OTHER, *SEED_WITH_BAD_PARAM),
        "--param 'id': expected NAME=VALUE",
    ),
    "output-exists": Case(
        ("policy", "suggest", "--source", DEAD, "--output", "{tmp}/exists.yaml"),
        "--output {tmp}/exists.yaml exists: pass --force",
    ),
    # the ledger and the sandbox
    "unknown-run": Case(("leases", "revert", "--run", "no-such-run"), "--run no-such-run"),
    "unknown-lease": Case(
        ("leases", "revert", "no-such-lease"), "no lease with id 'no-such-lease'"
    ),
    "ledger-url-port": Case(
        (
            "leases",
            "list",
        ),
        "LADDER_LEDGER_URL is not a ledger URL",
        env=(("LADDER_LEDGER_URL", "postgresql://ladder@127.0.0.1:notaport/ledger"),),
    ),
    "nonexistent-dir": Case(("sandbox", "status", "--dir", "{tmp}/nowhere"), "no sandbox in"),
    "uncreatable-dir": Case(("sandbox", "up", "--dir", "{tmp}/exists.yaml/sandbox"), "exists.yaml"),
    # usage errors: one line too, naming the option
    "unknown-option": Case(("escalate", "{tmp}/rb.yaml", "--untl", "x"), "--untl"),
    "out-of-range": Case(("sandbox", "up", "--users", "3"), "'--users'"),
    "bad-choice": Case(("leases", "list", "--state", "gone"), "'--state'"),
    "no-selector": Case(
        (
            "leases",
            "revert",
        ),
        "give exactly one of ID, --expired or --run",
    ),
    "unknown-command": Case(("escalat",), "no such command 'escalat'"),
    # rung 6
    "replica-env-name": Case(
        ("escalate", "{tmp}/replica-env.yaml"),
        "replica-env.yaml:5: rungs.replica_app.env: 'LOG-LEVEL' is not an environment variable",
    ),
    "replica-lb-incomplete": Case(
        ("runbook", "check", "{tmp}/replica-lb.yaml"),
        "load_balancer (nginx) needs map_include, pid_file, url, replica for rung 6",
    ),
    # ladder serve: a typo in --runbook fails before any server starts
    "serve-missing-runbook": Case(
        ("serve", "--port", "{port}", "--runbook", "{tmp}/nope.yaml"), "nope.yaml: file not found"
    ),
    # ladder tunnel open
    "tunnel-missing-runbook": Case(
        ("tunnel", "open", "--runbook", "{tmp}/nope.yaml"), "nope.yaml: file not found"
    ),
    "tunnel-no-ssh": Case(
        ("tunnel", "open", "--runbook", "{tmp}/rb.yaml"),
        "env.yaml: the environment 'prod' has no ssh section",
    ),
    "tunnel-bad-ttl": Case(
        ("tunnel", "open", "--runbook", "{tmp}/rb.yaml", "--ttl", "soon"),
        "--ttl 'soon': expected a duration above zero and at most 7 days, like 30m",
    ),
    "tunnel-zero-ttl": Case(
        ("tunnel", "open", "--runbook", "{tmp}/rb.yaml", "--ttl", "0m"), "--ttl '0m'"
    ),
    "tunnel-privileged-port": Case(
        ("tunnel", "open", "--runbook", "{tmp}/rb.yaml", "--port", "80"), "'--port'"
    ),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cli-errors")
    for name, text in FILES.items():
        (tmp / name).write_text(text)
    return tmp


@pytest.fixture(scope="module")
def ladder(workdir: Path) -> Callable[[Case], subprocess.CompletedProcess[str]]:
    port = str(free_port())
    base = {
        **os.environ,
        "LADDER_HOME": str(workdir / "home"),
        "LADDER_LEDGER_URL": f"sqlite:///{workdir / 'ledger.db'}",
        "LADDER_SANDBOX_DIR": str(workdir / "sandbox"),
        "PREFECT_HOME": str(workdir / "prefect"),
    }
    for name in ("LADDER_SOURCE_DSN", "LADDER_TARGET_DSN", "LADDER_DEBUG"):
        base.pop(name, None)

    def run(case: Case) -> subprocess.CompletedProcess[str]:
        fill = {"tmp": str(workdir), "port": port}
        args = [a.format(**fill) for a in case.args]
        env = {**base, **{k: v.format(**fill) for k, v in case.env}}
        proc = subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        proc.says = case.says.format(**fill)  # type: ignore[attr-defined]
        return proc

    return run


@pytest.fixture(scope="module")
def results(
    ladder: Callable[[Case], subprocess.CompletedProcess[str]],
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case's run, three at a time: each is mostly a Python start-up."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(CASES, pool.map(ladder, CASES.values()), strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_ends_in_one_error_line(
    name: str, results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    proc = results[name]
    said = proc.stdout + proc.stderr
    assert "Traceback" not in said, said
    assert proc.returncode == 1, said
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, said
    assert lines[0].startswith("error: "), said
    assert proc.says in lines[0], said  # type: ignore[attr-defined]
    assert "bug in Ladder" not in lines[0]


def test_an_unexpected_exception_is_one_line_that_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cli.errors import exit_code_for

    assert exit_code_for(KeyError("postgresql://u:hunter2@db/shop")) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: unexpected KeyError") and "LADDER_DEBUG=1" in line
    assert "hunter2" not in line and "\n" not in line


def test_ladder_debug_lets_a_bug_through_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli.errors import exit_code_for

    monkeypatch.setenv("LADDER_DEBUG", "1")
    with pytest.raises(KeyError):
        exit_code_for(KeyError("x"))


def test_no_arguments_prints_the_help_and_exits_0() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cli"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "Usage: ladder [OPTIONS] COMMAND" in proc.stdout and proc.stderr == ""

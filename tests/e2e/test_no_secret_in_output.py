"""A DSN's password never shows in what a ``ladder`` command prints, whichever loader reads it.

One random password goes into DSNs every way a person can give one: in a runbook's or an
environment's YAML (refused), in an environment variable a runbook names (the rung fails at a
dead port), and on the command line (``--source``/``--target``, well formed or not, reachable or
not). Each command runs as a subprocess; its stdout, its stderr and the files it wrote are
searched for the password.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli.entrypoints import PROJECT_ROOT, runbook_path
from ladder.procs import free_port

pytestmark = pytest.mark.e2e

PASSWORD = "pw" + secrets.token_hex(8)
PORT = free_port()
URL = f"postgresql://ladder:{PASSWORD}@127.0.0.1:{PORT}/shop"
KEYWORDS = f"host=127.0.0.1 port={PORT} dbname=shop user=ladder password={PASSWORD}"
BROKEN = f"host=127.0.0.1 dbname=shop password=two {PASSWORD}"  # does not parse
POLICY = str(runbook_path("policies/shop.yaml"))
OTHER = KEYWORDS.replace("dbname=shop", "dbname=copy")
ALL = ("--policy", POLICY, "--all")
INCIDENT = (
    "id: inc-1\ntitle: Checkout 500s\nstarted_at: 2026-05-04T13:20:00Z\nparams: {user_ids: [1]}\n"
)


def _runbook(env: str, target: str = "{env: SHOP_DSN}") -> str:
    """A runbook on environment file ``env-<env>.yaml`` whose replica target is ``target``."""
    return (
        f"name: secrets\nenvironment: env-{env}.yaml\nrungs:\n  local_replica:\n"
        f"    policy: {POLICY}\n    seeds: ['users: id = ANY(:user_ids)']\n"
        f"    target: {target}\n"
    )


FILES = {
    "env-ref.yaml": "name: prod\nproduction_db:\n  dsn: {env: SHOP_DSN}\n",
    "env-url.yaml": f"name: prod\nproduction_db:\n  dsn: {URL}\n",
    "env-keywords.yaml": f'name: prod\nproduction_db:\n  dsn: "{KEYWORDS}"\n',
    "env-broken.yaml": f'name: prod\nproduction_db:\n  dsn: "{BROKEN}"\n',
    "rb-ref.yaml": _runbook("ref"),
    "rb-url.yaml": _runbook("url"),
    "rb-keywords.yaml": _runbook("keywords"),
    "rb-broken.yaml": _runbook("broken"),
    "rb-target.yaml": _runbook("ref", target=f'"{KEYWORDS}"'),
    "incident.yaml": INCIDENT,
}

#: Commands that fail without a Prefect flow run (a few seconds each).
QUICK = {
    "check-url-in-env": ("runbook", "check", "{tmp}/rb-url.yaml"),
    "check-keywords-in-env": ("runbook", "check", "{tmp}/rb-keywords.yaml"),
    "check-broken-in-env": ("runbook", "check", "{tmp}/rb-broken.yaml"),
    "check-password-in-runbook": ("runbook", "check", "--json", "{tmp}/rb-target.yaml"),
    "escalate-password-in-yaml": ("escalate", "{tmp}/rb-keywords.yaml"),
    "escalate-password-in-runbook": ("escalate", "{tmp}/rb-target.yaml"),
    "replica-dead-source": ("replica", "create", "--source", URL, "--target", OTHER, *ALL),
    "replica-broken-source": ("replica", "create", "--source", BROKEN, "--target", URL, *ALL),
    "replica-same": ("replica", "create", "--source", URL, "--target", KEYWORDS, *ALL),
    "policy-check-dead": ("policy", "check", "--source", KEYWORDS, "--policy", POLICY),
    "policy-check-broken": ("policy", "check", "--source", BROKEN, "--policy", POLICY),
    "policy-suggest-dead": ("policy", "suggest", "--source", URL),
    "ledger-dead": ("leases", "list"),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("secrets")
    for name, text in FILES.items():
        (tmp / name).write_text(text)
    return tmp


@pytest.fixture(scope="module")
def env(workdir: Path) -> dict[str, str]:
    base = {
        **os.environ,
        "LADDER_HOME": str(workdir / "home"),
        "LADDER_LEDGER_URL": f"sqlite:///{workdir / 'ledger.db'}",
        "LADDER_SANDBOX_DIR": str(workdir / "sandbox"),
        "LADDER_PSEUDONYM_KEY": secrets.token_hex(16),
        "PREFECT_HOME": str(workdir / "prefect"),
        "SHOP_DSN": URL,
    }
    for name in ("LADDER_SOURCE_DSN", "LADDER_TARGET_DSN", "LADDER_DEBUG"):
        base.pop(name, None)
    return base


def _run(env: dict[str, str], workdir: Path, args: tuple[str, ...]) -> str:
    extra = {"LADDER_LEDGER_URL": URL} if args == ("leases", "list") else {}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *(a.format(tmp=workdir) for a in args)],
        env={**env, **extra},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # each of them fails, on purpose
    return proc.stdout + proc.stderr


def _written(workdir: Path) -> str:
    """Every text file the commands wrote: reports, the ledger."""
    home = workdir / "home"
    files = [p for p in home.rglob("*") if p.is_file()] if home.exists() else []
    return "".join(p.read_bytes().decode(errors="replace") for p in files)


@pytest.fixture(scope="module")
def quick(env: dict[str, str], workdir: Path) -> dict[str, str]:
    def one(args: tuple[str, ...]) -> str:
        return _run(env, workdir, args)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(QUICK, pool.map(one, QUICK.values()), strict=True))


@pytest.mark.parametrize("name", list(QUICK))
def test_the_password_is_not_in_what_a_failing_command_prints(
    name: str, quick: dict[str, str]
) -> None:
    said = quick[name]
    assert said.strip(), "the command said nothing at all"
    assert PASSWORD not in said, said
    assert "Traceback" not in said, said


def test_escalate_at_a_dead_database_behind_an_env_ref_keeps_the_password_out(
    env: dict[str, str], workdir: Path, prefect_server: str
) -> None:
    said = _run(
        {**env, "PREFECT_API_URL": prefect_server},
        workdir,
        ("escalate", "{tmp}/rb-ref.yaml", "--incident", "{tmp}/incident.yaml"),
    )
    assert f"cannot connect to 127.0.0.1:{PORT}/shop" in said
    assert PASSWORD not in said, said
    assert PASSWORD not in _written(workdir)
    assert "Traceback" not in said, said

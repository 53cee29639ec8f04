"""Ladder's settings: one model reads every LADDER_* variable; state lives in one directory."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from ladder.errors import ConfigError
from ladder.settings import settings

ROOT = Path(__file__).resolve().parents[2]
LADDER = Path(sys.executable).with_name("ladder")
ALL = (
    "HOME",
    "LEDGER_URL",
    "SANDBOX_DIR",
    "CACHE_DIR",
    "CHECKPOINT_POLL_SECONDS",
    "SOURCE_DSN",
    "TARGET_DSN",
)


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LADDER_* or XDG variable set, and HOME in a temporary directory."""
    for name in ALL:
        monkeypatch.delenv(f"LADDER_{name}", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return tmp_path / "user"


def test_defaults_put_state_under_the_users_xdg_state_directory(bare: Path) -> None:
    s = settings()
    home = bare / ".local" / "state" / "ladder"
    assert s.home == home
    assert s.ledger_url.get_secret_value() == f"sqlite:///{home / 'leases.db'}"
    assert s.sandbox_dir == home / "sandbox"
    assert s.reports_dir == home / "reports"
    assert s.cache_dir == bare / ".cache" / "ladder"
    assert s.checkpoint_poll_seconds == 5
    assert s.source_dsn is None and s.target_dsn is None


def test_ladder_home_moves_everything_and_is_made_absolute(
    bare: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LADDER_HOME", "relative/state")
    s = settings()
    assert s.home == tmp_path / "relative" / "state"
    assert s.home.is_absolute()
    assert s.ledger_url.get_secret_value() == f"sqlite:///{s.home / 'leases.db'}"
    assert s.sandbox_dir == s.home / "sandbox"
    assert s.reports_dir == s.home / "reports"


def test_xdg_state_home_is_honoured_unless_relative(
    bare: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert settings().home == tmp_path / "state" / "ladder"
    assert settings().cache_dir == tmp_path / "cache" / "ladder"
    # the XDG spec: a relative path in these variables is invalid and is ignored
    monkeypatch.setenv("XDG_STATE_HOME", "state")
    assert settings().home == bare / ".local" / "state" / "ladder"


def test_each_variable_is_read_and_an_empty_one_means_unset(
    bare: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_LEDGER_URL", "postgresql+psycopg://ladder@db/ladder")
    monkeypatch.setenv("LADDER_SANDBOX_DIR", str(tmp_path / "box"))
    monkeypatch.setenv("LADDER_CACHE_DIR", str(tmp_path / "pools"))
    monkeypatch.setenv("LADDER_CHECKPOINT_POLL_SECONDS", "2")
    monkeypatch.setenv("LADDER_SOURCE_DSN", "host=src password=s3cret")
    monkeypatch.setenv("LADDER_HOME", "")
    s = settings()
    assert s.ledger_url.get_secret_value() == "postgresql+psycopg://ladder@db/ladder"
    assert s.sandbox_dir == tmp_path / "box"
    assert s.cache_dir == tmp_path / "pools"
    assert s.checkpoint_poll_seconds == 2
    assert s.home == bare / ".local" / "state" / "ladder"
    assert "s3cret" not in repr(s)  # DSNs and the ledger URL are secrets
    assert s.dsn("source", None, "--source") == "host=src password=s3cret"
    assert s.dsn("source", "host=given", "--source") == "host=given"
    with pytest.raises(ConfigError, match=r"--target is required \(or set LADDER_TARGET_DSN\)"):
        s.dsn("target", None, "--target")


def test_a_bad_value_is_refused_by_name(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LADDER_CHECKPOINT_POLL_SECONDS", "0")
    with pytest.raises(ValidationError, match="checkpoint_poll_seconds"):
        settings()


def test_the_readers_follow_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ladder import sandbox
    from ladder.leases._store import default_url
    from ladder.sanitize.pools import cache_dir
    from tasks.report import reports_dir

    monkeypatch.delenv("LADDER_LEDGER_URL", raising=False)
    monkeypatch.delenv("LADDER_SANDBOX_DIR", raising=False)
    monkeypatch.setenv("LADDER_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("LADDER_CACHE_DIR", str(tmp_path / "c"))
    assert default_url() == f"sqlite:///{tmp_path / 'h' / 'leases.db'}"
    assert reports_dir() == tmp_path / "h" / "reports"
    assert sandbox.default_dir() == tmp_path / "h" / "sandbox"
    assert cache_dir() == tmp_path / "c"


def test_two_directories_see_one_ledger(
    bare: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug this fixes: `ladder leases list` (or the janitor) started from another directory
    saw an empty ledger, because the default ledger was ./.ladder/leases.db."""
    from ladder.leases import LeaseLedger

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    ledger = LeaseLedger()
    undo = {"server": "host=127.0.0.1 port=1 dbname=postgres", "dbname": "nowhere"}
    lease = ledger.take(
        "postgres_database", "nowhere", owner="me", ttl=timedelta(hours=1), undo=undo
    )
    ledger.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADDER_")}
    seen = []
    for cwd in (tmp_path / "one", tmp_path / "two" / "deeper"):
        cwd.mkdir(parents=True)
        out = subprocess.run(
            [str(LADDER), "leases", "list", "--json"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        seen.append([row["id"] for row in json.loads(out.stdout)])
        assert not (cwd / ".ladder").exists()
    assert seen == [[lease.id], [lease.id]]
    assert (tmp_path / "state" / "ladder" / "leases.db").exists()


# --- nothing else reads LADDER_* or writes os.environ ---------------------------------------------

PACKAGES = ("ladder", "cli", "flows", "tasks")
#: (file, why) pairs allowed to touch os.environ. ladder/settings.py reads every LADDER_* variable;
#: ladder/secrets.py resolves ``{env: NAME}`` references a user named; procs and copy pass the
#: environment on to subprocesses.
ALLOWED_READS = {
    "ladder/settings.py",
    "ladder/secrets.py",
    "ladder/procs.py",
    "ladder/replica/copy.py",
}
#: Files allowed to assign to os.environ. cli/serving.py still exports PREFECT_API_URL for the
#: deployments it serves: `ladder serve` is being rewritten on its own branch.
ALLOWED_WRITES = {"cli/serving.py"}


def _environ_uses(tree: ast.AST) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """``(reads, writes)`` of os.environ / os.getenv / os.putenv in one module."""

    def is_environ(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ) or (isinstance(node, ast.Name) and node.id == "environ")

    reads: list[tuple[int, str]] = []
    writes: list[tuple[int, str]] = []
    mutators = {"setdefault", "update", "pop", "popitem", "clear", "__setitem__", "__delitem__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for t in targets:
                if isinstance(t, ast.Subscript) and is_environ(t.value):
                    writes.append((node.lineno, "os.environ[...] = / del"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if is_environ(f.value) and f.attr in mutators:
                writes.append((node.lineno, f"os.environ.{f.attr}()"))
            elif isinstance(f.value, ast.Name) and f.value.id == "os":
                if f.attr in ("putenv", "unsetenv"):
                    writes.append((node.lineno, f"os.{f.attr}()"))
                elif f.attr == "getenv":
                    reads.append((node.lineno, "os.getenv()"))
        if is_environ(node):
            reads.append((node.lineno, "os.environ"))
    return reads, writes


def test_only_the_settings_model_reads_the_environment_and_nothing_writes_it() -> None:
    bad_reads, bad_writes = [], []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            reads, writes = _environ_uses(ast.parse(path.read_text(), rel))
            if rel not in ALLOWED_READS and rel not in ALLOWED_WRITES:
                bad_reads += [f"{rel}:{line}: {what}" for line, what in reads]
            if rel not in ALLOWED_WRITES:
                bad_writes += [f"{rel}:{line}: {what}" for line, what in writes]
    assert bad_writes == [], "nothing may write os.environ at run time"
    assert bad_reads == [], "read LADDER_* variables through ladder.settings"


def test_the_static_check_catches_what_it_should() -> None:
    src = (
        "import os\n"
        "a = os.environ.get('LADDER_X')\n"
        "b = os.getenv('LADDER_Y')\n"
        "os.environ['X'] = '1'\n"
        "os.environ.setdefault('Y', '2')\n"
    )
    reads, writes = _environ_uses(ast.parse(src))
    assert {line for line, _ in reads} >= {2, 3}
    assert [line for line, _ in writes] == [4, 5]


def test_every_setting_is_in_the_readme() -> None:
    from ladder.settings import LadderSettings

    readme = (ROOT / "README.md").read_text()
    for name in LadderSettings.model_fields:
        assert f"`LADDER_{name.upper()}`" in readme, name


def test_a_replica_lease_names_ladder_target_dsn_rather_than_hold_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ladder.replica.pipeline import lease_server

    dsn = "host=db port=5433 user=app password=hunter2 dbname=shop_dev"
    monkeypatch.setenv("LADDER_TARGET_DSN", dsn)
    assert lease_server(dsn) == {"env": "LADDER_TARGET_DSN"}
    other = "host=db port=5433 user=app password=other dbname=shop_dev"
    assert "other" not in str(lease_server(other)) and "dbname=postgres" in str(lease_server(other))
    monkeypatch.delenv("LADDER_TARGET_DSN")
    assert lease_server(dsn) == "user=app dbname=postgres host=db port=5433"

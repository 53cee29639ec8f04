"""The layout shows the ladder, and dependencies point one way: cli -> flows -> tasks -> ladder.

Imports are read from the source (every ``import`` statement, including those inside functions),
not by importing anything, so a violation is found even on a path no test runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ladder", "cli", "flows", "tasks")
MAX_LINES = 400

# Production modules that may import ladder.sandbox, each with the reason.
SANDBOX_IMPORTERS = {
    "ladder/config.py": "bind_environment fills a `sandbox: true` environment from the sandbox state",
}
# Modules allowed over MAX_LINES until they are split (keep this empty).
OVERSIZED: dict[str, str] = {}


def _modules(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute and dotted (``from a import b`` gives a and a.b)."""
    package = _rel(path).split("/")[:-1]  # the package a relative import starts from
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _violations(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in _modules(*packages):
        for module in sorted(_imports(path)):
            if module.split(".")[0] in forbidden:
                bad.append(f"{_rel(path)} imports {module}")
    return bad


@pytest.mark.parametrize(
    ("packages", "forbidden"),
    [
        (("ladder",), ("cli", "flows", "tasks")),
        (("tasks",), ("cli", "flows")),
        (("flows",), ("cli",)),
    ],
    ids=["ladder", "tasks", "flows"],
)
def test_dependencies_point_one_way(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    assert _violations(packages, forbidden) == []


def _is_sandbox(module: str) -> bool:
    return module == "ladder.sandbox" or module.startswith("ladder.sandbox.")


def test_production_code_never_imports_the_sandbox() -> None:
    sandbox = ROOT / "ladder" / "sandbox"
    bad = [
        f"{_rel(path)} imports {module}"
        for path in _modules("ladder", "tasks", "flows")
        if sandbox not in path.parents and _rel(path) not in SANDBOX_IMPORTERS
        for module in sorted(_imports(path))
        if _is_sandbox(module)
    ]
    assert bad == []


def test_the_sandbox_allow_list_is_still_needed() -> None:
    stale = [p for p in SANDBOX_IMPORTERS if not any(map(_is_sandbox, _imports(ROOT / p)))]
    assert stale == []


def test_the_folders_show_the_ladder() -> None:
    for package in ("rungs", "replica", "sandbox", "connectors", "intake", "leases", "sanitize"):
        assert (ROOT / "ladder" / package / "__init__.py").is_file(), package


def test_modules_stay_small() -> None:
    sizes = {_rel(p): len(p.read_text().splitlines()) for p in _modules(*PACKAGES)}
    over = {p: n for p, n in sizes.items() if n > MAX_LINES and p not in OVERSIZED}
    assert over == {}, f"split these along a seam (one job per module): {over}"
    fixed = [p for p in OVERSIZED if sizes.get(p, 0) <= MAX_LINES]
    assert fixed == [], f"no longer oversized: remove from OVERSIZED: {fixed}"

"""The packages import one way: api → schema → resolvers → analytics/storage/fetchers → core.

Each package may import only the packages listed for it (and itself); the rules are the ones
the packages' docstrings state. An import inside a function counts like one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "chainfolio"

LOWER = {"core"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "analytics": set(),
    "devnet": set(),
    "dashboard": set(),
    "fetchers": LOWER,
    "storage": LOWER,
    "bus": LOWER,
    "resolvers": LOWER | {"analytics", "storage", "fetchers", "bus"},
    "schema": LOWER | {"resolvers", "storage", "analytics"},
    "worker": LOWER | {"resolvers", "storage", "fetchers", "bus", "analytics"},
    "api": LOWER
    | {"schema", "resolvers", "storage", "fetchers", "analytics", "bus", "worker", "dashboard"},
    # The entry points sit on top of everything.
    "demo": LOWER | {"api", "devnet", "fetchers", "resolvers", "storage", "worker", "bus"},
    "cli": LOWER
    | {"api", "bus", "demo", "devnet", "fetchers", "resolvers", "storage", "schema", "worker"},
    "__main__": {"cli"},
    "__init__": set(),
}


def _imports(path: Path) -> set[str]:
    """The chainfolio packages (first component under chainfolio) `path` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "chainfolio":
                names = [f"chainfolio.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "chainfolio" and len(parts) > 1:
                found.add(parts[1])
    return found


def _package(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def test_every_package_has_a_rule() -> None:
    packages = {_package(p) for p in ROOT.rglob("*.py")}
    assert packages <= ALLOWED.keys(), packages - ALLOWED.keys()


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_one_way(path: Path) -> None:
    package = _package(path)
    wrong = _imports(path) - ALLOWED[package] - {package}
    assert not wrong, f"{path.relative_to(ROOT)} ({package}) imports {sorted(wrong)}"


# --- module length --------------------------------------------------------------------------

MAX_LINES = 400
REASON = "Why this is long:"


def _long_without_reason(path: Path) -> bool:
    source = path.read_text()
    if len(source.splitlines()) <= MAX_LINES:
        return False
    docstring = ast.get_docstring(ast.parse(source, str(path))) or ""
    return REASON not in docstring


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why(path: Path) -> None:
    name = str(path.relative_to(ROOT))
    assert not _long_without_reason(path), (
        f"{name} has over {MAX_LINES} lines: split it by concern, or say at the top of its "
        f"docstring `{REASON} …` (CONTRIBUTING.md)"
    )

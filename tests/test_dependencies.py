"""Every package the library imports directly is declared in pyproject.toml.

A package that only arrives through another one (aiohttp through aiobotocore) can
disappear when that one changes its own requirements.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_top_level_modules(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_of_the_library_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        _normalised(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
        for requirement in project["dependencies"]
    }
    modules = _imported_top_level_modules(ROOT / "src" / "eventflow")
    third_party = sorted(
        m for m in modules if m not in sys.stdlib_module_names and m != "eventflow"
    )
    assert "aiohttp" in third_party and "botocore" in third_party  # the walk sees them
    distributions = packages_distributions()
    undeclared = {
        module: distributions.get(module, [module])
        for module in third_party
        if not any(_normalised(d) in declared for d in distributions.get(module, [module]))
    }
    assert undeclared == {}, f"imported by src/eventflow but not declared: {undeclared}"

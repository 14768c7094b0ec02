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


# optional modules: what they import may come from their extra (pip install eventflow[metrics])
OPTIONAL = {"metrics.py": "metrics", "tracing.py": "tracing"}


def _imported_top_level_modules(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_normalised(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in requirements}


def _undeclared(paths: list[Path], declared: set[str]) -> dict[str, list[str]]:
    modules = _imported_top_level_modules(paths)
    third_party = sorted(
        m for m in modules if m not in sys.stdlib_module_names and m != "eventflow"
    )
    distributions = packages_distributions()
    return {
        module: distributions.get(module, [module])
        for module in third_party
        if not any(_normalised(d) in declared for d in distributions.get(module, [module]))
    }


def test_every_third_party_import_of_the_library_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _names(project["dependencies"])
    package = ROOT / "src" / "eventflow"
    core = [p for p in package.rglob("*.py") if p.relative_to(package).as_posix() not in OPTIONAL]
    modules = _imported_top_level_modules(core)
    assert "aiohttp" in modules and "botocore" in modules  # the walk sees them
    assert _undeclared(core, declared) == {}, "imported by src/eventflow but not declared"
    for name, extra in OPTIONAL.items():
        in_extra = declared | _names(project["optional-dependencies"][extra])
        assert _undeclared([package / name], in_extra) == {}, f"{name}: not in [{extra}]"
        # the test suite installs every extra (dev)
        assert _names(project["optional-dependencies"][extra]) <= _names(
            project["optional-dependencies"]["dev"]
        )

"""The suite also holds the code to its standards: ruff and mypy --strict, and the public API."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import eventflow

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install the dev extra: pip install -e '.[dev]'")
    return found


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "src", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run(
        [_tool("mypy"), "--strict", "src", "examples"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_api_is_exactly_all() -> None:
    public = {name for name in dir(eventflow) if not name.startswith("_")}
    # public submodules appear once imported; "annotations" is the __future__ import
    modules = {m.name for m in pkgutil.iter_modules(eventflow.__path__)} | {"annotations"}
    assert public - modules - set(eventflow.__all__) == set()
    for name in eventflow.__all__:
        assert hasattr(eventflow, name), name


def test_routing_module_exports() -> None:
    import eventflow.routing as routing

    assert set(routing.__all__) == {
        "EventPattern",
        "FilterPolicy",
        "InvalidPattern",
        "Route",
        "Router",
        "S3KeyFilter",
    }
    for name in routing.__all__:
        assert getattr(routing, name).__module__ in ("eventflow", "eventflow.routing"), name
    assert routing.InvalidPattern is eventflow.InvalidPattern
    assert issubclass(eventflow.InvalidPattern, eventflow.ConfigurationError)

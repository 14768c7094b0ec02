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


@pytest.mark.parametrize("module_name", ["eventflow.aws", "eventflow.events"])
def test_public_submodules_export_exactly_all(module_name: str) -> None:
    import importlib

    module = importlib.import_module(module_name)

    # what the module defines itself (or its private modules do); imports of core names
    # such as InvalidEvent are not part of its own API
    def defined_here(value: object) -> bool:
        where = getattr(value, "__module__", "")
        return where == module_name or where.startswith(f"{module_name}._")

    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and defined_here(value)
    }
    assert public == set(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name


def test_batch_source_and_event_views_are_public() -> None:
    import eventflow.aws
    import eventflow.events

    assert {"SQSBatchSource", "SQSBatchSourceStatistics"} <= set(eventflow.aws.__all__)
    assert "SQSEvent" in eventflow.events.__all__


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

"""Packaging metadata a user's tools read: licence, Python versions, classifiers."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_matches_the_declared_licence() -> None:
    meta = importlib.metadata.metadata("eventflow")
    assert "License :: OSI Approved :: MIT License" in meta.get_all("Classifier", [])
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_python_versions_are_declared_and_include_this_one() -> None:
    meta = importlib.metadata.metadata("eventflow")
    assert meta["Requires-Python"] == ">=3.11"
    classifiers = meta.get_all("Classifier", [])
    assert "Typing :: Typed" in classifiers
    this = f"Programming Language :: Python :: {sys.version_info[0]}.{sys.version_info[1]}"
    assert this in classifiers


def test_output_files_of_the_documented_commands_are_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for name in ("demo-lambda-dead-letters.jsonl", "response.json", "event.json"):
        assert name in ignored

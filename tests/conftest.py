"""Shared fixtures: a clean default handler registry for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import eventflow


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    eventflow.reset_default_registry()
    yield
    eventflow.reset_default_registry()

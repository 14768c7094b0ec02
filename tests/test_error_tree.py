"""Every exception eventflow raises on purpose hangs under EventflowError, as drawn."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import eventflow
import eventflow.aws
import eventflow.http
import eventflow.sinks
from eventflow import _errors

PUBLIC = (eventflow, eventflow.sinks, eventflow.aws, eventflow.http)


def public_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in PUBLIC:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                found[name] = obj
    return list(found.values())


@pytest.mark.parametrize("exc", public_exceptions(), ids=lambda e: e.__name__)
def test_each_public_exception_is_an_eventflow_error_drawn_in_the_tree(
    exc: type[BaseException],
) -> None:
    assert issubclass(exc, eventflow.EventflowError)
    drawn = exc is eventflow.EventflowError or f"── {exc.__name__}" in (_errors.__doc__ or "")
    assert drawn, f"{exc.__name__} is missing from the tree in _errors.py's docstring"


def test_the_tree_holds_the_adapters_errors() -> None:
    names = {e.__name__ for e in public_exceptions()}
    assert {"SinkRejected", "AWSError", "ResourceCheckFailed", "SignatureError"} <= names
    assert "SignatureRejected" in names


@pytest.mark.parametrize("module", [eventflow.aws, eventflow.http], ids=lambda m: m.__name__)
def test_public_classes_show_their_public_module(module: ModuleType) -> None:
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            assert obj.__module__ == module.__name__, name
            assert repr(obj) == f"<class '{module.__name__}.{name}'>"

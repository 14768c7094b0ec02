"""Checking that a payload (or a handler's result) can be carried as JSON.

``json.dumps`` on every payload would cost more than the rest of ``invoke``; a type walk
over the common shapes is much cheaper, and anything unusual falls back to ``json.dumps``
so the answer is always the one the JSON encoder would give.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ("json_error", "private_copy", "to_json")

_SCALARS = frozenset((str, int, float, bool, type(None)))
_MAX_FAST_DEPTH = 16


def _fast_ok(value: Any, depth: int) -> bool:
    t = type(value)
    if t in _SCALARS:
        return t is not float or value - value == 0.0  # rejects NaN and infinities
    if depth > _MAX_FAST_DEPTH:
        return False
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                return False
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                continue
            if not _fast_ok(v, depth + 1):
                return False
        return True
    if t is list or t is tuple:
        return all(_fast_ok(v, depth + 1) for v in value)
    return False


def json_error(value: Any) -> str | None:
    """``None`` if ``value`` serialises to JSON, else why not, as a sentence fragment."""
    if _fast_ok(value, 0):
        return None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return str(exc) or type(exc).__name__
    return None


def to_json(value: Any) -> str:
    """Serialise ``value`` compactly, as Lambda's runtimes do."""
    if value is None:
        return "null"  # most handlers return nothing; skip the encoder
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def private_copy(value: Any) -> Any:
    """A copy of a JSON payload for one attempt: what Lambda's runtime would deserialise.

    Handlers change their event; the copy keeps the original intact for the retry, the
    dead-letter message, the destination records and the idempotency check. Scalars are
    shared (immutable), containers copied; tuples and other mappings become lists and dicts.
    """
    t = type(value)
    if t is dict:
        copy = value.copy()
        for k, v in copy.items():
            if type(v) not in _SCALARS:
                copy[k] = private_copy(v)  # the same keys: safe while iterating
        return copy
    if t in _SCALARS:
        return value
    if t is list or t is tuple:
        return [v if type(v) in _SCALARS else private_copy(v) for v in value]
    if isinstance(value, Mapping):
        return {k: private_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [private_copy(v) for v in value]
    return value

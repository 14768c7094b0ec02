"""Checking a payload (or a handler's result) at the door, copying it, writing it as JSON.

A payload is accepted only if every later step can carry it: the JSON encoder (sinks,
shared queues, idempotency fingerprints), UTF-8 (files, SQLite, AWS) and Python itself
(int/str conversion, recursion). :func:`check_payload` walks it once and names the first
problem and where it is (a path such as ``$.Records[0].s3``); the common shapes cost a
few type checks per value, and only unusual values take a slower branch.

The limits (the README's "Payload limits"):

- JSON types only: dicts (keys str, int, float, bool or None, as ``json`` converts them),
  lists, tuples, str, int, float, bool, None;
- nesting at most :data:`MAX_DEPTH` containers deep, well below Python's recursion limit;
- integers of at most ``sys.get_int_max_str_digits()`` digits (4,300 by default);
- finite floats only (no NaN or infinities: JSON has no spelling for them);
- strings and keys without lone surrogates (``"\\ud800"``): UTF-8 cannot encode them.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import InvalidPayload

__all__ = (
    "MAX_DEPTH",
    "SAFE_INT",
    "SAFE_INT_MIN",
    "check_payload",
    "checked_to_json",
    "json_error",
    "payload_problem",
    "private_copy",
    "to_json",
)

_SCALARS = frozenset((str, int, float, bool, type(None)))
_EXACT = _SCALARS | {dict, list, tuple}

# Containers nested deeper than this are refused, wherever the payload comes from.
MAX_DEPTH = 500
# |n| below this has fewer digits than the lowest int/str limit Python allows (640)
SAFE_INT = 10**639
# its negation, made once: -SAFE_INT in a check allocates a 2,100-bit int on every call
SAFE_INT_MIN = -SAFE_INT
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Problem(Exception):
    """What is wrong, and the path to it, collected while the walk unwinds."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.path: list[Any] = []  # keys and indexes, innermost first

    def where(self) -> str:
        steps = self.path[::-1]
        parts = ["$"]
        if len(steps) > 12:  # a deep path: its start and its end say enough
            parts.append("".join(_step(s) for s in steps[:6]))
            parts.append(f"...({len(steps) - 12} more)...")
            steps = steps[-6:]
        parts.extend(_step(s) for s in steps)
        return "".join(parts)


def _step(step: Any) -> str:
    if type(step) is int:
        return f"[{step}]"
    if isinstance(step, str) and step.isidentifier():
        return f".{step}"
    return f"[{_quote(step)}]"


def _quote(key: Any) -> str:
    text = json.dumps(key) if isinstance(key, str) else repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _text_problem(text: str, what: str) -> None:
    found = _SURROGATE.search(text)
    if found is not None:
        raise _Problem(
            f"{what} holds a lone surrogate ({found.group()!r} at character {found.start()}), "
            "which UTF-8 cannot encode"
        )


def _int_problem(value: int) -> None:
    limit = sys.get_int_max_str_digits()
    if limit and abs(value) >= 10**limit:
        raise _Problem(
            f"an integer has more than {limit} digits, Python's limit for converting "
            "integers to text (sys.get_int_max_str_digits())"
        )


def _walk(value: Any, depth: int) -> None:
    t = type(value)
    if t not in _EXACT:
        value = _as_json_type(value)
        t = type(value)
    if t is str:
        if not value.isascii():
            _text_problem(value, "a string")
    elif t is int:
        if not SAFE_INT_MIN < value < SAFE_INT:
            _int_problem(value)
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise _Problem(f"the payload is nested more than {MAX_DEPTH} levels deep")
        for k, v in value.items():
            try:
                if type(k) is not str or not k.isascii():
                    _key_problem(k)
                tv = type(v)
                if tv is str:
                    if v.isascii():
                        continue
                elif tv is int:
                    if SAFE_INT_MIN < v < SAFE_INT:
                        continue
                elif tv is bool or v is None:
                    continue
                _walk(v, depth + 1)
            except _Problem as problem:
                problem.path.append(k)
                raise
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise _Problem(f"the payload is nested more than {MAX_DEPTH} levels deep")
        for i, v in enumerate(value):
            tv = type(v)
            if (tv is str and v.isascii()) or tv is bool or v is None:
                continue
            try:
                _walk(v, depth + 1)
            except _Problem as problem:
                problem.path.append(i)
                raise
    elif t is float:
        if value - value != 0.0:  # NaN and infinities
            raise _Problem(f"a float is {value!r}, which JSON cannot represent")


def _as_json_type(value: Any) -> Any:
    """A subclass of a JSON type as the value ``json`` encodes; anything else is refused."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):  # IntEnum and other int subclasses
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, dict):
        return dict(value.items())
    if isinstance(value, list | tuple):
        return list(value)
    raise _Problem(f"Object of type {type(value).__name__} is not JSON serializable")


def _key_problem(key: Any) -> None:
    if isinstance(key, str):
        _text_problem(key, "a key")
    elif isinstance(key, float):
        if key - key != 0.0:
            raise _Problem(f"a key is {key!r}, which JSON cannot represent")
    elif isinstance(key, int):  # bool included
        if not SAFE_INT_MIN < key < SAFE_INT:
            _int_problem(key)
    elif key is not None:
        raise _Problem(
            f"a key is of type {type(key).__name__}; JSON keys are strings "
            "(int, float, bool and None keys are converted)"
        )


def payload_problem(value: Any) -> str | None:
    """``None`` if ``value`` is an acceptable payload, else what is wrong and where."""
    try:
        _walk(value, 0)
    except _Problem as problem:
        return f"{problem.what}, at {problem.where()}"
    except RecursionError:  # the caller's own stack was already deep
        return f"the payload is nested too deep to check here (at most {MAX_DEPTH} levels)"
    return None


def check_payload(value: Any, subject: str = "The payload") -> None:
    """Refuse ``value`` unless every later step can carry it (see the module's limits).

    Raises:
        InvalidPayload: naming the problem and its path, e.g. ``$.items[3].price``.
    """
    problem = payload_problem(value)
    if problem is not None:
        raise InvalidPayload(
            f"{subject} is not JSON-serialisable ({problem}); pass dicts, lists, strings, "
            f"finite numbers, booleans and None, nested at most {MAX_DEPTH} deep, with "
            "integers Python can print and strings UTF-8 can encode."
        )


def json_error(value: Any) -> str | None:
    """``None`` if ``value`` can be carried as JSON, else why not, as a sentence fragment.

    The same rules as :func:`check_payload`: a handler's result that fails them is
    Lambda's ``Runtime.MarshalError``.
    """
    t = type(value)
    if (t is str and value.isascii()) or t is bool or value is None:
        return None
    return payload_problem(value)


def to_json(value: Any) -> str:
    """Serialise ``value`` compactly, as Lambda's runtimes do."""
    if value is None:
        return "null"  # most handlers return nothing; skip the encoder
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _checked_encoder() -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    # no markers: a checked value has no cycle (it would break the depth limit)
    chunks = make(None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(chunks(value, 0))


checked_to_json: Callable[[Any], str] = _checked_encoder()
""":func:`to_json` of a value :func:`check_payload` accepted, with one C encoder made
once (``json.dumps`` sets one up per call, which costs more than a small payload's
encoding)."""


def private_copy(value: Any) -> Any:
    """A copy of a JSON payload for one attempt: what Lambda's runtime would deserialise.

    Handlers change their event; the copy keeps the original intact for the retry, the
    dead-letter message, the destination records and the idempotency check. Scalars are
    shared (immutable), containers copied; tuples and other mappings become lists and dicts.
    """
    # loops, not comprehensions: a comprehension is a frame of its own (before Python
    # 3.12), which would halve the nesting a payload may have before RecursionError
    t = type(value)
    if t is dict:
        copy = value.copy()
    elif t in _SCALARS:
        return value
    elif t is list or t is tuple:
        items = list(value)
        for i, v in enumerate(items):
            if type(v) not in _SCALARS:
                items[i] = private_copy(v)
        return items
    elif isinstance(value, Mapping):
        copy = dict(value.items())
    elif isinstance(value, list | tuple):
        return private_copy(list(value))
    else:
        return value
    for k, v in copy.items():
        if type(v) not in _SCALARS:
            copy[k] = private_copy(v)  # the same keys: safe while iterating
    return copy

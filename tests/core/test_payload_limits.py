"""Payload limits, checked at the door: what a later step cannot carry is never accepted.

Each refused payload is one that used to be accepted (202) and then failed every attempt
before its handler ran, or could not be dead-lettered, or stopped the app.
"""

from __future__ import annotations

import collections
import enum
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import eventflow
from eventflow.sinks import JsonlSink, MemorySink
from eventflow.sources import MemorySource
from eventflow.stores import SQLiteStore
from eventflow.testing import VirtualClock

LONE = "\ud800"
MAX_DEPTH = 500  # the documented bound (README, "Payload limits")


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` containers, alternately lists and objects, around ``leaf``."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


# (payload, what the message says, where) for every limit; the flat ones hit the
# inline check in App._new_event, the rest check_payload's walk
REFUSED: list[tuple[str, Any, str, str]] = [
    ("nan", {"x": float("nan")}, "nan", "$.x"),
    ("infinity", {"a": [1, {"b": float("inf")}]}, "inf", "$.a[1].b"),
    ("negative infinity", [float("-inf")], "-inf", "$[0]"),
    ("long int, flat", {"n": 10**5000}, "more than 4300 digits", "$.n"),
    ("long int, nested", {"a": {"n": -(10**4300)}}, "more than 4300 digits", "$.a.n"),
    ("lone surrogate, flat", {"s": "ok " + LONE}, "lone surrogate", "$.s"),
    ("lone surrogate in a list", {"l": ["é", "\udfff"]}, "lone surrogate", "$.l[1]"),
    ("lone surrogate in a key", {"a": {LONE: 1}}, "lone surrogate", '$.a["\\ud800"]'),
    ("lone surrogate at the top", LONE, "lone surrogate", "$"),
    ("too deep", nested(MAX_DEPTH + 1), f"more than {MAX_DEPTH} levels", "...("),
    ("not JSON", {"when": {1, 2}}, "Object of type set", "$.when"),
    ("bad key type", {"k": {(1, 2): 3}}, "a key is of type tuple", "$.k[(1, 2)]"),
]


@pytest.mark.parametrize(
    ("payload", "says", "where"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
async def test_invoke_refuses_what_a_later_step_cannot_carry(
    payload: Any, says: str, where: str
) -> None:
    ran: list[Any] = []

    @eventflow.handler
    async def h(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    async with eventflow.App() as app:
        with pytest.raises(eventflow.InvalidPayload) as refused:
            await app.invoke(h, payload)
        message = str(refused.value)
        assert "'h'" in message and says in message and where in message
        # every way in refuses it the same, before anything is accepted
        with pytest.raises(eventflow.InvalidPayload):
            app.invoke_nowait(h, payload)
        with pytest.raises(eventflow.InvalidPayload):
            await app.invoke(h, payload, invocation_type="RequestResponse")
        with pytest.raises(eventflow.InvalidPayload):
            await app.invoke(h, payload, invocation_type="DryRun")
        with pytest.raises(eventflow.InvalidPayload):
            await app.submit(h, payload)
        stats = app.stats()
    assert stats.received == 0 and stats.attempts == 0 and ran == []


class Point(NamedTuple):
    x: int
    y: int


class Colour(enum.IntEnum):
    RED = 1


class Name(enum.StrEnum):
    ADA = "Ada"


ACCEPTED: list[Any] = [
    nested(MAX_DEPTH),
    {"n": 10**4299, "m": -(10**4299)},
    {"s": "é ü 中文 🎉", "ключ": "значение"},
    {1: "int keys", 2.5: "float keys", False: "bool keys", None: "null keys"},
    {"tuple": (1, 2), "point": Point(1, 2), "enums": [Colour.RED, Name.ADA]},
    collections.OrderedDict(a=1),
    {"x": 1.5e308, "y": -0.0},
]


@pytest.mark.parametrize("payload", ACCEPTED, ids=range(len(ACCEPTED)))
async def test_every_json_payload_within_the_limits_is_accepted_and_runs(payload: Any) -> None:
    got: list[Any] = []

    @eventflow.handler
    async def h(event: Any, context: eventflow.Context) -> None:
        got.append(event)

    async with eventflow.App() as app:
        await app.invoke(h, payload)
        await app.drain(timeout=10)
        stats = app.stats()
    assert stats.succeeded == 1 and len(got) == 1
    # and every later step can carry it: JSON text for sinks, UTF-8 for files and AWS
    from eventflow._payload import to_json

    assert json.loads(to_json(payload).encode("utf-8")) == json.loads(json.dumps(payload))


@pytest.mark.parametrize(
    "payload", [*ACCEPTED, None, "é", 7, 2.5, []], ids=range(len(ACCEPTED) + 5)
)
def test_the_encoder_made_once_writes_what_to_json_writes(payload: Any) -> None:
    from eventflow._payload import checked_to_json, to_json

    assert checked_to_json(payload) == to_json(payload)


def test_the_bound_is_the_documented_one() -> None:
    from eventflow._payload import MAX_DEPTH as bound

    assert bound == MAX_DEPTH


def test_the_integer_limit_follows_python_s_setting() -> None:
    from eventflow._payload import check_payload

    before = sys.get_int_max_str_digits()
    try:
        sys.set_int_max_str_digits(1000)
        with pytest.raises(eventflow.InvalidPayload, match="more than 1000 digits"):
            check_payload({"n": 10**1000})
        check_payload({"n": 10**999})
        sys.set_int_max_str_digits(0)  # no limit: nothing to refuse
        check_payload({"n": 10**20000})
    finally:
        sys.set_int_max_str_digits(before)


def test_a_deep_path_is_shortened_in_the_message() -> None:
    from eventflow._payload import check_payload

    with pytest.raises(eventflow.InvalidPayload) as refused:
        check_payload(nested(5000))
    message = str(refused.value)
    assert len(message) < 600
    assert (
        f"more than {MAX_DEPTH} levels deep, at $[0].k[0].k[0].k...({MAX_DEPTH - 12} more)"
        in message
    )


def test_results_follow_the_same_limits_as_marshal_errors() -> None:
    from eventflow._payload import json_error

    assert json_error({"ok": [1, "é", None]}) is None
    assert json_error(None) is None
    assert "lone surrogate" in (json_error({"r": LONE}) or "")
    assert "nan" in (json_error([float("nan")]) or "")
    assert "not JSON serializable" in (json_error({1, 2}) or "")


async def test_a_source_s_invalid_payload_is_refused_and_the_source_goes_on() -> None:
    got: list[Any] = []

    @eventflow.handler
    async def h(event: Any, context: eventflow.Context) -> None:
        got.append(event)

    clock = VirtualClock()
    source = MemorySource(h)
    async with eventflow.App(clock=clock, sources=[source]) as app:
        # today put() takes it and run() then stops the app with InvalidPayload
        with pytest.raises(eventflow.InvalidPayload, match="nan"):
            await source.put({"x": float("nan")})
        await source.put({"x": 1})
        async with clock.autojump():
            while not source.submitted:
                await clock.settle()
            await app.drain()
        stats = app.stats()
    assert got == [{"x": 1}] and stats.received == 1


async def test_a_payload_at_the_nesting_bound_goes_through_every_later_step(
    tmp_path: Path,
) -> None:
    # lists are the deepest case: each level is a frame in every recursive step
    payload: Any = 1
    for _ in range(MAX_DEPTH):
        payload = [payload]
    dlq = JsonlSink(tmp_path / "dead-letters.jsonl")
    failures = MemorySink()

    @eventflow.handler(
        max_retries=1,
        retry_delays=(1.0,),
        dead_letter=dlq,
        on_failure=failures,
        idempotency=eventflow.Idempotency(store=SQLiteStore(tmp_path / "keys.db")),
    )
    async def fails(event: Any, context: eventflow.Context) -> None:
        raise ValueError("no")

    @eventflow.handler(max_retries=0)
    def fails_in_a_thread_without_sinks(event: Any, context: eventflow.Context) -> None:
        raise ValueError("logged with its payload")

    @eventflow.handler
    async def echo(event: Any, context: eventflow.Context) -> Any:
        return event

    clock = VirtualClock()
    async with eventflow.App(clock=clock) as app:
        await app.invoke(fails, payload)
        await app.invoke(fails_in_a_thread_without_sinks, payload)
        async with clock.autojump():
            await app.drain()
        result = await app.invoke(echo, payload, invocation_type="RequestResponse")
        stats = app.stats()
    assert result.function_error is None and result.payload == payload
    assert (stats.failed, stats.dead_lettered, stats.attempts) == (2, 1, 4)
    assert stats.dead_letter_errors == stats.destination_errors == 0
    assert json.loads(dlq.read()[0].body) == payload
    assert json.loads(failures.messages[0].body)["requestPayload"] == payload

"""Shared pieces of the fuzz suite: hostile inputs, an in-process ASGI client, an SNS-like
signer, a logger that records, and a ledger of each request ID's terminal outcomes.

A plain module (not a conftest): the fuzz tests import it by name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Literal

import structlog
from hypothesis import strategies as st

import eventflow
from eventflow.sources import Outcome
from sns_support import Signer, make_signer

# --------------------------------------------------------------------------- hostile JSON

Verdict = Literal["refuse", "accept", "any"]
"""What the door (``invoke``, ``LambdaAPI``, the sources) must do with a body:
``refuse`` it before accepting, ``accept`` it, or either (a bound left to the code)."""


@dataclasses.dataclass(frozen=True)
class Body:
    """One generated body and what must become of it."""

    text: str | bytes
    verdict: Verdict
    why: str

    def raw(self) -> bytes:
        """The body as bytes on the wire (text as UTF-8, lone surrogates kept as given)."""
        if isinstance(self.text, bytes):
            return self.text
        return self.text.encode("utf-8", "surrogatepass")


# well above any nesting bound the door may choose (the issue suggests 500), far below
# what a recursive walk survives only with luck
REFUSED_DEPTHS = (2_000, 5_000, 100_000)
# an int with more digits than Python's int/str conversion limit (4,300)
HUGE_INT = "9" * 5_000


def deep_array(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def deep_object(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@st.composite
def refused_bodies(draw: st.DrawFn) -> Body:
    """JSON-ish text that no step after the door can handle, or that is not JSON at all."""
    inner = draw(json_values)
    case = draw(
        st.sampled_from(
            [
                "nan",
                "infinity",
                "-infinity",
                "overflowing float",
                "deep array",
                "deep object",
                "huge int",
                "truncated",
                "trailing garbage",
                "single quotes",
                "not utf-8",
            ]
        )
    )
    where = draw(st.sampled_from(["top", "in object", "in array", "in envelope"]))

    def place(token: str) -> str:
        if where == "top":
            return token
        if where == "in object":
            return '{"value": ' + token + ', "other": ' + _dumps(inner) + "}"
        if where == "in array":
            return "[" + _dumps(inner) + ", " + token + "]"
        return '{"detail-type": "x", "source": "y", "detail": {"n": ' + token + "}}"

    if case == "nan":
        return Body(place("NaN"), "refuse", case)
    if case == "infinity":
        return Body(place("Infinity"), "refuse", case)
    if case == "-infinity":
        return Body(place("-Infinity"), "refuse", case)
    if case == "overflowing float":
        return Body(place(draw(st.sampled_from(["1e400", "-1e999", "2E+308"]))), "refuse", case)
    if case == "deep array":
        return Body(place(deep_array(draw(st.sampled_from(REFUSED_DEPTHS)))), "refuse", case)
    if case == "deep object":
        return Body(place(deep_object(draw(st.sampled_from(REFUSED_DEPTHS)))), "refuse", case)
    if case == "huge int":
        return Body(place(draw(st.sampled_from([HUGE_INT, "-" + HUGE_INT]))), "refuse", case)
    text = _dumps(inner)
    if case == "truncated":
        return Body(place('{"a": [1, 2'), "refuse", case)
    if case == "trailing garbage":
        return Body(text + " }", "refuse", case)
    if case == "single quotes":
        return Body("{'a': 1}", "refuse", case)
    # bytes that are no UTF-8 at all (a lone continuation byte, an overlong encoding)
    junk = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\x80abc", b"\xed\xa0\x80"]))
    return Body(b'{"a": "' + junk + b'"}', "refuse", case)


@st.composite
def accepted_bodies(draw: st.DrawFn) -> Body:
    """Valid JSON that the door must accept: any JSON type, odd but legal spellings."""
    case = draw(
        st.sampled_from(
            ["value", "duplicate keys", "moderate nesting", "long int", "escapes", "whitespace"]
        )
    )
    if case == "value":
        return Body(_dumps(draw(json_values)), "accept", case)
    if case == "duplicate keys":
        return Body('{"a": 1, "a": {"b": 2}, "a": [3]}', "accept", case)
    if case == "moderate nesting":
        depth = draw(st.integers(1, 40))
        return Body(draw(st.sampled_from([deep_array, deep_object]))(depth), "accept", case)
    if case == "long int":
        return Body('{"n": ' + "7" * draw(st.integers(20, 4_000)) + "}", "accept", case)
    if case == "escapes":
        return Body('{"s": "\\u0000\\n\\t\\"\\\\\\u00e9\\ud83d\\ude00"}', "accept", case)
    return Body(" \n\t" + _dumps(draw(json_values)) + "\r\n ", "accept", case)


@st.composite
def either_bodies(draw: st.DrawFn) -> Body:
    """Bodies whose fate the issue leaves to the code: either answer is right, but the
    event (if accepted) must still reach exactly one outcome."""
    case = draw(st.sampled_from(["lone surrogate", "mid nesting", "empty", "blank"]))
    if case == "lone surrogate":
        escape = draw(st.sampled_from(["\\ud800", "\\udfff", "\\ud83d"]))
        return Body('{"id": "k", "s": "' + escape + '"}', "any", case)
    if case == "mid nesting":
        depth = draw(st.sampled_from([100, 400, 600, 1_000]))
        return Body(draw(st.sampled_from([deep_array, deep_object]))(depth), "any", case)
    if case == "empty":
        return Body("", "any", case)
    return Body(" \n\t ", "any", case)


hostile_bodies = st.one_of(refused_bodies(), accepted_bodies(), either_bodies())


# --------------------------------------------------------------------------- AWS envelopes

TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-fuzz.pem"
BAD_URLS = (
    "http://[::1",
    "http://[",
    "https://[::1]:99999/x.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
    "https://sns.us-east-1.amazonaws.com/x.txt",
    "file:///etc/passwd",
    "",
    "%",
    "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
)
# values of the wrong type for a field that should be a string, an object or a list
wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just([]),
    st.just({}),
    st.just([{"Type": "String"}]),
    st.just({"a": 1}),
    st.text(max_size=5),
)


def sns_envelope(**extra: Any) -> dict[str, Any]:
    """An SNS Notification envelope as SNS delivers it (to SQS, or over HTTP)."""
    return {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": TOPIC,
        "Message": '{"orderId": 42}',
        "Timestamp": "2026-01-02T03:04:05.678Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={TOPIC}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        **extra,
    }


SNS_FIELDS = (
    "Type",
    "MessageId",
    "TopicArn",
    "Message",
    "Timestamp",
    "Subject",
    "UnsubscribeURL",
    "UnsubscribeUrl",
    "SigningCertURL",
    "SignatureVersion",
    "Signature",
    "MessageAttributes",
)


@st.composite
def sns_mutations(draw: st.DrawFn) -> dict[str, Any]:
    """Changes to an SNS envelope: fields dropped, of the wrong type, or bad URLs."""
    change: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(SNS_FIELDS))
        how = draw(st.sampled_from(["drop", "wrong type", "bad url", "hostile attributes"]))
        if how == "drop":
            change[field] = _DROP
        elif how == "wrong type":
            change[field] = draw(wrong_types)
        elif how == "bad url":
            change[field] = draw(st.sampled_from(BAD_URLS))
        else:
            change["MessageAttributes"] = draw(
                st.sampled_from(
                    [
                        [],
                        "x",
                        {"a": 5},
                        {"a": {"Type": []}},
                        {"a": {"Type": "Number", "Value": "1e999"}},
                        {"": {"Type": "String.Array", "Value": "[1,"}},
                    ]
                )
            )
    return change


_DROP = object()


def apply(message: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(message)
    for key, value in change.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@st.composite
def s3_shapes(draw: st.DrawFn) -> Any:
    """S3 notifications of the wrong shape."""
    record = draw(
        st.sampled_from(
            [
                {"eventSource": "aws:s3"},
                {"eventSource": "aws:s3", "s3": "x"},
                {"eventSource": "aws:s3", "s3": {"object": None, "bucket": 5}},
                {"eventSource": "aws:s3", "s3": {"object": {"key": ["a"]}}},
                {"eventSource": ["aws:s3"]},
                {"eventSource": "aws:s3", "eventTime": 1e308},
            ]
        )
    )
    return draw(
        st.sampled_from(
            [
                {"Records": [record]},
                {"Records": [record, 1]},
                {"Records": record},
                {"Records": []},
                {"Records": None},
                {"Event": "s3:TestEvent", "Service": "Amazon S3", "Bucket": ["x"]},
                {"Event": "s3:TestEvent", "Service": 3},
            ]
        )
    )


@st.composite
def eventbridge_shapes(draw: st.DrawFn) -> Any:
    """EventBridge envelopes of the wrong shape."""
    base = {"version": "0", "id": "1", "detail-type": "t", "source": "s", "detail": {}}
    return apply(
        base,
        draw(
            st.dictionaries(
                st.sampled_from(["detail-type", "source", "detail", "resources", "time", "id"]),
                st.one_of(wrong_types, st.just(_DROP)),
                min_size=1,
                max_size=3,
            )
        ),
    )


@st.composite
def sqs_bodies(draw: st.DrawFn) -> str:
    """An SQS message body: hostile JSON text, or an AWS envelope with hostile fields."""
    kind = draw(st.sampled_from(["body", "sns", "sns with hostile message", "s3", "eventbridge"]))
    if kind == "body":
        body = draw(hostile_bodies)
        if isinstance(body.text, bytes):
            # SQS carries text: bytes that are no UTF-8 arrive as the escapes of a decoder
            return body.text.decode("utf-8", "surrogateescape")
        return body.text
    if kind == "sns":
        return _dumps(apply(sns_envelope(), draw(sns_mutations())))
    if kind == "sns with hostile message":
        inner = draw(refused_bodies())
        message = inner.raw().decode("utf-8", "surrogateescape")
        return json.dumps(sns_envelope(Message=message))
    if kind == "s3":
        return _dumps(draw(s3_shapes()))
    return _dumps(draw(eventbridge_shapes()))


# --------------------------------------------------------------------------- HTTP

# headers a client may add: any bytes for names and values (servers pass them through)
junk_headers = st.lists(
    st.tuples(st.binary(min_size=1, max_size=12).map(bytes.lower), st.binary(max_size=30)),
    max_size=2,
)
# a Content-Length that tells the truth, is missing, or lies
content_lengths = st.sampled_from(["right", "absent", "garbage", "huge", "negative", "short"])


def content_length(kind: str, body: bytes) -> list[tuple[bytes, bytes]]:
    values = {
        "right": str(len(body)).encode(),
        "garbage": b"12ab",
        "huge": b"99999999999999999999",
        "negative": b"-5",
        "short": str(max(0, len(body) - 1)).encode(),
    }
    return [] if kind == "absent" else [(b"content-length", values[kind])]


# --------------------------------------------------------------------------- SNS signing


@functools.cache
def signer() -> Signer:
    """One key and self-signed certificate per test session (a key costs about 50 ms)."""
    return make_signer(CERT_URL)


# --------------------------------------------------------------------------- in-process ASGI


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def asgi_request(
    asgi: Any,
    method: str,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    chunks: int = 1,
    query: bytes = b"",
    disconnect_early: bool = False,
) -> Response | None:
    """One HTTP request through an ASGI app in this process, as a server would make it.

    Returns the response, or ``None`` if the app sent none (a client that went away).
    An exception the app raises propagates: a server would answer it with a bare 500.
    """
    size = max(1, len(body) // max(1, chunks) + 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    if disconnect_early:
        parts = parts[: max(1, len(parts) // 2)]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1 or disconnect_early}
        for i, p in enumerate(parts)
    ]
    messages.append({"type": "http.disconnect"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if len(messages) > 1:
            return messages.pop(0)
        return messages[0]  # after the body, a server reports the disconnect

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": query,
        "headers": list(headers or []),
        "client": ("127.0.0.1", 54321),
        "server": ("127.0.0.1", 9000),
    }
    await asgi(scope, receive, send)
    if not sent:
        return None
    start = sent[0]
    assert start["type"] == "http.response.start", sent
    body_out = b"".join(m.get("body", b"") for m in sent[1:])
    return Response(
        start["status"],
        {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in start["headers"]
        },
        body_out,
    )


# --------------------------------------------------------------------------- logs and outcomes


class LogRecorder:
    """A structlog logger for ``App(logger=...)`` that keeps every entry (thread-safe
    appends) and prints nothing."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.logger = structlog.wrap_logger(
            structlog.ReturnLogger(),
            processors=[self._keep],
            # a filtering logger answers is_enabled_for, which the app asks about INFO
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )

    def _keep(self, _logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        self.entries.append({"level": method, **event_dict})
        raise structlog.DropEvent

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("event") == event]


TERMINAL = ("succeeded", "failed", "undelivered")


class Ledger:
    """Every terminal outcome seen for each request ID, from all the channels there are:
    the app's log, the failure sinks, the spill sink and the sources' settle callbacks."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.settled: defaultdict[str, list[Outcome]] = defaultdict(list)
        self.submitted: set[str] = set()

    def settle(self, request_id: str, outcome: Outcome) -> None:
        self.settled[request_id].append(outcome)

    def outcomes(
        self,
        logs: LogRecorder,
        *,
        dead_letters: Mapping[str, int],
        failure_records: Mapping[str, int],
        spilled: Mapping[str, int],
    ) -> dict[str, Counter[str]]:
        """For each accepted request ID, how often each kind of terminal outcome was seen.

        ``succeeded``: the engine logged the successful attempt. ``failed``: it was dead
        lettered or had a failure record sent (each sink told once: both messages of an
        event with both sinks are one outcome), was logged as failed without a sink, or
        had every failure send given up and no other outcome. ``undelivered``: spilled,
        logged undelivered, released, given back to its source, or lost to an internal
        error.
        """
        seen: dict[str, Counter[str]] = {rid: Counter() for rid in self.accepted}
        gave_up: set[str] = set()
        for e in logs.entries:
            rid = e.get("request_id")
            if rid not in seen:
                continue
            name = e.get("event")
            if name == "attempt.succeeded":
                seen[rid]["succeeded"] += 1
            elif name == "event.failed":
                seen[rid]["failed"] += 1
            elif name in (
                "event.undelivered",
                "event.released",
                "event.given_back",
                "worker.internal_error",
            ):
                seen[rid]["undelivered"] += 1
            elif name == "sink.gave_up" and e.get("role") in ("dead_letter", "on_failure"):
                gave_up.add(str(rid))
        for rid, n in spilled.items():
            if rid in seen:
                seen[rid]["undelivered"] += n
        for rid in seen:
            # each failure sink is told once; both together are one failed outcome
            sent = max(dead_letters.get(rid, 0), failure_records.get(rid, 0))
            if sent:
                seen[rid]["failed"] += sent
            elif rid in gave_up and not seen[rid]:
                # every failure send was given up (logged with its body): failed, unless the
                # event went on to another outcome (given back to its source, spilled)
                seen[rid]["failed"] += 1
        return seen


# the settle outcomes each terminal outcome may have (by name: UNDELIVERED, for an event
# given back to its source, is newer than the other three)
SETTLED_AS = {
    "succeeded": {"SUCCEEDED"},
    "failed": {"FAILED"},
    "undelivered": {"RELEASED", "UNDELIVERED"},
}


def check_one_outcome_each(
    seen: Mapping[str, Counter[str]], stats: eventflow.Stats, ledger: Ledger
) -> None:
    """Every accepted request ID reached exactly one terminal outcome, and the counts agree
    with the app's statistics and with the sources' settle callbacks."""
    problems = {rid: dict(c) for rid, c in seen.items() if sum(c.values()) != 1}
    assert not problems, f"request IDs without exactly one terminal outcome: {problems}"
    kinds = Counter(next(iter(c)) for c in seen.values())
    assert kinds["succeeded"] == stats.succeeded, (kinds, stats)
    assert kinds["failed"] == stats.failed, (kinds, stats)
    assert kinds["undelivered"] == stats.undelivered, (kinds, stats)
    for rid in ledger.submitted:
        kind = next(iter(seen[rid]))
        settled = [o.name for o in ledger.settled.get(rid, [])]
        assert len(settled) == 1 and settled[0] in SETTLED_AS[kind], (rid, settled, kind)
    strays = set(ledger.settled) - ledger.submitted
    assert not strays, f"settle callbacks for request IDs never submitted: {strays}"


def assert_conserved(s: eventflow.Stats) -> None:
    """The accounting equation: every accepted event is in exactly one place."""
    assert s.received == (
        s.succeeded + s.failed + s.undelivered + s.requeued + s.queued + s.in_flight + s.scheduled
    ), s


async def poll(condition: Callable[[], bool], *, seconds: float = 10.0, what: str) -> None:
    """Wait (in real time, bounded) until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds
    while not condition():
        if loop.time() > give_up:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        await asyncio.sleep(0.005)

"""The SQS wire format of SQSEventQueue, read in one place (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from eventflow.aws import _sqs_wire as wire


def received(attributes: dict[str, Any], receive_count: int = 1) -> dict[str, Any]:
    return {
        "MessageAttributes": attributes,
        "Attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


def test_an_event_round_trips_with_its_version() -> None:
    attributes = wire.attributes("req-1", "resize", 1700000000.25, 2, 1700000100.5)
    assert attributes["Version"] == {"DataType": "Number", "StringValue": str(wire.VERSION)}
    assert set(attributes) <= set(wire.RECEIVE_ATTRIBUTES)
    event = wire.decode(received(attributes))
    assert event == wire.WireEvent("req-1", "resize", 1700000000.25, 2, 1700000100.5)


def test_attempts_before_a_delivery_count_every_receive_but_the_current_one() -> None:
    attributes = wire.attributes("req-1", "resize", 0.0, 1)
    assert wire.decode(received(attributes, receive_count=1)).attempts == 1
    assert wire.decode(received(attributes, receive_count=3)).attempts == 3


def test_a_message_without_a_version_is_read_as_version_one() -> None:
    attributes = wire.attributes("req-1", "resize", 0.0, 0)
    del attributes["Version"]  # as a process from before the field sends it
    assert wire.decode(received(attributes)).request_id == "req-1"


def test_a_newer_version_and_a_foreign_message_are_refused_with_a_reason() -> None:
    attributes = wire.attributes("req-1", "resize", 0.0, 0)
    attributes["Version"]["StringValue"] = str(wire.VERSION + 1)
    with pytest.raises(ValueError, match="newer than this process understands"):
        wire.decode(received(attributes))
    with pytest.raises(ValueError, match="lacks eventflow's attributes"):
        wire.decode(received({"Foo": {"DataType": "String", "StringValue": "x"}}))


def test_not_before_is_early_only_by_more_than_half_a_second() -> None:
    assert not wire.is_early(None, 100.0)
    assert wire.is_early(100.0, 99.0)
    assert not wire.is_early(100.0, 99.6)


def test_a_resend_longer_than_sqs_can_delay_is_set_one_attempt_short() -> None:
    assert wire.resend_delay(due=130.2, now=100.0, max_delay=900) == (31, 0)
    assert wire.resend_delay(due=5000.0, now=100.0, max_delay=900) == (900, -1)
    assert wire.resend_delay(due=50.0, now=100.0, max_delay=900) == (0, 0)


def test_the_body_is_compact_json_with_non_ascii_kept() -> None:
    body = wire.encode_body({"name": "Zoë", "n": [1, 2]})
    assert body == '{"name":"Zoë","n":[1,2]}'
    assert wire.size_of(body, "req-1", "resize") > len(body.encode())


def test_a_refused_message_still_names_what_it_can() -> None:
    attributes = wire.attributes("req-7", "resize", 0.0, 0)
    attributes["Attempt"]["StringValue"] = "x"
    with pytest.raises(ValueError, match="lacks eventflow's attributes"):
        wire.decode(received(attributes))
    assert wire.identity(received(attributes)) == ("req-7", "resize")
    assert wire.identity({}) == ("", "")


def test_a_trace_context_travels_in_an_optional_attribute() -> None:
    pairs = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    trace = wire.encode_trace(pairs)
    attributes = wire.attributes("req-1", "resize", 0.0, 0, None, trace)
    assert set(attributes) <= set(wire.RECEIVE_ATTRIBUTES)
    assert wire.decode(received(attributes)).trace_context == pairs
    assert wire.size_of("{}", "req-1", "resize", trace) > wire.size_of("{}", "req-1", "resize")
    # none to carry: no attribute, and the version stays (older readers ignore the field)
    assert wire.encode_trace(None) is None and wire.encode_trace({}) is None
    plain = wire.attributes("req-1", "resize", 0.0, 0)
    assert "TraceContext" not in plain and plain["Version"]["StringValue"] == "1"


def test_a_message_without_or_with_an_unreadable_trace_context_still_decodes() -> None:
    # a message from a process before the field, and ones whose field is not an object
    assert wire.decode(received(wire.attributes("r", "h", 0.0, 0))).trace_context is None
    for text in ("not json", "[1]", '{"traceparent": 1}'):
        attributes = wire.attributes("r", "h", 0.0, 0)
        attributes["TraceContext"] = {"DataType": "String", "StringValue": text}
        event = wire.decode(received(attributes))
        assert (event.request_id, event.trace_context) == ("r", None)

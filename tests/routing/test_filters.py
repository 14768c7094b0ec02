"""FilterPolicy (SNS, both scopes), S3KeyFilter and Route."""

from __future__ import annotations

import json
from typing import Any

import pytest

import eventflow
from eventflow.routing import EventPattern, FilterPolicy, Route, S3KeyFilter


def attrs(**values: tuple[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"Type": kind, "Value": value} for name, (kind, value) in values.items()}


# SNS's documented example (sns-subscription-filter-policies)
POLICY = {
    "store": ["example_corp"],
    "price_usd": [{"numeric": [">=", 100]}],
    "customer_interests": ["rugby"],
}
MATCHING = attrs(
    store=("String", "example_corp"),
    price_usd=("Number", "120"),
    customer_interests=("String.Array", '["soccer", "rugby"]'),
    encoded=("Binary", "AAEC"),
)


def test_attribute_policy_documented_example() -> None:
    policy = FilterPolicy(POLICY)
    assert policy.matches("any message", MATCHING)
    missing = {k: v for k, v in MATCHING.items() if k != "customer_interests"}
    assert not policy.matches("m", missing)
    assert not policy.matches("m", {**MATCHING, **attrs(price_usd=("Number", "99.9"))})
    assert not policy.matches("m", {**MATCHING, **attrs(store=("String", "Example_Corp"))})
    assert not policy.matches("m", None)


@pytest.mark.parametrize(
    ("policy", "attributes", "expected"),
    [
        ({"a": ["x"]}, attrs(a=("String", "x")), True),
        ({"a": [{"prefix": "ord"}]}, attrs(a=("String", "order")), True),
        ({"a": [{"suffix": "der"}]}, attrs(a=("String", "order")), True),
        ({"a": [{"equals-ignore-case": "ORDER"}]}, attrs(a=("String", "order")), True),
        ({"a": [{"anything-but": ["order"]}]}, attrs(a=("String", "order")), False),
        ({"a": [{"anything-but": {"prefix": "ord"}}]}, attrs(a=("String", "other")), True),
        ({"a": [{"anything-but": {"suffix": "er"}}]}, attrs(a=("String", "order")), False),
        ({"a": [{"exists": True}]}, attrs(a=("String", "x")), True),
        ({"a": [{"exists": False}]}, attrs(b=("String", "x")), True),
        ({"a": [{"exists": False}]}, attrs(a=("String", "x")), False),
        ({"a": [{"exists": True}]}, attrs(a=("Binary", "AAEC")), False),  # Binary is ignored
        ({"n": [{"numeric": ["=", 301.5]}]}, attrs(n=("Number", "301.5")), True),
        ({"n": [{"numeric": [">", 0, "<=", 150]}]}, attrs(n=("Number", "150")), True),
        ({"n": [100]}, attrs(n=("Number", "100.0")), True),
        ({"n": [100]}, attrs(n=("String", "100")), False),  # a String is not a number
        ({"n": [{"numeric": [">", 1]}]}, attrs(n=("String", "5")), False),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, attrs(ip=("String", "10.0.0.7")), True),
        ({"tags": ["b"]}, attrs(tags=("String.Array", '["a", "b"]')), True),
        ({"tags": [1]}, attrs(tags=("String.Array", "[1, 2]")), True),
        ({"tags": ["c"]}, attrs(tags=("String.Array", '["a", "b"]')), False),
        ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, attrs(b=("String", "y")), True),
        ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, attrs(b=("String", "z")), False),
    ],
)
def test_attribute_operators(policy: dict[str, Any], attributes: Any, expected: bool) -> None:
    assert FilterPolicy(policy).matches("message", attributes) is expected


def test_body_policy_documented_example() -> None:
    policy = FilterPolicy(
        {"order": {"status": [{"anything-but": ["cancelled"]}]}}, scope="MessageBody"
    )
    assert policy.matches(json.dumps({"order": {"status": "paid"}}), None)
    assert policy.matches({"order": {"status": "paid"}}, None)
    assert not policy.matches(json.dumps({"order": {"status": "cancelled"}}), None)
    assert not policy.matches(json.dumps({"order": {}}), None)
    assert not policy.matches("not json", attrs(order=("String", "x")))
    assert not policy.matches("[1]", None)


def test_body_policy_nested_arrays_and_numbers() -> None:
    policy = FilterPolicy(
        {"items": {"sku": [{"prefix": "A-"}], "qty": [{"numeric": [">", 2]}]}},
        scope="MessageBody",
    )
    assert policy.matches(
        json.dumps({"items": [{"sku": "B-1", "qty": 9}, {"sku": "A-2", "qty": 3}]})
    )
    assert not policy.matches(
        json.dumps({"items": [{"sku": "B-1", "qty": 9}, {"sku": "A-2", "qty": 1}]})
    )


@pytest.mark.parametrize(
    ("policy", "scope", "message"),
    [
        (
            {"a": {"b": ["x"]}},
            "MessageAttributes",
            "at a: a filter policy on message attributes is flat",
        ),
        ({"a": [{"wildcard": "x*"}]}, "MessageAttributes", 'do not support "wildcard"'),
        ({"a": [{"numeric": [">", 2e9]}]}, "MessageBody", "from -1e9 to 1e9"),
        ({"a": []}, "MessageBody", "Invalid filter policy at a: empty lists"),
        ("nope", "MessageBody", "filter policy is not valid JSON"),
    ],
)
def test_invalid_policies(policy: Any, scope: Any, message: str) -> None:
    with pytest.raises(eventflow.InvalidPattern, match=message):
        FilterPolicy(policy, scope=scope)


def test_invalid_scope() -> None:
    with pytest.raises(eventflow.ConfigurationError, match="MessageBody"):
        FilterPolicy({"a": ["x"]}, scope="Body")  # type: ignore[arg-type]


# -- S3 ----------------------------------------------------------------------------------------


def s3_event(key: str, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": name,
                "s3": {"bucket": {"name": "photos"}, "object": {"key": key, "size": 1}},
            }
        ]
    }


def test_s3_key_filter() -> None:
    jpgs = S3KeyFilter(prefix="in/", suffix=".jpg")
    assert jpgs.matches(s3_event("in/a.jpg"))
    assert jpgs.matches(json.dumps(s3_event("in/a.jpg")))
    assert not jpgs.matches(s3_event("out/a.jpg"))
    assert not jpgs.matches(s3_event("in/a.png"))
    assert not jpgs.matches(s3_event("in/a.jpg", "ObjectRemoved:Delete"))
    # keys are compared URL-encoded, as S3 sends them
    assert S3KeyFilter(prefix="my+photos/").matches(s3_event("my+photos/x"))
    removed = S3KeyFilter(events=["s3:ObjectRemoved:Delete", "s3:ObjectCreated:Copy"])
    assert removed.matches(s3_event("k", "ObjectRemoved:Delete"))
    assert removed.matches(s3_event("k", "ObjectCreated:Copy"))
    assert not removed.matches(s3_event("k", "ObjectRemoved:DeleteMarkerCreated"))
    assert S3KeyFilter(events=["s3:*"]).matches(s3_event("k", "ObjectRestore:Completed"))
    assert not S3KeyFilter().matches({"Records": "nope"})
    assert not S3KeyFilter().matches({"detail": {}})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": ""}, "prefix must be a string of 1 to 1,024"),
        ({"suffix": "x" * 1025}, "suffix must be"),
        ({"events": "s3:ObjectCreated:*"}, "list of event types"),
        ({"events": []}, "events is empty"),
        ({"events": ["ObjectCreated:*"]}, "not an S3 event type"),
        ({"events": ["s3:*:Put"]}, "only at the end"),
    ],
)
def test_invalid_s3_filters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(eventflow.InvalidPattern, match=message):
        S3KeyFilter(**kwargs)


def test_route_takes_patterns_filters_and_functions() -> None:
    assert isinstance(Route("h", {"source": ["x"]}).match, EventPattern)
    route = Route("h", lambda event: True)
    assert route.handler_name == "h"
    with pytest.raises(eventflow.ConfigurationError, match="A route's match must be"):
        Route("h", 42)  # type: ignore[arg-type]
    with pytest.raises(eventflow.InvalidPattern):
        Route("h", {"source": "x"})

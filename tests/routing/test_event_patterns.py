"""EventPattern: every operator of EventBridge's content filtering, AWS's documented examples,
Event Ruler's corpus, clear errors for invalid patterns, and the compiled matcher agreeing
with the plain reference matcher (hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventflow
from eventflow._matcher import PatternSet, reference_matches
from eventflow._patterns import compile_pattern
from eventflow.routing import EventPattern

RULER = Path(__file__).parent.parent / "fixtures/events/eventbridge/event-patterns/event-ruler"

# the event of the spec's operator table (§7.1)
E = {
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {
        "bucket": {"name": "b1"},
        "object": {"key": "uploads/Photo.PNG", "size": 1024, "tags": ["a", "b"]},
        "ip": "10.0.0.33",
        "nul": None,
        "empty": "",
        "price": 300,
        "priceStr": "300",
        "f": 3.0e2,
    },
}


def both(pattern: Any, event: Any) -> bool:
    """The compiled answer, checked against the reference matcher's."""
    compiled = EventPattern(pattern).matches(event)
    assert reference_matches(compile_pattern(pattern), event) is compiled
    return compiled


def detail(**fields: Any) -> dict[str, Any]:
    return {"detail": fields}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # exact values: strings (case-sensitive), numbers, null, empty string, booleans
        (detail(bucket={"name": ["b1"]}), True),
        (detail(bucket={"name": ["B1"]}), False),
        (detail(price=[300]), True),
        (detail(price=["300"]), False),
        (detail(priceStr=[300]), False),
        (detail(f=[300]), True),
        (detail(nul=[None]), True),
        (detail(zzz=[None]), False),
        (detail(empty=[""]), True),
        (detail(nul=[""]), False),
        (detail(empty=[None]), False),
        ({"source": ["aws.ec2", "aws.s3"]}, True),
        # prefix / suffix / equals-ignore-case and their combinations
        (detail(object={"key": [{"prefix": "uploads/"}]}), True),
        (detail(object={"key": [{"prefix": "Uploads/"}]}), False),
        (detail(price=[{"prefix": "3"}]), False),
        (detail(object={"key": [{"prefix": {"equals-ignore-case": "UPLOADS/"}}]}), True),
        (detail(object={"key": [{"suffix": ".PNG"}]}), True),
        (detail(object={"key": [{"suffix": ".png"}]}), False),
        (detail(object={"key": [{"suffix": {"equals-ignore-case": ".png"}}]}), True),
        ({"detail-type": [{"equals-ignore-case": "object created"}]}, True),
        ({"detail-type": [{"equals-ignore-case": "object"}]}, False),
        ({"source": [{"exact": "aws.s3"}]}, True),
        # wildcard
        (detail(object={"key": [{"wildcard": "uploads/*.PNG"}]}), True),
        (detail(object={"key": [{"wildcard": "*/x/*"}]}), False),
        (detail(object={"key": [{"wildcard": "*"}]}), True),
        (detail(object={"key": [{"wildcard": "uploads/Photo.PN"}]}), False),
        # anything-but: a value, a list, numbers, prefix, suffix, ignore-case, wildcard
        (detail(bucket={"name": [{"anything-but": "b2"}]}), True),
        (detail(bucket={"name": [{"anything-but": ["b1", "b2"]}]}), False),
        (detail(price=[{"anything-but": [100, 200]}]), True),
        (detail(price=[{"anything-but": 300}]), False),
        (detail(price=[{"anything-but": 300.0}]), False),
        (detail(object={"key": [{"anything-but": {"prefix": "tmp/"}}]}), True),
        (detail(object={"key": [{"anything-but": {"prefix": "uploads/"}}]}), False),
        (detail(object={"key": [{"anything-but": {"prefix": ["tmp/", "uploads/"]}}]}), False),
        (detail(object={"key": [{"anything-but": {"suffix": ".jpg"}}]}), True),
        (detail(object={"key": [{"anything-but": {"suffix": ".PNG"}}]}), False),
        (detail(bucket={"name": [{"anything-but": {"equals-ignore-case": "B2"}}]}), True),
        (detail(bucket={"name": [{"anything-but": {"equals-ignore-case": ["B1"]}}]}), False),
        (detail(object={"key": [{"anything-but": {"wildcard": "*/x/*"}}]}), True),
        (detail(object={"key": [{"anything-but": {"wildcard": "uploads/*"}}]}), False),
        (detail(object={"tags": [{"anything-but": "a"}]}), True),  # "b" is not "a"
        (detail(zzz=[{"anything-but": "x"}]), False),  # the field must exist
        (detail(zzz=[{"anything-but": "x"}, {"exists": False}]), True),
        # numeric
        (detail(price=[{"numeric": [">", 0, "<=", 300]}]), True),
        (detail(price=[{"numeric": [">", 0, "<", 300]}]), False),
        (detail(price=[{"numeric": [">=", 300]}]), True),
        (detail(price=[{"numeric": [">", 300]}]), False),
        (detail(price=[{"numeric": ["<", 301]}]), True),
        (detail(price=[{"numeric": ["=", 300]}]), True),
        (detail(f=[{"numeric": ["=", 300]}]), True),
        (detail(priceStr=[{"numeric": ["=", 300]}]), False),
        (detail(object={"size": [{"numeric": [">", 1e3, "<", 6e9]}]}), True),
        # cidr, IPv4 and IPv6
        (detail(ip=[{"cidr": "10.0.0.0/24"}]), True),
        (detail(ip=[{"cidr": "10.0.1.0/24"}]), False),
        (detail(ip=[{"cidr": "10.0.0.0/8"}]), True),
        # exists
        (detail(ip=[{"exists": True}]), True),
        (detail(nul=[{"exists": True}]), True),  # null counts as present
        (detail(bucket=[{"exists": True}]), False),  # an object is not a leaf
        (detail(zzz=[{"exists": False}]), True),
        (detail(ip=[{"exists": False}]), False),
        (detail(bucket=[{"exists": False}]), True),
        # arrays in the event: any element
        (detail(object={"tags": ["b", "z"]}), True),
        (detail(object={"tags": ["z"]}), False),
        # object vs value
        (detail(bucket=["b1"]), False),
        # $or, at the top and nested
        (
            {"$or": [{"source": ["aws.ec2"]}, {"detail": {"price": [{"numeric": [">", 100]}]}}]},
            True,
        ),
        ({"$or": [{"source": ["aws.ec2"]}, {"detail-type": ["x"]}]}, False),
        ({"detail": {"$or": [{"price": [1]}, {"bucket": {"name": ["b1"]}}]}}, True),
        (
            {
                "source": ["aws.s3"],
                "$or": [
                    {"detail-type": ["nope"]},
                    {"detail": {"$or": [{"ip": [{"cidr": "10.0.0.0/30"}]}, {"price": [300]}]}},
                ],
            },
            True,
        ),
    ],
)
def test_operators_against_the_spec_event(pattern: dict[str, Any], expected: bool) -> None:
    assert both(pattern, E) is expected


def test_cidr_ipv6_and_ip_spellings() -> None:
    event = {"detail": {"ip": "2001:db8::1"}}
    assert both({"detail": {"ip": [{"cidr": "2001:db8::/32"}]}}, event)
    assert not both({"detail": {"ip": [{"cidr": "2001:db9::/32"}]}}, event)
    assert not both({"detail": {"ip": [{"cidr": "10.0.0.0/8"}]}}, event)
    # an exact address matches another spelling of the same address, as in Event Ruler
    assert both({"detail": {"ip": ["2001:0db8:0:0:0:0:0:1"]}}, event)
    assert not both({"detail": {"ip": [{"cidr": "10.0.0.0/8"}]}}, {"detail": {"ip": "nope"}})


def test_wildcard_escapes() -> None:
    assert both({"k": [{"wildcard": "a\\*b"}]}, {"k": "a*b"})
    assert not both({"k": [{"wildcard": "a\\*b"}]}, {"k": "axb"})
    assert both({"k": [{"wildcard": "a\\\\b*"}]}, {"k": "a\\bcd"})
    assert both({"k": [{"wildcard": "*.txt"}]}, {"k": "dir/sub\nline.txt"})


def test_booleans_are_not_numbers_or_strings() -> None:
    assert both({"b": [True]}, {"b": True})
    assert not both({"b": [True]}, {"b": 1})
    assert not both({"b": [1]}, {"b": True})
    assert not both({"b": ["true"]}, {"b": True})
    assert not both({"b": [{"numeric": [">", 0]}]}, {"b": True})
    assert both({"b": [False, None]}, {"b": None})


# -- AWS's documented examples (EventBridge user guide, content filtering) ------------------

EC2_EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {
        "instance-id": "i-1234567890abcdef0",
        "state": "terminated",
        "c-count": 5,
        "d-count": 12,
        "x-limit": 301.8,
        "source-ip": "10.0.0.123",
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            {
                "source": ["aws.ec2"],
                "detail-type": ["EC2 Instance State-change Notification"],
                "detail": {"state": ["terminated"]},
            },
            True,
        ),
        ({"time": [{"prefix": "2017-12-22"}]}, True),
        ({"detail": {"state": [{"anything-but": "initializing"}]}}, True),
        ({"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}, True),
        ({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, True),
        (
            {
                "detail": {
                    "c-count": [{"numeric": [">", 0, "<=", 5]}],
                    "d-count": [{"numeric": ["<", 10]}],
                    "x-limit": [{"numeric": ["=", 3.018e2]}],
                }
            },
            False,  # d-count is 12
        ),
        (
            {
                "detail": {
                    "c-count": [{"numeric": [">", 0, "<=", 5]}],
                    "x-limit": [{"numeric": ["=", 3.018e2]}],
                }
            },
            True,
        ),
        ({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, True),
        (
            {
                "resources": [
                    "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                    "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0",
                ]
            },
            True,
        ),
        ({"detail": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"d-count": [12]}]}}, True),
        ({"detail": {"instance-id": [{"wildcard": "i-*"}]}}, True),
        ({"detail": {"state": [{"exists": False}]}}, False),
    ],
)
def test_aws_documented_examples(pattern: dict[str, Any], expected: bool) -> None:
    assert both(pattern, EC2_EVENT) is expected


# -- Event Ruler's corpus -------------------------------------------------------------------

NOT_MATCHING = {
    "flat: 2-field exists, one missing",
    "flat: exact mismatch",
    "objarray: split",
    "objarray: 3-field, split 3 ways",
    "objarray: exact split",
    "objarray: prefix split",
    "primarray: no match",
    "nested: inner split",
    "nested: outer split",
    "nested2: split leaf",
    "mixed: array+scalar fail",
    "exists-false: present",
    "empty object",
    "empty array",
    "primarray: large + scalar, no match",
    "primarray: empty prim array",
    "mixed: obj-array split + prim-array",
    "suffix match split",
}


def test_ruler_correctness_cases_follow_their_names() -> None:
    cases = json.loads((RULER / "correctness-cases.json").read_text())
    assert len(cases) == 51
    results = {case["name"]: both(case["rule"], case["event"]) for case in cases}
    assert {name for name, hit in results.items() if not hit} == NOT_MATCHING


def test_ruler_nested_arrays_are_array_consistent() -> None:
    rules = {n: json.loads((RULER / f"arrayRule{n}.json").read_text()) for n in (1, 2, 3)}
    expected = {1: {1, 2}, 2: set(), 3: set(), 4: {3}}  # GenericMachineTest.nestedArraysTest
    for number, wanted in expected.items():
        event = json.loads((RULER / f"arrayEvent{number}.json").read_text())
        assert {n for n, rule in rules.items() if both(rule, event)} == wanted, number


def test_ruler_or_rules_compile_and_wrong_ones_are_refused() -> None:
    for rule in json.loads((RULER / "orRelationshipRules.json").read_text()):
        EventPattern(rule)
    for rule in json.loads((RULER / "wrongOrRelationshipRules.json").read_text()):
        with pytest.raises(eventflow.InvalidPattern, match=r"\$or"):
            EventPattern(rule)
    # with $or support on, as EventBridge runs Ruler, a misused "$or" is an error too
    for rule in json.loads((RULER / "normalRulesWithOrWording.json").read_text()):
        with pytest.raises(eventflow.InvalidPattern):
            EventPattern(rule)


def test_exists_false_is_array_consistent() -> None:
    pattern = {"d": {"a": [{"exists": True}], "b": [{"exists": False}]}}
    assert both(pattern, {"d": [{"a": 1, "b": 2}, {"a": 3}]})  # the second element has no b
    assert not both(pattern, {"d": [{"a": 1, "b": 2}]})


# -- text input ------------------------------------------------------------------------------


def test_json_text_for_pattern_and_event() -> None:
    pattern = EventPattern('{"source": ["aws.s3"]}')
    assert pattern.matches(json.dumps(E))
    assert pattern.pattern == {"source": ["aws.s3"]}
    assert not pattern.matches("[1, 2]")
    with pytest.raises(eventflow.InvalidEvent, match="not valid JSON"):
        pattern.matches("{nope")


# -- invalid patterns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{nope", "not valid JSON"),
        ([1], "must be a JSON object"),
        ({}, "at the top level: empty objects"),
        ({"source": "aws.s3"}, r"at source: a field must map to a list"),
        ({"source": []}, "at source: empty lists"),
        ({"detail": {}}, "at detail: empty objects"),
        ({"source": [["a"]]}, "at source: a value must be"),
        ({"a": [{"prefix": 1}]}, '"prefix" takes a string'),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "exactly one key"),
        ({"a": [{"prefix": {"nope": "x"}}]}, "equals-ignore-case"),
        ({"a": [{"regex": "x"}]}, "unknown operator 'regex'"),
        ({"detail": {"n": [{"numeric": [">", 0, ">", 5]}]}}, "at detail.n: the lower bound comes"),
        ({"a": [{"numeric": ["<", 5, ">", 1]}]}, "lower bound comes first"),
        ({"a": [{"numeric": [">", 5, "<", 1]}]}, "below the upper bound"),
        ({"a": [{"numeric": ["==", 5]}]}, "unknown numeric operator"),
        ({"a": [{"numeric": [">", "5"]}]}, "must be a number"),
        ({"a": [{"numeric": ["=", 5, "<", 6]}]}, "stands alone"),
        ({"a": [{"numeric": []}]}, '"numeric" takes a list'),
        ({"a": [{"anything-but": []}]}, "at least one value"),
        ({"a": [{"anything-but": ["x", 1]}]}, "strings only or numbers only"),
        ({"a": [{"anything-but": None}]}, "strings only or numbers only"),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "cannot be empty"),
        ({"a": [{"anything-but": {"numeric": [">", 1]}}]}, "unsupported anything-but form"),
        ({"a": [{"anything-but": {"prefix": 1}}]}, "takes strings"),
        ({"a": [{"exists": "yes"}]}, '"exists" takes true or false'),
        ({"a": [{"cidr": "10.0.0.1"}]}, "address block"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "not a valid IPv4 or IPv6 CIDR"),
        ({"a": [{"wildcard": "a**b"}]}, "consecutive '\\*' at position 2"),
        ({"a": [{"wildcard": "a\\b"}]}, "invalid escape at position 1"),
        ({"$or": [{"a": ["x"]}]}, "at least two objects"),
        ({"$or": {"a": ["x"]}}, "takes a list"),
        ({"$or": [{"a": ["x"]}, ["b"]]}, "must be an object"),
        ({"$or": [{"prefix": ["x"]}, {"a": ["b"]}]}, "operator, so it cannot be a field name"),
        (
            {"$or": [{"a": [i]} for i in range(40)], "b": {"$or": [{"c": [i]} for i in range(40)]}},
            "more than 1000 combinations",
        ),
    ],
)
def test_invalid_patterns_say_what_and_where(pattern: Any, message: str) -> None:
    with pytest.raises(eventflow.InvalidPattern, match=message) as raised:
        EventPattern(pattern)
    assert isinstance(raised.value, eventflow.ConfigurationError)
    assert str(raised.value).endswith(".")


# -- the compiled matcher agrees with the reference -----------------------------------------

KEYS = ["a", "b", "c"]
SCALARS = st.one_of(
    st.sampled_from(["x", "xy", "Xy", "yx", "10.0.0.1", ""]),
    st.sampled_from([0, 1, 2.5, -3, 300]),
    st.sampled_from([True, False, None]),
)


def _events() -> st.SearchStrategy[Any]:
    values = st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=3),
        ),
        max_leaves=8,
    )
    return st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=3)


LEAF_PATTERNS = st.one_of(
    SCALARS,
    st.builds(lambda s: {"prefix": s}, st.sampled_from(["x", "X", ""])),
    st.builds(lambda s: {"suffix": s}, st.sampled_from(["y", "x"])),
    st.builds(lambda s: {"prefix": {"equals-ignore-case": s}}, st.sampled_from(["x", "XY"])),
    st.builds(lambda s: {"equals-ignore-case": s}, st.sampled_from(["xy", "YX"])),
    st.builds(lambda s: {"wildcard": s}, st.sampled_from(["*y", "x*", "*"])),
    st.builds(lambda s: {"anything-but": s}, st.sampled_from(["x", ["x", "xy"], 1, [0, 300]])),
    st.builds(lambda s: {"anything-but": {"prefix": s}}, st.sampled_from(["x", "y"])),
    st.builds(
        lambda s: {"numeric": s},
        st.sampled_from(
            [[">", 0], ["<=", 1], [">=", -3, "<", 2.5], ["=", 300], ["<", 0], [">", -3, "<=", 300]]
        ),
    ),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.just({"cidr": "10.0.0.0/8"}),
)


def _patterns() -> st.SearchStrategy[Any]:
    leaf = st.lists(LEAF_PATTERNS, min_size=1, max_size=3)
    fields = st.recursive(
        st.dictionaries(st.sampled_from(KEYS), leaf, min_size=1, max_size=2),
        lambda inner: st.one_of(
            st.dictionaries(st.sampled_from(KEYS), st.one_of(leaf, inner), min_size=1, max_size=3),
            st.builds(lambda branches: {"$or": branches}, st.lists(inner, min_size=2, max_size=2)),
        ),
        max_leaves=3,
    )
    return fields


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns=st.lists(_patterns(), min_size=1, max_size=5), event=_events())
def test_compiled_matching_agrees_with_the_reference(patterns: list[Any], event: Any) -> None:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(compile_pattern(pattern))
        except eventflow.InvalidPattern:
            continue  # e.g. $or with a key named like an operator
    matcher = PatternSet(compiled)
    expected = [n for n, c in enumerate(compiled) if reference_matches(c, event)]
    assert matcher.matching(event) == expected


def test_indexed_ranges_and_affixes_agree_with_the_reference_on_a_grid() -> None:
    bounds = [-5, 0, 2.5, 10]
    ranges = [[op, b] for op in ("<", "<=", ">", ">=", "=") for b in bounds]
    ranges += [
        [lo, a, hi, b]
        for lo in (">", ">=")
        for hi in ("<", "<=")
        for a in bounds
        for b in bounds
        if a < b
    ]
    texts = ["", "a", "ab", "AB", "abc", "b", "ba", "cab"]
    affixes = [{op: t} for op in ("prefix", "suffix") for t in texts]
    affixes += [{op: {"equals-ignore-case": t}} for op in ("prefix", "suffix") for t in texts]
    affixes += [{"equals-ignore-case": t} for t in texts]
    patterns = [compile_pattern({"v": [{"numeric": r}]}) for r in ranges]
    patterns += [compile_pattern({"v": [a]}) for a in affixes]
    matcher = PatternSet(patterns)
    values: list[Any] = [-100, -5, -1, 0, 1, 2.5, 3, 10, 11, True, None, *texts, "Ab", "xyz"]
    for value in values:
        event = {"v": value}
        expected = [n for n, p in enumerate(patterns) if reference_matches(p, event)]
        assert matcher.matching(event) == expected, value

"""What every event view shares: the documentation hints, typed field access that raises
:class:`~eventflow.InvalidEvent` with a sentence naming the field, and the views' base."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from .._errors import InvalidEvent

_S3_HINT: Final = (
    "expected an S3 event notification "
    "(see https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)"
)
_S3_EB_HINT: Final = (
    "expected an S3 event delivered by EventBridge "
    "(see https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)"
)
_SNS_HINT: Final = (
    "expected an SNS Notification "
    "(see https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html)"
)
_SNS_LAMBDA_HINT: Final = (
    "expected an SNS event for Lambda "
    "(see https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html)"
)
_SQS_HINT: Final = (
    "expected an SQS event for Lambda "
    "(see https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)"
)
_EB_HINT: Final = (
    "expected an EventBridge event "
    "(see https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html)"
)

_MISSING: Final = object()


# --------------------------------------------------------------------------- field access helpers


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Where a mapping sits in the event, and what shape was expected there."""

    where: str
    hint: str

    def fail(self, problem: str) -> InvalidEvent:
        message = f"{self.where} {problem}; {self.hint}."
        return InvalidEvent(message[0].upper() + message[1:])


def _nest(inner: str, origin: str) -> str:
    return f"{inner} in {origin}" if origin else inner


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _lookup(obj: dict[str, Any], path: str, ctx: _Ctx) -> Any:
    """Walk a dotted path; return ``_MISSING`` if a step is absent, raise if a step is no object."""
    current: Any = obj
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(current, dict):
            walked = ".".join(parts[:depth])
            raise ctx.fail(f"has '{walked}' of type {_json_type(current)}, expected an object")
        if part not in current:
            return _MISSING
        current = current[part]
    return current


def _typed(obj: dict[str, Any], path: str, ctx: _Ctx, kind: type, *, required: bool) -> Any:
    value = _lookup(obj, path, ctx)
    if value is _MISSING or (value is None and not required):
        if required:
            raise ctx.fail(f"has no '{path}' field")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        expected = {str: "a string", int: "an integer", dict: "an object", list: "an array"}[kind]
        raise ctx.fail(f"has '{path}' of type {_json_type(value)}, expected {expected}")
    return value


def _str(obj: dict[str, Any], path: str, ctx: _Ctx) -> str:
    value: str = _typed(obj, path, ctx, str, required=True)
    return value


def _opt_str(obj: dict[str, Any], path: str, ctx: _Ctx) -> str | None:
    value: str | None = _typed(obj, path, ctx, str, required=False)
    return value


def _opt_int(obj: dict[str, Any], path: str, ctx: _Ctx) -> int | None:
    value: int | None = _typed(obj, path, ctx, int, required=False)
    return value


def _obj(obj: dict[str, Any], path: str, ctx: _Ctx) -> dict[str, Any]:
    value: dict[str, Any] = _typed(obj, path, ctx, dict, required=True)
    return value


def _str_tuple(obj: dict[str, Any], path: str, ctx: _Ctx) -> tuple[str, ...]:
    values: list[Any] = _typed(obj, path, ctx, list, required=True)
    for index, item in enumerate(values):
        if not isinstance(item, str):
            raise ctx.fail(f"has '{path}[{index}]' of type {_json_type(item)}, expected a string")
    return tuple(values)


def _str_map(obj: dict[str, Any], path: str, ctx: _Ctx) -> dict[str, str]:
    """An optional object of strings (``{}`` when absent or null)."""
    values: dict[str, Any] = _typed(obj, path, ctx, dict, required=False) or {}
    for name, item in values.items():
        if not isinstance(item, str):
            raise ctx.fail(f"has '{path}.{name}' of type {_json_type(item)}, expected a string")
    return values


def _attr_map(obj: dict[str, Any], path: str, ctx: _Ctx) -> dict[str, dict[str, Any]]:
    """An optional object of objects, as message attributes are (``{}`` when absent or null)."""
    values: dict[str, Any] = _typed(obj, path, ctx, dict, required=False) or {}
    for name, item in values.items():
        if not isinstance(item, dict):
            raise ctx.fail(f"has '{path}.{name}' of type {_json_type(item)}, expected an object")
    return values


def _first_str(obj: dict[str, Any], paths: tuple[str, ...], ctx: _Ctx) -> str | None:
    """The first of several spellings that is present (SNS URL fields differ by delivery)."""
    for path in paths:
        value = _opt_str(obj, path, ctx)
        if value is not None:
            return value
    return None


def _decode(text: str, what: str, ctx: _Ctx) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ctx.fail(f"has {what} that is not JSON ({exc})") from exc
    except RecursionError as exc:
        raise ctx.fail(f"has {what} nested too deeply to decode") from exc


def _require_dict(event: object, caller: str, hint: str) -> dict[str, Any]:
    if isinstance(event, dict):
        return event
    advice = ""
    if isinstance(event, str | bytes | bytearray):
        advice = "; if you hold the JSON text, decode it with json.loads() first"
    raise InvalidEvent(
        f"{caller}() expects the event as a dict (decoded JSON), got {type(event).__name__}"
        f"{advice}; {hint}."
    )


def _nested_dict(value: Any, where: str, hint: str) -> dict[str, Any]:
    """A decoded message or body must itself be a JSON object."""
    if not isinstance(value, dict):
        raise _Ctx(where, hint).fail(f"is a JSON {_json_type(value)}, expected an object")
    return value


def _records(event: dict[str, Any], ctx: _Ctx) -> list[dict[str, Any]]:
    records: list[Any] = _typed(event, "Records", ctx, list, required=True)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ctx.fail(
                f"has 'Records[{index}]' of type {_json_type(record)}, expected an object"
            )
    return records


def _record_source(record: dict[str, Any], index: int, origin: str, hint: str) -> str:
    """``eventSource`` (S3, SQS) or ``EventSource`` (SNS) of ``Records[index]``."""
    ctx = _Ctx(_nest(f"event record {index}", origin), hint)
    if "eventSource" in record:
        return _str(record, "eventSource", ctx)
    if "EventSource" in record:
        return _str(record, "EventSource", ctx)
    raise ctx.fail("has no 'eventSource' field")


_VIEW_OF_SOURCE: Final = {"aws:s3": "S3Event", "aws:sns": "SNSEvent", "aws:sqs": "SQSEvent"}
_HINT_OF_VIEW: Final = {
    "S3Event": _S3_HINT,
    "SNSEvent": _SNS_HINT,
    "SQSEvent": _SQS_HINT,
    "EventBridgeEvent": _EB_HINT,
}


def _wrong_source(source: str, index: int, origin: str, view: str, accepted: str) -> InvalidEvent:
    """The error for ``Records[index]`` whose eventSource ``view`` does not read."""
    other = _VIEW_OF_SOURCE.get(source)
    advice = f" (read {source!r} records with {other})" if other else ""
    return _Ctx(_nest(f"event record {index}", origin), _HINT_OF_VIEW[view]).fail(
        f"has eventSource {source!r}; {view} accepts {accepted}{advice}"
    )


def _key_of(event: dict[str, Any]) -> str:
    from .._idempotency import natural_key

    return natural_key(event)


def _opt_bool(obj: dict[str, Any], path: str, ctx: _Ctx) -> bool | None:
    value = _lookup(obj, path, ctx)
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, bool):
        raise ctx.fail(f"has '{path}' of type {_json_type(value)}, expected a boolean")
    return value


def _dict_list(obj: dict[str, Any], path: str, ctx: _Ctx) -> list[dict[str, Any]]:
    values: list[Any] = _typed(obj, path, ctx, list, required=True)
    for index, item in enumerate(values):
        if not isinstance(item, dict):
            raise ctx.fail(f"has '{path}[{index}]' of type {_json_type(item)}, expected an object")
    return values


def _json_in_string(obj: dict[str, Any], path: str, ctx: _Ctx, *, required: bool) -> Any:
    """A field that holds JSON text (Config's invokingEvent and ruleParameters)."""
    text = _typed(obj, path, ctx, str, required=required)
    if text is None:
        return None
    return _decode(text, f"a '{path}' string", ctx)


class _View:
    """What every view shares: ``from_dict`` first checks that it was given a dict.

    A view names its ``_hint`` (what was expected, with the AWS documentation page) and
    starts ``from_dict`` with :meth:`_input`.
    """

    __slots__ = ()
    _hint: ClassVar[str]

    @classmethod
    def _input(cls, event: object, caller: str = "from_dict") -> tuple[dict[str, Any], _Ctx]:
        """``event`` as a dict, and the context of its top level; raises InvalidEvent."""
        data = _require_dict(event, f"{cls.__name__}.{caller}", cls._hint)
        return data, _Ctx("the event", cls._hint)

"""Routing: which handler gets which event, in the filter languages of AWS.

In AWS, EventBridge rules select events by *event pattern*, SNS subscriptions by *filter
policy* and S3 notifications by *key prefix and suffix*. The same selections, here:

=================================  ======================================================
:class:`EventPattern`              EventBridge's content filtering, whole: exact values,
                                   ``prefix``, ``suffix``, ``equals-ignore-case``,
                                   ``wildcard``, ``anything-but`` (all forms), ``numeric``,
                                   ``exists``, ``cidr``, ``$or``, arrays, nesting
:class:`FilterPolicy`              SNS filter policies on message attributes or on the
                                   JSON message body
:class:`S3KeyFilter`               S3 notification filters: event types, key prefix/suffix
:class:`Route`                     a handler and one of the above (or a predicate), given to
                                   ``SQSSource`` and ``SNSEndpoint`` as a list
=================================  ======================================================

Patterns are validated when built (:class:`eventflow.InvalidPattern` names the field and
the problem) and compiled: a source with many routes runs each event through one state
machine that looks its values up in indexes of the values the patterns name, as Event
Ruler does, instead of trying the routes one by one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._errors import ConfigurationError, InvalidEvent, InvalidPattern
from ._matcher import PatternSet
from ._patterns import Compiled, compile_pattern

if TYPE_CHECKING:
    from ._handler import Handler

__all__ = (
    "EventPattern",
    "FilterPolicy",
    "InvalidPattern",
    "Route",
    "Router",
    "S3KeyFilter",
)


def _event_object(event: Any, what: str) -> Any:
    if isinstance(event, str | bytes):
        try:
            return json.loads(event)
        except ValueError as exc:
            raise InvalidEvent(f"The {what} is not valid JSON: {exc}.") from None
    return event


class EventPattern:
    """An EventBridge event pattern.

    Args:
        pattern: The pattern, as a mapping or as JSON text.

    Raises:
        InvalidPattern: The pattern breaks a rule of the language; the message names the
            field and the problem.

    Example::

        EventPattern({"source": ["com.example.orders"],
                      "detail": {"total": [{"numeric": [">", 100]}]}})
    """

    __slots__ = ("_compiled", "_matcher", "_source")

    def __init__(self, pattern: Mapping[str, Any] | str | bytes) -> None:
        self._compiled: Compiled = compile_pattern(pattern, "eventbridge")
        self._source = json.loads(pattern) if isinstance(pattern, str | bytes) else pattern
        self._matcher = PatternSet([self._compiled])

    @property
    def pattern(self) -> Any:
        """The pattern as given (parsed, when it was JSON text)."""
        return self._source

    def matches(self, event: Mapping[str, Any] | str | bytes) -> bool:
        """Does ``event`` (a mapping or JSON text) match, as EventBridge would decide?

        Raises:
            InvalidEvent: ``event`` is text that is not JSON.
        """
        return bool(self._matcher.matching(_event_object(event, "event")))

    def __repr__(self) -> str:
        return f"EventPattern({json.dumps(self._source, default=str)})"


def _attribute_value(attribute: Any) -> tuple[bool, Any]:
    """The value a filter policy sees for an SNS message attribute; (False, None) to skip it."""
    if not isinstance(attribute, Mapping):
        return True, attribute  # already a plain value
    kind = str(attribute.get("Type", attribute.get("DataType", "String")))
    value = attribute.get("Value", attribute.get("StringValue"))
    if kind.startswith("Binary") or value is None:
        return False, None  # SNS filter policies ignore Binary attributes
    if kind.startswith("Number"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return True, value
        return True, int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "String.Array":
        try:
            items = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return True, value
        return True, list(items) if isinstance(items, list) else value
    return True, value


def _sns_attribute_values(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """SNS message attributes (``{"Type": ..., "Value": ...}``) as a filter policy sees them."""
    values: dict[str, Any] = {}
    for name, attribute in (attributes or {}).items():
        keep, value = _attribute_value(attribute)
        if keep:
            values[name] = value
    return values


def _sns_body_value(message: Any) -> Any:
    """The JSON object a ``MessageBody`` filter policy sees, or None when there is none."""
    if isinstance(message, str | bytes):
        try:
            message = json.loads(message)
        except ValueError:
            return None
    return message if isinstance(message, dict) else None


class FilterPolicy:
    """An SNS subscription filter policy.

    Args:
        policy: The policy, as a mapping or JSON text.
        scope: ``"MessageAttributes"`` (SNS's default) matches the message attributes
            (``String``, ``Number`` and ``String.Array`` in SNS's ``{"Type": ...,
            "Value": ...}`` form; ``Binary`` ones are ignored); ``"MessageBody"`` matches
            the message, which must be a JSON object, and allows nested keys.

    Raises:
        InvalidPattern: The policy breaks a rule of the language.
        ConfigurationError: ``scope`` is neither of the two.
    """

    __slots__ = ("_compiled", "_matcher", "_source", "scope")

    def __init__(
        self,
        policy: Mapping[str, Any] | str | bytes,
        *,
        scope: Literal["MessageAttributes", "MessageBody"] = "MessageAttributes",
    ) -> None:
        if scope not in ("MessageAttributes", "MessageBody"):
            raise ConfigurationError(
                f"scope must be 'MessageAttributes' or 'MessageBody' (SNS's FilterPolicyScope), "
                f"got {scope!r}."
            )
        self.scope = scope
        dialect: Literal["sns-attributes", "sns-body"] = (
            "sns-attributes" if scope == "MessageAttributes" else "sns-body"
        )
        self._compiled: Compiled = compile_pattern(policy, dialect)
        self._source = json.loads(policy) if isinstance(policy, str | bytes) else policy
        self._matcher = PatternSet([self._compiled])

    @property
    def policy(self) -> Any:
        """The policy as given (parsed, when it was JSON text)."""
        return self._source

    def subject(self, message: Any, attributes: Mapping[str, Any] | None) -> Any:
        """What this policy's scope looks at: the attribute values or the body object."""
        if self.scope == "MessageAttributes":
            return _sns_attribute_values(attributes)
        return _sns_body_value(message)

    def matches(self, message: Any, attributes: Mapping[str, Any] | None = None) -> bool:
        """Would SNS deliver this message (its ``Message`` and ``MessageAttributes``)?"""
        subject = self.subject(message, attributes)
        return subject is not None and bool(self._matcher.matching(subject))

    def __repr__(self) -> str:
        return f"FilterPolicy({json.dumps(self._source, default=str)}, scope={self.scope!r})"


class S3KeyFilter:
    """An S3 event notification filter: event types and an object-key prefix and suffix.

    Keys are compared in the form S3 sends them (URL-encoded, a space as ``+``), as S3's
    own filter rules are; ``*`` is a literal character there, not a wildcard.

    Args:
        prefix: The key must start with this (None: any).
        suffix: The key must end with this (None: any).
        events: S3 event types, such as ``"s3:ObjectCreated:*"`` or
            ``"s3:ObjectRemoved:Delete"``; a trailing ``*`` matches every subtype.

    Raises:
        InvalidPattern: An empty or overlong prefix or suffix, or an event type that is not
            ``s3:...``.
    """

    __slots__ = ("events", "prefix", "suffix")

    def __init__(
        self,
        prefix: str | None = None,
        suffix: str | None = None,
        events: Iterable[str] = ("s3:ObjectCreated:*",),
    ) -> None:
        for name, value in (("prefix", prefix), ("suffix", suffix)):
            if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 1024):
                raise InvalidPattern(
                    f"Invalid S3 key filter: {name} must be a string of 1 to 1,024 characters "
                    f"(S3's limit), got {value!r}; pass None for no {name}."
                )
        if isinstance(events, str):
            raise InvalidPattern(
                f"Invalid S3 key filter: events must be a list of event types, got the string "
                f"{events!r}; write events=[{events!r}]."
            )
        kept = tuple(events)
        if not kept:
            raise InvalidPattern("Invalid S3 key filter: events is empty; name at least one type.")
        for event in kept:
            if (
                not isinstance(event, str)
                or not event.startswith("s3:")
                or "*" in event[:-1]
                or len(event) <= 3
            ):
                raise InvalidPattern(
                    f"Invalid S3 key filter: event type {event!r} is not an S3 event type such "
                    "as 's3:ObjectCreated:*' or 's3:ObjectRemoved:Delete' (a '*' only at the end)."
                )
        self.prefix = prefix
        self.suffix = suffix
        self.events = kept

    def _event_matches(self, name: Any) -> bool:
        if not isinstance(name, str):
            return False
        full = name if name.startswith("s3:") else "s3:" + name
        return any(full.startswith(e[:-1]) if e.endswith("*") else full == e for e in self.events)

    def matches_record(self, record: Mapping[str, Any]) -> bool:
        """Does one S3 notification record pass the filter?"""
        if not self._event_matches(record.get("eventName")):
            return False
        obj = record.get("s3", {}).get("object", {}) if isinstance(record.get("s3"), dict) else {}
        key = obj.get("key") if isinstance(obj, dict) else None
        if not isinstance(key, str):
            return False
        if self.prefix is not None and not key.startswith(self.prefix):
            return False
        return self.suffix is None or key.endswith(self.suffix)

    def matches(self, event: Mapping[str, Any] | str | bytes) -> bool:
        """Does the S3 notification (``{"Records": [...]}``) have a record that passes?"""
        notification = _event_object(event, "S3 notification")
        records = notification.get("Records") if isinstance(notification, dict) else None
        if not isinstance(records, list):
            return False
        return any(isinstance(r, dict) and self.matches_record(r) for r in records)

    def __repr__(self) -> str:
        return (
            f"S3KeyFilter(prefix={self.prefix!r}, suffix={self.suffix!r}, events={self.events!r})"
        )


Match = EventPattern | FilterPolicy | S3KeyFilter | Callable[[Any], bool]


class Route:
    """A handler and the events it takes from a source with several handlers.

    Args:
        handler: The handler (or its name) that runs the matching events.
        match: An :class:`EventPattern` (or a pattern mapping, made into one): matched
            against EventBridge events; a :class:`FilterPolicy`: against SNS notifications;
            an :class:`S3KeyFilter`: against S3 notifications; or a function called with
            the payload the handler would get, returning whether it takes it (any kind).

    Raises:
        ConfigurationError: ``match`` is none of these.
    """

    __slots__ = ("handler", "match")

    def __init__(self, handler: str | Handler, match: Match | Mapping[str, Any]) -> None:
        if isinstance(match, Mapping):
            match = EventPattern(match)
        if not isinstance(match, EventPattern | FilterPolicy | S3KeyFilter) and not callable(match):
            raise ConfigurationError(
                f"A route's match must be an EventPattern, a FilterPolicy, an S3KeyFilter or a "
                f"function of the event returning a bool, got {match!r}."
            )
        self.handler = handler
        self.match: Match = match

    @property
    def handler_name(self) -> str:
        """The name of the route's handler."""
        return self.handler if isinstance(self.handler, str) else self.handler.name

    def __repr__(self) -> str:
        return f"Route({self.handler_name!r}, {self.match!r})"


class Router:
    """The compiled choice among routes, per kind of event, as AWS applies each filter.

    An :class:`EventPattern` applies to EventBridge events, a :class:`FilterPolicy` to
    SNS notifications, an :class:`S3KeyFilter` to S3 notifications, and a function to
    every event. The patterns (and the policies of each scope) of all routes are matched
    together in one state machine, whatever the number of routes.

    Args:
        routes: The routes, in order; answers keep that order.

    Raises:
        ConfigurationError: ``routes`` is empty or holds something else than routes.
    """

    __slots__ = (
        "_attribute_policies",
        "_body_policies",
        "_functions",
        "_patterns",
        "_s3",
        "routes",
    )

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        if not self.routes or not all(isinstance(r, Route) for r in self.routes):
            raise ConfigurationError(
                f"A router needs a non-empty list of Route(handler, match), got {routes!r}."
            )
        patterns: list[tuple[int, Compiled]] = []
        attribute_policies: list[tuple[int, Compiled]] = []
        body_policies: list[tuple[int, Compiled]] = []
        self._s3: list[tuple[int, S3KeyFilter]] = []
        self._functions: list[tuple[int, Callable[[Any], bool]]] = []
        for number, route in enumerate(self.routes):
            match = route.match
            if isinstance(match, EventPattern):
                patterns.append((number, match._compiled))
            elif isinstance(match, FilterPolicy):
                scoped = attribute_policies if match.scope == "MessageAttributes" else body_policies
                scoped.append((number, match._compiled))
            elif isinstance(match, S3KeyFilter):
                self._s3.append((number, match))
            else:
                self._functions.append((number, match))
        self._patterns = _Group(patterns)
        self._attribute_policies = _Group(attribute_policies)
        self._body_policies = _Group(body_policies)

    def kinds(self) -> frozenset[str]:
        """The kinds of event some route can match: ``eventbridge``, ``sns``, ``s3``, ``any``."""
        kinds = set()
        if self._patterns.numbers:
            kinds.add("eventbridge")
        if self._attribute_policies.numbers or self._body_policies.numbers:
            kinds.add("sns")
        if self._s3:
            kinds.add("s3")
        if self._functions:
            kinds.add("any")
        return frozenset(kinds)

    def _pick(self, numbers: Iterable[int], payload: Any) -> list[Route]:
        if not self._functions:
            return [self.routes[n] for n in sorted(numbers)]
        chosen = set(numbers)
        for number, function in self._functions:
            if function(payload):
                chosen.add(number)
        return [self.routes[n] for n in sorted(chosen)]

    def for_eventbridge(self, event: Any) -> list[Route]:
        """The routes an EventBridge event goes to: matching patterns and functions."""
        return self._pick(self._patterns.matching(event), event)

    def for_sns(
        self, message: Any, attributes: Mapping[str, Any] | None, payload: Any
    ) -> list[Route]:
        """The routes an SNS notification goes to: its ``Message`` and ``MessageAttributes``
        for the filter policies, ``payload`` (what the handler gets) for the functions."""
        numbers = self._attribute_policies.matching(_sns_attribute_values(attributes))
        if self._body_policies.numbers:
            body = _sns_body_value(message)
            if body is not None:
                numbers = [*numbers, *self._body_policies.matching(body)]
        return self._pick(numbers, payload)

    def for_s3(self, event: Any) -> list[Route]:
        """The routes an S3 notification goes to: passing key filters and functions."""
        return self._pick((n for n, f in self._s3 if f.matches(event)), event)

    def for_other(self, payload: Any) -> list[Route]:
        """The routes any other event goes to: the functions that accept it."""
        return self._pick((), payload)


class _Group:
    """Compiled patterns of several routes, answering route numbers."""

    __slots__ = ("matcher", "numbers")

    def __init__(self, entries: Sequence[tuple[int, Compiled]]) -> None:
        self.numbers = [number for number, _ in entries]
        self.matcher = PatternSet([compiled for _, compiled in entries])

    def matching(self, subject: Any) -> list[int]:
        if not self.numbers:
            return []
        return [self.numbers[i] for i in self.matcher.matching(subject)]

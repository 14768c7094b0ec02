"""Sinks that write dead letters and destination records to SQS, SNS and EventBridge.

Why batching: when a downstream dependency fails, every worker of an app fails at once
and each one sends a dead letter or an on-failure record at the same moment. One API call
per message would multiply the request rate (and the bill, and the throttling) by up to
ten, so these sinks send through the batch APIs instead: SQS ``SendMessageBatch``, SNS
``PublishBatch`` and EventBridge ``PutEvents``, ten entries per call.

How: each sink holds a :class:`~eventflow.aws._batcher.Batcher` (the bounded buffer, the
batch loop, linger, size and count limits, per-entry outcomes and every retry, see there)
through :class:`~eventflow.aws._sink_base.BatchSink`; this module says only how a message
becomes an entry of each API and how each API reports an entry's failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from .._clock import Clock
from .._errors import ConfigurationError
from ..sinks import Message, SinkRejected
from ._batcher import Fault, id_faults, positional_faults
from ._clients import resolve_region, shared_client
from ._errors import check_resource
from ._sink_base import BatchSink, SinkStatistics, region_of_queue_url, utf8_len

__all__ = ("EventBridgeSink", "SNSSink", "SQSSink", "SinkStatistics")

MAX_BATCH_ENTRIES = 10
SQS_MAX_MESSAGE_BYTES = 1_048_576  # body + attributes, spec §6.7
SQS_MAX_BATCH_BYTES = 1_048_576
SNS_MAX_MESSAGE_BYTES = 262_144  # body + attributes, spec §6.5
SNS_MAX_BATCH_BYTES = 262_144
EVENTBRIDGE_MAX_ENTRY_BYTES = 1_048_576  # spec §6.6 ("treat 1 MB as current")
EVENTBRIDGE_MAX_BATCH_BYTES = 1_048_576
MAX_ATTRIBUTES = 10

SUCCESS_DETAIL_TYPE = "Lambda Function Invocation Result - Success"
FAILURE_DETAIL_TYPE = "Lambda Function Invocation Result - Failure"

# per-entry EventBridge codes worth retrying (PutEvents API reference)
_EVENTBRIDGE_RETRYABLE = frozenset({"InternalFailure", "ThrottlingException"})

# characters SQS accepts (XML 1.0); SNS delivers to SQS and HTTP, so it gets the same rule
_INVALID_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
_NUMBER = re.compile(r"^-?\d{1,15}(\.\d{1,5})?$")
_NUMBER_ATTRIBUTES = frozenset({"ErrorCode"})  # Lambda declares ErrorCode a Number (spec §2)


class _AttributeSink(BatchSink):
    """SQS and SNS: body plus typed message attributes, the same rules for both."""

    _number_limit: ClassVar[float | None] = None
    _body_field: ClassVar[str]  # "MessageBody" (SQS) or "Message" (SNS)

    def _prepare(self, message: Message) -> tuple[dict[str, Any], int]:
        body, attributes, size = self._sized(message)
        entry: dict[str, Any] = {self._body_field: body}
        if attributes:
            entry["MessageAttributes"] = attributes
        return entry, size

    def _typed_attributes(
        self, attributes: Mapping[str, str]
    ) -> tuple[dict[str, dict[str, str]], int]:
        typed: dict[str, dict[str, str]] = {}
        size = 0
        for name, raw in attributes.items():
            value = str(raw)
            if value == "":
                continue  # SQS and SNS refuse empty values; an absent attribute says the same
            if not _ATTRIBUTE_NAME.match(name) or name.lower().startswith(("aws.", "amazon.")):
                raise SinkRejected(
                    f"The message attribute name {name!r} is not allowed by "
                    f"{self._target_phrase()}: names are 1-256 characters of A-Z, a-z, 0-9, "
                    "'_', '-' and '.', and do not start with 'AWS.' or 'Amazon.'."
                )
            value = _INVALID_CHAR.sub("\ufffd", value)  # e.g. a NUL in an error message
            data_type = "String"
            if name in _NUMBER_ATTRIBUTES and _NUMBER.match(value):
                limit = self._number_limit
                if limit is None or abs(float(value)) <= limit:
                    data_type = "Number"
            typed[name] = {"DataType": data_type, "StringValue": value}
            size += utf8_len(name) + len(data_type) + utf8_len(value)
        if len(typed) > MAX_ATTRIBUTES:
            raise SinkRejected(
                f"The message has {len(typed)} attributes, more than the {MAX_ATTRIBUTES} "
                f"that {self._target_phrase()} accepts; send at most {MAX_ATTRIBUTES}."
            )
        return typed, size

    def _body(self, message: Message) -> tuple[str, int]:
        body = message.body
        if not body:
            raise SinkRejected(
                f"The message body is empty, and {self._target_phrase()} does not accept an "
                "empty message."
            )
        bad = _INVALID_CHAR.search(body)
        if bad is not None:
            raise SinkRejected(
                f"The message body holds the character {bad.group()!r} at index {bad.start()}, "
                f"which {self._target_phrase()} does not accept (allowed: tab, newline, "
                "carriage return and Unicode from U+0020 except surrogates, U+FFFE and "
                "U+FFFF); escape it in the payload, for example as JSON \\u escapes."
            )
        return body, utf8_len(body)

    def _sized(self, message: Message) -> tuple[str, dict[str, dict[str, str]], int]:
        body, body_size = self._body(message)
        attributes, attributes_size = self._typed_attributes(message.attributes)
        size = body_size + attributes_size
        if size > self._max_entry_bytes:
            raise self._too_large(
                size, f"{body_size:,} of body and {attributes_size:,} of attributes"
            )
        return body, attributes, size


class SQSSink(_AttributeSink):
    """Sends each message to an SQS queue, ten at a time with ``SendMessageBatch``.

    The body is the message body (for a dead letter, the event payload as JSON); every
    attribute becomes an SQS message attribute of type ``String``, except ``ErrorCode``,
    which is a ``Number`` as Lambda declares it. An attribute with an empty value (an
    exception with no message gives an empty ``ErrorMessage``) is left out, because SQS
    refuses empty values; characters SQS refuses in an attribute value are replaced with
    U+FFFD, while a body with such characters is rejected (a payload is never altered).

    Use it as a dead-letter queue or a destination::

        @eventflow.handler(dead_letter=SQSSink(queue_url))

    The app opens the sink when it starts: with ``check=True`` that calls
    ``GetQueueAttributes`` and fails with :class:`~eventflow.aws.ResourceCheckFailed` if the
    queue is missing or forbidden, and learns the queue's ``MaximumMessageSize``.

    Args:
        queue_url: The queue's URL.
        endpoint_url: The SQS endpoint, for LocalStack or moto; None for AWS.
        region_name: The region; by default the one in the queue URL, else the standard
            AWS configuration, else ``us-east-1``.
        session: An aiobotocore session; by default a shared one.
        check: Check the queue when the sink opens.
        linger: Seconds a message waits for others to share its batch (0: send at once).
        buffer_size: Messages buffered before ``send`` waits for room.
        clock: The clock its retry backoff sleeps on (pass the app's ``app.clock``, a
            ``VirtualClock`` in tests); the event loop's by default.

    Raises:
        ConfigurationError: An option is out of range.
    """

    _service = "sqs"
    _api = "SendMessageBatch"
    _kind = "SQS queue"
    _body_field = "MessageBody"
    _max_batch_bytes = SQS_MAX_BATCH_BYTES

    def __init__(
        self,
        queue_url: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: Any = None,
        check: bool = True,
        linger: float = 0.005,
        buffer_size: int = 1000,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(queue_url, str) or not re.match(r"^https?://[^/]+/.+", queue_url):
            raise ConfigurationError(
                f"queue_url must be an SQS queue URL such as "
                f"'https://sqs.us-east-1.amazonaws.com/123456789012/my-dlq', got {queue_url!r}."
            )
        if region_name is None:
            region_name = region_of_queue_url(queue_url)
        super().__init__(
            target=queue_url,
            endpoint_url=endpoint_url,
            region_name=region_name,
            session=session,
            check=check,
            linger=linger,
            buffer_size=buffer_size,
            clock=clock,
        )
        self.queue_url = queue_url
        self._max_entry_bytes = SQS_MAX_MESSAGE_BYTES

    def __repr__(self) -> str:
        return f"SQSSink({self.queue_url!r})"

    async def _start(self, client: Any) -> None:
        self._max_entry_bytes = SQS_MAX_MESSAGE_BYTES
        if not self._check:
            return
        result = await check_resource(
            client,
            "get_queue_attributes",
            {"QueueUrl": self.queue_url, "AttributeNames": ["QueueArn", "MaximumMessageSize"]},
            what="SQS queue",
            resource=self.queue_url,
            iam_action="sqs:SendMessage",
        )
        configured = result.get("Attributes", {}).get("MaximumMessageSize")
        if configured is not None and str(configured).isdigit():
            self._max_entry_bytes = min(SQS_MAX_MESSAGE_BYTES, int(configured))

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[Fault | None]:
        response = await client.send_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), **e} for i, e in enumerate(entries)],
        )
        return id_faults(response, len(entries))


class SNSSink(_AttributeSink):
    """Publishes each message to an SNS topic, ten at a time with ``PublishBatch``.

    The ``Message`` is the message body; attributes become SNS message attributes as for
    :class:`SQSSink` (``ErrorCode`` a ``Number``, the rest ``String``, empty values left
    out). Subscribers see them in the notification's ``MessageAttributes``, or as SQS
    message attributes with raw message delivery.

    Args:
        topic_arn: The topic's ARN.
        endpoint_url: The SNS endpoint, for LocalStack or moto; None for AWS.
        region_name: The region; by default the one in the topic ARN.
        session: An aiobotocore session; by default a shared one.
        check: Check the topic with ``GetTopicAttributes`` when the sink opens.
        linger: Seconds a message waits for others to share its batch (0: send at once).
        buffer_size: Messages buffered before ``send`` waits for room.
        clock: The clock its retry backoff sleeps on (pass the app's ``app.clock``, a
            ``VirtualClock`` in tests); the event loop's by default.

    Raises:
        ConfigurationError: An option is out of range.
    """

    _service = "sns"
    _api = "PublishBatch"
    _kind = "SNS topic"
    _body_field = "Message"
    _max_batch_bytes = SNS_MAX_BATCH_BYTES
    _number_limit = 1e9  # SNS Number attributes are within +-10^9

    def __init__(
        self,
        topic_arn: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: Any = None,
        check: bool = True,
        linger: float = 0.005,
        buffer_size: int = 1000,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(topic_arn, str) or not re.match(r"^arn:[^:]+:sns:[^:]*:", topic_arn):
            raise ConfigurationError(
                f"topic_arn must be an SNS topic ARN such as "
                f"'arn:aws:sns:us-east-1:123456789012:my-dlq', got {topic_arn!r}."
            )
        super().__init__(
            target=topic_arn,
            endpoint_url=endpoint_url,
            region_name=region_name,
            session=session,
            check=check,
            linger=linger,
            buffer_size=buffer_size,
            clock=clock,
        )
        self.topic_arn = topic_arn
        self._max_entry_bytes = SNS_MAX_MESSAGE_BYTES

    def __repr__(self) -> str:
        return f"SNSSink({self.topic_arn!r})"

    async def _start(self, client: Any) -> None:
        if self._check:
            await check_resource(
                client,
                "get_topic_attributes",
                {"TopicArn": self.topic_arn},
                what="SNS topic",
                resource=self.topic_arn,
                iam_action="sns:Publish",
            )

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[Fault | None]:
        response = await client.publish_batch(
            TopicArn=self.topic_arn,
            PublishBatchRequestEntries=[{"Id": str(i), **e} for i, e in enumerate(entries)],
        )
        return id_faults(response, len(entries))


class EventBridgeSink(BatchSink):
    """Puts destination records on an EventBridge bus, ten at a time with ``PutEvents``.

    Each record becomes an event as Lambda's EventBridge destination sends it: ``source``
    ``"lambda"``, ``detail-type`` ``"Lambda Function Invocation Result - Success"`` for the
    ``Success`` condition and ``"... - Failure"`` otherwise, ``resources`` = [the record's
    function ARN, the bus ARN] and ``detail`` = the record. Use it as ``on_success`` or
    ``on_failure``; a message that is not an invocation record (a dead letter, say) is
    rejected with :class:`~eventflow.sinks.SinkRejected`.

    The bus ARN comes from ``DescribeEventBus`` when ``check=True``. With ``check=False``
    the sink makes no call to EventBridge when it opens: it builds the ARN from the region
    and the account of the credentials (STS ``GetCallerIdentity``, which needs no IAM
    permission), falling back to account ``000000000000`` (eventflow's default account)
    with a warning if STS cannot be reached. A bus given by ARN is used as is.

    Args:
        event_bus_name: The bus name or ARN.
        endpoint_url: The endpoint (EventBridge, and STS when ``check=False``), for
            LocalStack or moto; None for AWS.
        region_name: The region; by default the one in a bus ARN, else the standard AWS
            configuration, else ``us-east-1``.
        session: An aiobotocore session; by default a shared one.
        check: Check the bus with ``DescribeEventBus`` when the sink opens.
        source: The events' ``source`` (Lambda uses ``"lambda"``).
        linger: Seconds a message waits for others to share its batch (0: send at once).
        buffer_size: Messages buffered before ``send`` waits for room.
        clock: The clock its retry backoff sleeps on (pass the app's ``app.clock``, a
            ``VirtualClock`` in tests); the event loop's by default.

    Raises:
        ConfigurationError: An option is out of range.
    """

    _service = "events"
    _api = "PutEvents"
    _kind = "EventBridge bus"
    _max_batch_bytes = EVENTBRIDGE_MAX_BATCH_BYTES

    def __init__(
        self,
        event_bus_name: str = "default",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: Any = None,
        check: bool = True,
        source: str = "lambda",
        linger: float = 0.005,
        buffer_size: int = 1000,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(event_bus_name, str) or not event_bus_name:
            raise ConfigurationError(
                f"event_bus_name must be a bus name such as 'default' or a bus ARN, "
                f"got {event_bus_name!r}."
            )
        if not isinstance(source, str) or not source or source.startswith("aws."):
            raise ConfigurationError(
                f"source must be a non-empty string that does not start with 'aws.' "
                f"(Lambda uses 'lambda'), got {source!r}."
            )
        is_arn = event_bus_name.startswith("arn:")
        super().__init__(
            target=event_bus_name,
            endpoint_url=endpoint_url,
            region_name=region_name,
            session=session,
            check=check,
            linger=linger,
            buffer_size=buffer_size,
            clock=clock,
        )
        self.event_bus_name = event_bus_name
        self.source = source
        self.bus_arn: str | None = event_bus_name if is_arn else None
        self._max_entry_bytes = EVENTBRIDGE_MAX_ENTRY_BYTES

    def __repr__(self) -> str:
        return f"EventBridgeSink({self.event_bus_name!r})"

    async def _start(self, client: Any) -> None:
        if self._check:
            result = await check_resource(
                client,
                "describe_event_bus",
                {"Name": self.event_bus_name},
                what="EventBridge bus",
                resource=self.event_bus_name,
                iam_action="events:PutEvents",
            )
            self.bus_arn = str(result.get("Arn") or self.bus_arn or "") or None
        if self.bus_arn is None:
            self.bus_arn = await self._derive_bus_arn()

    async def _derive_bus_arn(self) -> str:
        region = resolve_region(self._session, self._region_name)
        partition, account = "aws", "000000000000"
        try:
            async with shared_client(
                "sts",
                region_name=self._region_name,
                endpoint_url=self._endpoint_url,
                session=self._session,
            ) as sts:
                identity = await sts.get_caller_identity()
            account = str(identity["Account"])
            partition = str(identity.get("Arn", "arn:aws:")).split(":")[1] or "aws"
        except (ClientError, BotoCoreError, KeyError, IndexError) as exc:
            structlog.get_logger("eventflow").warning(
                "sink.account_unknown",
                sink=repr(self),
                account=account,
                error=f"{type(exc).__name__}: {exc}",
                hint="pass the bus ARN as event_bus_name, or check=True, for exact resources",
            )
        return f"arn:{partition}:events:{region}:{account}:event-bus/{self.event_bus_name}"

    def _prepare(self, message: Message) -> tuple[dict[str, Any], int]:
        context = _request_context(message.body)
        if context is None:
            raise SinkRejected(
                f"{self!r} sends Lambda destination records (the JSON invocation record with "
                "a requestContext), and this message is not one; use EventBridgeSink as "
                "on_success or on_failure, and SQSSink or SNSSink for dead letters."
            )
        function_arn, condition = context
        detail_type = SUCCESS_DETAIL_TYPE if condition == "Success" else FAILURE_DETAIL_TYPE
        assert self.bus_arn is not None  # set when the sink opened
        resources = [function_arn, self.bus_arn]
        try:
            size = (
                utf8_len(self.source)
                + utf8_len(detail_type)
                + len(message.body.encode("utf-8"))
                + sum(utf8_len(r) for r in resources)
            )
        except UnicodeEncodeError as exc:
            raise SinkRejected(
                f"The destination record is not valid UTF-8 ({exc.reason} at index "
                f"{exc.start}), so EventBridge cannot carry it."
            ) from None
        if size > self._max_entry_bytes:
            raise self._too_large(size, "source, detail-type, detail and resources")
        entry = {
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": message.body,
            "Resources": resources,
            "EventBusName": self.event_bus_name,
        }
        return entry, size

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[Fault | None]:
        response = await client.put_events(Entries=entries)
        return positional_faults(
            response.get("Entries", []),
            len(entries),
            ok_field="EventId",
            retryable_codes=_EVENTBRIDGE_RETRYABLE,
        )


def _request_context(body: str) -> tuple[str, str] | None:
    """(functionArn, condition) of an invocation record, or None if ``body`` is not one."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    context = record.get("requestContext")
    if not isinstance(context, dict):
        return None
    function_arn, condition = context.get("functionArn"), context.get("condition")
    if not isinstance(function_arn, str) or not isinstance(condition, str):
        return None
    return function_arn, condition

"""Sinks that write dead letters and destination records to SQS, SNS and EventBridge.

Why batching: when a downstream dependency fails, every worker of an app fails at once
and each one sends a dead letter or an on-failure record at the same moment. One API call
per message would multiply the request rate (and the bill, and the throttling) by up to
ten, so these sinks send through the batch APIs instead: SQS ``SendMessageBatch``, SNS
``PublishBatch`` and EventBridge ``PutEvents``, ten entries per call.

How: :meth:`send` validates and sizes the message (a message that can never be sent is
rejected at once, before it can spoil a batch), puts it in a bounded buffer and waits
for the outcome of *its own* entry. One flusher task, owned by a task group that the sink
opens in ``__aenter__`` and closes in ``__aexit__``, takes entries from the buffer and
sends a batch as soon as ten are waiting, or ``linger`` seconds (5 ms by default) after
the oldest waiting entry arrived, or sooner when the next entry would push the batch past
the target's per-call payload limit. While a call is in flight new entries queue up, so
under load batches fill by themselves; when the buffer is full, ``send`` waits
(backpressure) instead of growing memory. One call is in flight per sink at a time, so a
throttled or retried batch slows the senders down rather than multiplying requests.
``__aexit__`` stops intake and lets the flusher send everything still buffered (without
waiting out the linger) before the client is released; if the sink is cancelled instead,
every caller still waiting gets an error rather than waiting forever.

Failures are settled per entry, in the terms of :class:`eventflow.sinks.SinkRejected`:

* an entry the service says can never succeed (``SenderFault``, a malformed entry) is
  raised to its caller as ``SinkRejected``, which the core does not retry;
* an entry that failed for a transient reason is retried alone, a few times with
  jittered backoff, then raised as :class:`eventflow.aws.AWSError`, which the core retries;
* a throttled call is retried whole, with capped, jittered exponential backoff;
* a call rejected as invalid (a 400 that is not about permissions or a missing resource)
  is split into one call per entry, so one bad entry fails alone and the rest go through;
* any other failure (denied, missing resource, network) is raised to each affected caller
  as ``AWSError``, so the core retries with its own backoff up to ``sink_timeout``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

import anyio
import structlog
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from botocore.exceptions import BotoCoreError, ClientError

from .._errors import ConfigurationError
from ..sinks import Message, SinkRejected
from ._clients import resolve_region, shared_client
from ._errors import AWSError, check_resource, error_code

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

# whole-call errors that mean "slow down"; botocore's own retries already ran
_THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
# 400s that are about who we are or where we send, not about the entries: never split
_NOT_ABOUT_ENTRIES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "NonExistentQueue",
        "NotFound",
        "NotFoundException",
        "ResourceNotFoundException",
        "InvalidAccessKeyId",
        "InvalidSecurity",
        "IncompleteSignature",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "RequestExpired",
        "RequestTimeTooSkewed",
        "OptInRequired",
    }
)
# whole-call codes that, for a call with a single entry, say that entry can never be sent
_ENTRY_INVALID = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameter",
        "InvalidMessageContents",
        "InvalidAttributeName",
        "InvalidAttributeValue",
        "MessageTooLong",
        "BatchRequestTooLong",
        "AWS.SimpleQueueService.BatchRequestTooLong",
        "AWS.SimpleQueueService.InvalidMessageContents",
        "ValidationException",
    }
)
# per-entry EventBridge codes worth retrying (PutEvents API reference)
_EVENTBRIDGE_RETRYABLE = frozenset({"InternalFailure", "ThrottlingException"})

# characters SQS accepts (XML 1.0); SNS delivers to SQS and HTTP, so it gets the same rule
_INVALID_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
_NUMBER = re.compile(r"^-?\d{1,15}(\.\d{1,5})?$")
_NUMBER_ATTRIBUTES = frozenset({"ErrorCode"})  # Lambda declares ErrorCode a Number (spec §2)
_SQS_REGION = re.compile(
    r"^https?://(?:sqs\.(?P<a>[a-z0-9-]+)|(?P<b>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?/"
)

# retry tuning: an entry failed for a transient reason, and a throttled call
_ENTRY_RETRIES = 3
_ENTRY_BACKOFF = (0.05, 0.5)  # base, cap (seconds)
_THROTTLE_RETRIES = 5
_THROTTLE_BACKOFF = (0.1, 2.0)
_CLOSE_TIMEOUT = 10.0  # releasing the client after a cancellation


@dataclass(frozen=True, slots=True)
class SinkStatistics:
    """A snapshot of one AWS sink's counters, from :meth:`SQSSink.statistics` and friends.

    Attributes:
        sent: Messages the service accepted.
        failed: Messages raised to their caller as a retryable error (the core retries).
        rejected: Messages raised as :class:`~eventflow.sinks.SinkRejected` (never sent).
        batches: Batches the flusher formed.
        api_calls: Batch API calls made, retries and split-up calls included.
        largest_batch: The most entries sent in one API call so far.
        pending: Messages accepted by ``send`` and not yet settled (buffered or in flight).
        buffer_size: How many messages the buffer holds before ``send`` waits.
    """

    sent: int
    failed: int
    rejected: int
    batches: int
    api_calls: int
    largest_batch: int
    pending: int
    buffer_size: int


@dataclass(slots=True, eq=False)
class _Pending:
    """One message waiting in the buffer, and where its outcome goes."""

    entry: dict[str, Any]  # the batch API entry, without its Id
    size: int  # bytes it counts against the per-call limit
    enqueued: float
    done: anyio.Event = field(default_factory=anyio.Event)
    rejected: bool = False
    error: str | None = None
    cause: BaseException | None = None


@dataclass(frozen=True, slots=True)
class _Fault:
    """Why the service did not take one entry of a batch call."""

    code: str
    message: str
    retryable: bool


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def _backoff(attempt: int, base_cap: tuple[float, float]) -> float:
    base, cap = base_cap
    delay: float = min(cap, base * 2.0**attempt)
    return delay * (0.5 + random.random() / 2)


def _region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] or None if len(parts) > 5 and parts[0] == "arn" else None


def _check_options(linger: float, buffer_size: int) -> None:
    if isinstance(linger, bool) or not isinstance(linger, int | float) or not linger >= 0:
        raise ConfigurationError(
            f"linger must be a number of seconds >= 0 (0 sends whatever is waiting at once), "
            f"got {linger!r}."
        )
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise ConfigurationError(
            f"buffer_size must be an integer >= 1 (messages waiting to be sent), "
            f"got {buffer_size!r}."
        )


class _BatchingSink:
    """The buffer, the flusher task and the retry rules shared by the three AWS sinks."""

    _service: ClassVar[str]
    _max_entry_bytes: int
    _max_batch_bytes: ClassVar[int]

    def __init__(
        self,
        *,
        target: str,
        endpoint_url: str | None,
        region_name: str | None,
        session: Any,
        check: bool,
        linger: float,
        buffer_size: int,
    ) -> None:
        _check_options(linger, buffer_size)
        self._target = target
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._session = session
        self._check = check
        self._linger = float(linger)
        self._buffer_size = buffer_size
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._send_stream: MemoryObjectSendStream[_Pending] | None = None
        self._sent = self._failed = self._rejected = 0
        self._batches = self._api_calls = self._largest = self._in_flight = 0

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError(
                f"{self!r} is already open; an App opens each sink once, so give each "
                "running App its own sink object."
            )
        # the client's stack holds no cancel scope, so it can be closed shielded; the
        # task group is entered and exited on its own, in strict nesting
        self._stack = stack = AsyncExitStack()  # taken now: a second opener is refused
        try:
            self._client = await stack.enter_async_context(
                shared_client(
                    self._service,
                    region_name=self._region_name,
                    endpoint_url=self._endpoint_url,
                    session=self._session,
                )
            )
            await self._start(self._client)
            send, receive = anyio.create_memory_object_stream[_Pending](self._buffer_size)
            tg = anyio.create_task_group()
            await tg.__aenter__()
        except BaseException:
            self._client = self._stack = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await stack.aclose()
            raise
        tg.start_soon(self._flush_loop, receive)
        self._tg, self._send_stream = tg, send
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, tg, send = self._stack, self._tg, self._send_stream
        if stack is None or tg is None or send is None:
            return
        self._stack = self._tg = self._send_stream = None
        send.close()  # intake stops; the flusher sends what is buffered, then ends
        try:
            if exc_type is not None and issubclass(exc_type, anyio.get_cancelled_exc_class()):
                tg.cancel_scope.cancel()  # abandon the buffer: the flusher tells each caller
            await tg.__aexit__(None, None, None)
        finally:
            self._client = None
            # release the client even when cancelled, so its connections are closed
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await stack.aclose()

    async def _start(self, client: Any) -> None:
        """Check the target (or learn what the sink needs without checking)."""
        raise NotImplementedError

    # -- sending ----------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send ``message`` in the next batch and return once the service accepted it.

        Raises:
            SinkRejected: The message can never be sent to this target (too large,
                malformed, refused by the service as the sender's fault).
            AWSError: The send failed for a reason that may pass; the app retries it.
            RuntimeError: The sink is not open.
        """
        stream = self._send_stream
        if stream is None:
            raise RuntimeError(
                f"{self!r} is not open. An App opens its sinks when it starts, so send "
                "through a running app (inside 'async with app'), or open the sink yourself "
                "with 'async with sink:'."
            )
        try:
            entry, size = self._prepare(message)
        except SinkRejected:
            self._rejected += 1
            raise
        pending = _Pending(entry, size, anyio.current_time())
        try:
            await stream.send(pending)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise RuntimeError(
                f"{self!r} was closed while this message waited for room in its buffer; "
                "the app stopped before the message could be sent."
            ) from None
        await pending.done.wait()
        if pending.error is not None:
            if pending.rejected:
                raise SinkRejected(pending.error) from pending.cause
            raise AWSError(pending.error) from pending.cause

    def _prepare(self, message: Message) -> tuple[dict[str, Any], int]:
        """The batch entry for ``message`` and its size; SinkRejected if it cannot be sent."""
        raise NotImplementedError

    def _too_large(self, size: int, what: str) -> SinkRejected:
        return SinkRejected(
            f"The message is {size:,} bytes ({what}), more than the {self._max_entry_bytes:,} "
            f"bytes {self._target_phrase()} accepts, so it can never be sent; make the "
            "payload smaller (store large data elsewhere and send a reference)."
        )

    def _target_phrase(self) -> str:
        raise NotImplementedError

    def statistics(self) -> SinkStatistics:
        """Counters since the sink was created, and the buffer's current state."""
        pending = self._in_flight
        if self._send_stream is not None:
            buffer = self._send_stream.statistics()
            pending += buffer.current_buffer_used + buffer.tasks_waiting_send
        return SinkStatistics(
            sent=self._sent,
            failed=self._failed,
            rejected=self._rejected,
            batches=self._batches,
            api_calls=self._api_calls,
            largest_batch=self._largest,
            pending=pending,
            buffer_size=self._buffer_size,
        )

    # -- the flusher ------------------------------------------------------------------

    async def _flush_loop(self, receive: MemoryObjectReceiveStream[_Pending]) -> None:
        carry: _Pending | None = None
        batch: list[_Pending] = []
        async with receive:
            try:
                while True:
                    if carry is None:
                        try:
                            first = await receive.receive()
                        except anyio.EndOfStream:
                            return
                        self._in_flight += 1
                    else:
                        first, carry = carry, None
                    batch = [first]
                    total = first.size
                    deadline = first.enqueued + self._linger
                    while len(batch) < MAX_BATCH_ENTRIES:
                        item = await self._next_before(receive, deadline)
                        if item is None:
                            break
                        self._in_flight += 1
                        if total + item.size > self._max_batch_bytes:
                            carry = item  # opens the next batch
                            break
                        batch.append(item)
                        total += item.size
                    self._batches += 1
                    await self._deliver(batch)
                    batch = []
            finally:
                # cancelled: tell every caller still waiting, so that none waits forever
                leftovers = [*batch, *([carry] if carry is not None else [])]
                while True:
                    try:
                        item = receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    self._in_flight += 1
                    leftovers.append(item)
                for pending in leftovers:
                    self._settle(
                        pending,
                        f"{self!r} was stopped before this message was sent.",
                        rejected=False,
                    )

    @staticmethod
    async def _next_before(
        receive: MemoryObjectReceiveStream[_Pending], deadline: float
    ) -> _Pending | None:
        """The next buffered entry if one arrives before ``deadline``, else None."""
        try:
            return receive.receive_nowait()
        except anyio.WouldBlock:
            pass
        except anyio.EndOfStream:
            return None
        remaining = deadline - anyio.current_time()
        if remaining <= 0:
            return None
        with anyio.move_on_after(remaining):
            try:
                return await receive.receive()
            except anyio.EndOfStream:
                return None
        return None

    async def _deliver(self, batch: list[_Pending]) -> None:
        """Send ``batch``, retrying as the module docstring says, and settle every entry."""
        todo = batch
        entry_retries = throttle_retries = 0
        while todo:
            self._api_calls += 1
            self._largest = max(self._largest, len(todo))
            try:
                faults = await self._call(self._client, [p.entry for p in todo])
            except (ClientError, BotoCoreError) as exc:
                code = error_code(exc)
                if self._is_throttling(exc) and throttle_retries < _THROTTLE_RETRIES:
                    await anyio.sleep(_backoff(throttle_retries, _THROTTLE_BACKOFF))
                    throttle_retries += 1
                    continue
                if len(todo) > 1 and self._maybe_about_entries(exc):
                    for pending in todo:  # one call per entry isolates the entry refused
                        await self._deliver([pending])
                    return
                rejected = code in _ENTRY_INVALID and _status(exc) == 400
                for pending in todo:
                    self._settle(
                        pending,
                        f"{self._api_name()} to {self._target_phrase()} failed "
                        f"({code or type(exc).__name__}): {exc}"
                        + (" Retrying cannot help." if rejected else ""),
                        rejected=rejected,
                        cause=exc,
                    )
                return
            except Exception as exc:  # never let the flusher die: its callers would hang
                for pending in todo:
                    self._settle(
                        pending,
                        f"{self._api_name()} to {self._target_phrase()} failed unexpectedly: "
                        f"{type(exc).__name__}: {exc}",
                        rejected=False,
                        cause=exc,
                    )
                return
            retry: list[_Pending] = []
            for pending, fault in zip(todo, faults, strict=True):
                if fault is None:
                    self._settle(pending, None, rejected=False)
                elif fault.retryable and entry_retries < _ENTRY_RETRIES:
                    retry.append(pending)
                else:
                    self._settle(
                        pending,
                        f"{self._target_phrase().capitalize()} refused the message "
                        f"({fault.code or 'no error code'}): {fault.message}"
                        + ("" if fault.retryable else " Retrying cannot help."),
                        rejected=not fault.retryable,
                    )
            if retry:
                await anyio.sleep(_backoff(entry_retries, _ENTRY_BACKOFF))
                entry_retries += 1
            todo = retry

    @classmethod
    def _maybe_about_entries(cls, exc: BaseException) -> bool:
        """Whether a failed call may have failed because of one of its entries."""
        return (
            isinstance(exc, ClientError)
            and _status(exc) == 400
            and error_code(exc) not in _NOT_ABOUT_ENTRIES
            and not cls._is_throttling(exc)
        )

    @staticmethod
    def _is_throttling(exc: BaseException) -> bool:
        if error_code(exc) in _THROTTLING:
            return True
        if isinstance(exc, ClientError):  # botocore's own retries ran out
            return bool(exc.response.get("ResponseMetadata", {}).get("MaxAttemptsReached"))
        return False

    def _settle(
        self,
        pending: _Pending,
        error: str | None,
        *,
        rejected: bool,
        cause: BaseException | None = None,
    ) -> None:
        if pending.done.is_set():
            return
        if error is None:
            self._sent += 1
        elif rejected:
            self._rejected += 1
        else:
            self._failed += 1
        self._in_flight -= 1
        pending.error, pending.rejected, pending.cause = error, rejected, cause
        pending.done.set()

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[_Fault | None]:
        """One batch call; the fault of each entry, in order (None = accepted)."""
        raise NotImplementedError

    def _api_name(self) -> str:
        raise NotImplementedError


def _status(exc: ClientError) -> int:
    meta = exc.response.get("ResponseMetadata", {})
    try:
        return int(meta.get("HTTPStatusCode", 0))
    except (TypeError, ValueError):
        return 0


def _batch_faults(response: Mapping[str, Any], count: int) -> list[_Fault | None]:
    """Per-entry faults from an SQS/SNS batch response (``Successful`` / ``Failed``, Id = index)."""
    failed = {str(f.get("Id")): f for f in response.get("Failed", [])}
    succeeded = {str(s.get("Id")) for s in response.get("Successful", [])}
    out: list[_Fault | None] = []
    for i in range(count):
        f = failed.get(str(i))
        if f is not None:
            out.append(
                _Fault(
                    str(f.get("Code", "")),
                    str(f.get("Message", "")),
                    retryable=not f.get("SenderFault", False),
                )
            )
        elif str(i) in succeeded:
            out.append(None)
        else:
            out.append(
                _Fault("Missing", "the response reported neither success nor failure.", True)
            )
    return out


class _AttributeSink(_BatchingSink):
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
            size += _utf8_len(name) + len(data_type) + _utf8_len(value)
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
        return body, _utf8_len(body)

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

    Raises:
        ConfigurationError: An option is out of range.
    """

    _service = "sqs"
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
    ) -> None:
        if not isinstance(queue_url, str) or not re.match(r"^https?://[^/]+/.+", queue_url):
            raise ConfigurationError(
                f"queue_url must be an SQS queue URL such as "
                f"'https://sqs.us-east-1.amazonaws.com/123456789012/my-dlq', got {queue_url!r}."
            )
        if region_name is None:
            found = _SQS_REGION.match(queue_url)
            if found:
                region_name = found.group("a") or found.group("b")
        super().__init__(
            target=queue_url,
            endpoint_url=endpoint_url,
            region_name=region_name,
            session=session,
            check=check,
            linger=linger,
            buffer_size=buffer_size,
        )
        self.queue_url = queue_url
        self._max_entry_bytes = SQS_MAX_MESSAGE_BYTES

    def __repr__(self) -> str:
        return f"SQSSink({self.queue_url!r})"

    def _target_phrase(self) -> str:
        return f"the SQS queue {self.queue_url}"

    def _api_name(self) -> str:
        return "SendMessageBatch"

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

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[_Fault | None]:
        response = await client.send_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), **e} for i, e in enumerate(entries)],
        )
        return _batch_faults(response, len(entries))


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

    Raises:
        ConfigurationError: An option is out of range.
    """

    _service = "sns"
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
    ) -> None:
        if not isinstance(topic_arn, str) or not re.match(r"^arn:[^:]+:sns:[^:]*:", topic_arn):
            raise ConfigurationError(
                f"topic_arn must be an SNS topic ARN such as "
                f"'arn:aws:sns:us-east-1:123456789012:my-dlq', got {topic_arn!r}."
            )
        super().__init__(
            target=topic_arn,
            endpoint_url=endpoint_url,
            region_name=region_name or _region_of_arn(topic_arn),
            session=session,
            check=check,
            linger=linger,
            buffer_size=buffer_size,
        )
        self.topic_arn = topic_arn
        self._max_entry_bytes = SNS_MAX_MESSAGE_BYTES

    def __repr__(self) -> str:
        return f"SNSSink({self.topic_arn!r})"

    def _target_phrase(self) -> str:
        return f"the SNS topic {self.topic_arn}"

    def _api_name(self) -> str:
        return "PublishBatch"

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

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[_Fault | None]:
        response = await client.publish_batch(
            TopicArn=self.topic_arn,
            PublishBatchRequestEntries=[{"Id": str(i), **e} for i, e in enumerate(entries)],
        )
        return _batch_faults(response, len(entries))


class EventBridgeSink(_BatchingSink):
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

    Raises:
        ConfigurationError: An option is out of range.
    """

    _service = "events"
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
            region_name=region_name or (_region_of_arn(event_bus_name) if is_arn else None),
            session=session,
            check=check,
            linger=linger,
            buffer_size=buffer_size,
        )
        self.event_bus_name = event_bus_name
        self.source = source
        self.bus_arn: str | None = event_bus_name if is_arn else None
        self._max_entry_bytes = EVENTBRIDGE_MAX_ENTRY_BYTES

    def __repr__(self) -> str:
        return f"EventBridgeSink({self.event_bus_name!r})"

    def _target_phrase(self) -> str:
        return f"the EventBridge bus {self.event_bus_name}"

    def _api_name(self) -> str:
        return "PutEvents"

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
                _utf8_len(self.source)
                + _utf8_len(detail_type)
                + len(message.body.encode("utf-8"))
                + sum(_utf8_len(r) for r in resources)
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

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[_Fault | None]:
        response = await client.put_events(Entries=entries)
        results: Sequence[Mapping[str, Any]] = response.get("Entries", [])
        out: list[_Fault | None] = []
        for i in range(len(entries)):
            result = results[i] if i < len(results) else {}
            code = result.get("ErrorCode")
            if code:
                out.append(
                    _Fault(
                        str(code),
                        str(result.get("ErrorMessage", "")),
                        retryable=code in _EVENTBRIDGE_RETRYABLE,
                    )
                )
            elif result.get("EventId"):
                out.append(None)
            else:
                out.append(
                    _Fault("Missing", "the response reported neither success nor failure.", True)
                )
        return out


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

"""What every AWS sink shares: the client, the start-up check, and a held :class:`Batcher`.

A sink for an AWS batch API is a subclass of :class:`BatchSink` that says four things:
how to check its target when it opens (``_start``), how a :class:`~eventflow.Message`
becomes one entry of the batch API and how many bytes it counts (``_prepare``), how one
batch call is made and what each entry's fault was (``_call``), and how to name the target
in messages. The buffer, the batch loop, the per-entry outcomes and every retry belong to
the :class:`~eventflow.aws._batcher.Batcher` it holds.

A :class:`~eventflow.aws._batcher.EntryOutcome` becomes, for the caller of :meth:`send`,
:class:`~eventflow.sinks.SinkRejected` (retrying cannot help; the core does not retry) or
:class:`~eventflow.aws.AWSError` (the core retries with its own backoff, up to the app's
``sink_timeout``).
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

import anyio
from anyio.abc import TaskGroup

from .._clock import Clock
from ..sinks import Message, SinkRejected
from ._batcher import Batcher, Fault, check_batching_options
from ._clients import shared_client
from ._errors import AWSError

__all__ = ("BatchSink", "SinkStatistics", "region_of_arn", "region_of_queue_url", "utf8_len")

_SQS_REGION = re.compile(
    r"^https?://(?:sqs\.(?P<a>[a-z0-9-]+)|(?P<b>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?/"
)

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


def utf8_len(text: str) -> int:
    """The length of ``text`` in UTF-8 bytes (lone surrogates counted, not refused)."""
    return len(text.encode("utf-8", errors="surrogatepass"))


def region_of_arn(arn: str) -> str | None:
    """The region field of an ARN, or None."""
    parts = arn.split(":")
    return parts[3] or None if len(parts) > 5 and parts[0] == "arn" else None


def region_of_queue_url(queue_url: str) -> str | None:
    """The region in an SQS queue URL (``https://sqs.<region>.amazonaws.com/...``), or None."""
    found = _SQS_REGION.match(queue_url)
    return (found.group("a") or found.group("b")) if found else None


class BatchSink:
    """An AWS sink that sends through a batch API; see the module docstring."""

    _service: ClassVar[str]  # the aiobotocore service name
    _api: ClassVar[str]  # the batch API, for messages
    _kind: ClassVar[str]  # what the target is, for messages, such as "SQS queue"
    _max_entries: ClassVar[int] = 10
    _max_batch_bytes: ClassVar[int]
    _max_entry_bytes: int

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
        clock: Clock | None,
    ) -> None:
        check_batching_options(linger, buffer_size)
        self._target = target
        self._endpoint_url = endpoint_url
        # an ARN names its region: the one rule for every sink whose target may be an ARN
        if region_name is None and target.startswith("arn:"):
            region_name = region_of_arn(target)
        self._region_name = region_name
        self._session = session
        self._check = check
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._batcher = Batcher(
            self._call_client,
            describe=(self._api, self._target_phrase()),
            max_entries=self._max_entries,
            max_bytes=self._max_batch_bytes,
            linger=linger,
            buffer_size=buffer_size,
            clock=clock,
        )

    # -- what a sink says -------------------------------------------------------------

    async def _start(self, client: Any) -> None:
        """Check the target (or learn what the sink needs without checking)."""
        raise NotImplementedError

    def _prepare(self, message: Message) -> tuple[dict[str, Any], int]:
        """The batch entry for ``message`` and its size; SinkRejected if it cannot be sent."""
        raise NotImplementedError

    async def _call(self, client: Any, entries: list[dict[str, Any]]) -> list[Fault | None]:
        """One batch call; the fault of each entry, in order (None = accepted)."""
        raise NotImplementedError

    def _target_phrase(self) -> str:
        return f"the {self._kind} {self._target}"

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
                    batching=True,
                )
            )
            await self._start(self._client)
            tg = anyio.create_task_group()
            await tg.__aenter__()
        except BaseException:
            self._client = self._stack = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await stack.aclose()
            raise
        try:
            await tg.start(self._batcher.run)
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        self._tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, tg = self._stack, self._tg
        if stack is None or tg is None:
            return
        self._stack = self._tg = None
        self._batcher.close()  # intake stops; the batcher sends what is buffered, then ends
        try:
            if exc_type is not None and issubclass(exc_type, anyio.get_cancelled_exc_class()):
                tg.cancel_scope.cancel()  # abandon the buffer: the batcher tells each caller
            await tg.__aexit__(None, None, None)
        finally:
            self._client = None
            # release the client even when cancelled, so its connections are closed
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await stack.aclose()

    # -- sending ----------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send ``message`` in the next batch and return once the service accepted it.

        Raises:
            SinkRejected: The message can never be sent to this target (too large,
                malformed, refused by the service as the sender's fault).
            AWSError: The send failed for a reason that may pass; the app retries it.
            RuntimeError: The sink is not open.
        """
        if self._tg is None:
            raise RuntimeError(
                f"{self!r} is not open. An App opens its sinks when it starts, so send "
                "through a running app (inside 'async with app'), or open the sink yourself "
                "with 'async with sink:'."
            )
        try:
            entry, size = self._prepare(message)
        except SinkRejected:
            self._batcher.count_rejected()
            raise
        try:
            outcome = await self._batcher.submit(entry, size)
        except anyio.ClosedResourceError:
            raise RuntimeError(
                f"{self!r} was closed while this message waited for room in its buffer; "
                "the app stopped before the message could be sent."
            ) from None
        if outcome.stopped:
            raise AWSError(f"{self!r} was stopped before this message was sent.")
        if outcome.error is not None:
            if outcome.rejected:
                raise SinkRejected(outcome.error) from outcome.cause
            raise AWSError(outcome.error) from outcome.cause

    async def _call_client(self, entries: list[dict[str, Any]]) -> list[Fault | None]:
        return await self._call(self._client, entries)

    def _too_large(self, size: int, what: str) -> SinkRejected:
        return SinkRejected(
            f"The message is {size:,} bytes ({what}), more than the {self._max_entry_bytes:,} "
            f"bytes {self._target_phrase()} accepts, so it can never be sent; make the "
            "payload smaller (store large data elsewhere and send a reference)."
        )

    def statistics(self) -> SinkStatistics:
        """Counters since the sink was created, and the buffer's current state."""
        s = self._batcher.statistics()
        return SinkStatistics(
            sent=s.sent,
            failed=s.failed,
            rejected=s.rejected,
            batches=s.batches,
            api_calls=s.api_calls,
            largest_batch=s.largest_batch,
            pending=s.pending,
            buffer_size=s.buffer_size,
        )

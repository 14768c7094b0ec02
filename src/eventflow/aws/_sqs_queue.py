"""SQSEventQueue: the app's event queue on SQS, shared by every process that uses it.

``invoke`` sends the event (batched across concurrent callers, ten per SendMessageBatch)
and answers once SQS has stored it. Every app on the queue long-polls it and runs what it
receives. The message stays in SQS until the event's terminal outcome, invisible while an
app holds it (a heartbeat extends its visibility), so a process that dies only delays its
events: SQS delivers them again after the visibility timeout.

Retries go through SQS's visibility timeout, not a resend: the failed attempt's process
sets the message's visibility to the retry delay and lets go of it, and SQS delivers it
again after the delay, to whichever process receives first. That is one call per retry,
atomic (no window where the event exists twice or not at all), survives the death of the
process that scheduled it, and keeps the message's ID. The attempt number comes from SQS:
attempts before a delivery = the ``Attempt`` attribute + ``ApproximateReceiveCount`` - 1,
so a delivery cut short by a dying process counts as an attempt, as Lambda counts a
crashed runtime. Messages an app received but never started when it stops are sent again
with their ``Attempt`` attribute raised (and the originals deleted), so a restart costs
no event a retry. The first-enqueue time travels as an attribute: the event's age counts
from there wherever it runs.

A retry delay longer than SQS can hold (a message stays invisible at most 12 hours after
its receive) goes the other way: the message is sent again, with its delay as
``DelaySeconds`` (at most 15 minutes) and its due time as a ``NotBefore`` attribute, and
the original is deleted. A receive before ``NotBefore`` runs nothing: the message is put
back, by its visibility if the rest of the delay fits in it, else by another send. Its
``Attempt`` is set so that the receive when it is due counts the failed attempt once.

Message format (a contract between processes): see :mod:`eventflow.aws._sqs_wire`, which
alone encodes and decodes it, with the attempt and NotBefore rules and its version.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import structlog
from aiobotocore.session import AioSession
from anyio.abc import TaskStatus
from botocore.exceptions import BotoCoreError, ClientError

from .._clock import Clock
from .._errors import (
    AppClosed,
    ConfigurationError,
    InvalidPayload,
    QueueUnavailable,
    UnknownHandler,
)
from .._payload import json_error
from ..queues import QueuedEvent
from ..sources import Outcome
from . import _sqs_wire as wire
from ._batcher import Batcher, Fault, id_faults
from ._clients import shared_client
from ._errors import failure_hint
from ._shapes import parse_json
from ._sinks import SQS_MAX_BATCH_BYTES
from ._sqs_leases import CLOSE_GRACE, MAX_VISIBILITY, LeasedQueue, receive_backoff

if TYPE_CHECKING:
    from .._contracts import AppHost

__all__ = ("SQSEventQueue", "SQSEventQueueStatistics")

_log = structlog.get_logger("eventflow.sqs_queue")
_BATCH = 10
_MAX_DELAY_SECONDS = 900  # SQS's limit on a message's DelaySeconds: 15 minutes
_VISIBILITY_TRIES = 3  # a retry's visibility change, before it is left to chance
_SEND_BUFFER = 1000  # invokes waiting for a SendMessageBatch before invoke() waits


@dataclass(frozen=True, slots=True)
class SQSEventQueueStatistics:
    """Counters of one :class:`SQSEventQueue` in this process.

    Attributes:
        sent: Events stored by ``invoke`` (SendMessage succeeded).
        send_failed: Events whose send failed (the invoke raised QueueUnavailable).
        received: Messages received.
        duplicates: Messages received again while this process still held them (SQS is
            at-least-once); the newer receipt is kept, nothing runs twice here.
        malformed: Messages that are not eventflow events (left to the redrive policy).
        undeliverable: Messages for a handler this app does not serve (left for another).
        deleted: Messages deleted at a terminal outcome.
        deferred: Retries handed to SQS with their delay (as visibility timeout, or for a
            delay longer than SQS can hold that way, as a message sent again).
        released: Messages sent back unstarted when the app stopped.
        held: Messages received and not yet deleted, deferred or released.
        api_calls: SQS API calls made (send, receive, delete, visibility, attributes).
        postponed: Receives of a long retry before it was due, put back without an
            attempt.
        returned: Messages put back for ``undelivered_delay`` because their events'
            failure records could not be sent (``Outcome.UNDELIVERED``); received again,
            they go straight to the failure path (no retries are left), and the queue's
            redrive policy takes them if that keeps failing.
    """

    sent: int
    send_failed: int
    received: int
    duplicates: int
    malformed: int
    undeliverable: int
    deleted: int
    deferred: int
    released: int
    held: int
    api_calls: int
    postponed: int = 0
    returned: int = 0


class _Held:
    __slots__ = (
        "attempts",
        "body",
        "first",
        "handler",
        "id",
        "not_before",
        "receipt",
        "received",
        "request_id",
        "trace",
        "until",
    )

    def __init__(self, message: dict[str, Any], until: float, received: float) -> None:
        self.id: str = message["MessageId"]
        self.receipt: str = message["ReceiptHandle"]
        self.body: str = message.get("Body", "")
        self.until = until
        self.received = received  # anyio time: SQS's 12-hour visibility limit counts from it
        self.attempts = 0  # attempts made before this delivery
        self.request_id = self.handler = ""
        self.first = 0.0
        self.not_before: float | None = None  # Unix time a long retry is due
        self.trace: dict[str, str] | None = None  # the event's trace context, if any


class SQSEventQueue(LeasedQueue[_Held]):
    """An event queue on SQS for ``App(queue=...)``, shared by every app that uses it.

    Args:
        queue_url: The standard queue's URL. Set its VisibilityTimeout to how soon a
            dead process's events should run elsewhere (30 s is fine) and give it a
            redrive policy as a second safety net (maxReceiveCount well above the
            handlers' max_retries + 1).
        endpoint_url: AWS endpoint (LocalStack, moto); ``None`` for AWS or the
            ``AWS_ENDPOINT_URL*`` environment.
        region_name: AWS region; ``None`` for the standard AWS configuration.
        session: An aiobotocore session to use.
        batch_size: Messages per ReceiveMessage call (1 to 10). An app holds at most its
            concurrency plus one batch.
        wait_time_seconds: Long-polling wait (1 to 20 s). Shutdown waits for the poll in
            progress, so that no message is left received without an attempt, but no
            longer than the app's ``shutdown_timeout`` plus a grace of 2 s.
        pollers: Concurrent ReceiveMessage loops.
        visibility_timeout: Seconds each receive or heartbeat keeps a message invisible
            (default: the queue's VisibilityTimeout).
        delete_linger: Seconds a delete waits for nine others, to batch them.
        senders: SendMessageBatch calls in flight at once; callers that come while they
            are busy share the next batch.
        undelivered_delay: Seconds an event whose failure records could not be sent (a
            dead letter queue that is down, say) stays invisible before it is received
            again; it is not deleted.
        consume: ``False`` for an app that only invokes (a web front end, say): it runs
            no events from the queue.
        check: Check at start that the queue exists and is reachable.
        clock: The clock a throttled send backs off on; by default the clock of the app
            whose queue this is (``App(clock=...)``).
    """

    _what = "event queue"
    _iam_action = (
        "sqs:SendMessage, sqs:ReceiveMessage, sqs:DeleteMessage, "
        "sqs:ChangeMessageVisibility, sqs:GetQueueAttributes"
    )
    _attribute_names = ["VisibilityTimeout", "MaximumMessageSize"]  # noqa: RUF012
    _event_prefix = "sqs_queue"

    def __init__(
        self,
        queue_url: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: AioSession | None = None,
        batch_size: int = 10,
        wait_time_seconds: int = 5,
        pollers: int = 1,
        visibility_timeout: int | None = None,
        delete_linger: float = 0.25,
        senders: int = 4,
        undelivered_delay: int = 60,
        consume: bool = True,
        check: bool = True,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(queue_url, str) or not queue_url:
            raise ConfigurationError(f"queue_url must be the queue's URL, got {queue_url!r}.")
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, int)
            or not 1 <= batch_size <= _BATCH
        ):
            raise ConfigurationError(f"batch_size must be between 1 and 10, got {batch_size!r}.")
        if not isinstance(wait_time_seconds, int) or not 1 <= wait_time_seconds <= 20:
            raise ConfigurationError(
                f"wait_time_seconds must be between 1 and 20 (SQS long polling), "
                f"got {wait_time_seconds!r}."
            )
        if (
            not isinstance(pollers, int)
            or pollers < 1
            or not isinstance(senders, int)
            or senders < 1
        ):
            raise ConfigurationError(
                f"pollers and senders must be integers >= 1, got pollers={pollers!r}, "
                f"senders={senders!r}."
            )
        if not isinstance(delete_linger, int | float) or not 0 <= delete_linger <= 10:
            raise ConfigurationError(
                f"delete_linger must be between 0 and 10 seconds, got {delete_linger!r}."
            )
        super().__init__(
            queue_url,
            visibility_timeout=visibility_timeout,
            endpoint_url=endpoint_url,
            region_name=region_name,
            session=session,
            check=check,
            log=_log,
        )
        if not isinstance(undelivered_delay, int) or not 0 <= undelivered_delay <= 43_200:
            raise ConfigurationError(
                f"undelivered_delay must be a whole number of seconds between 0 and 43200 "
                f"(SQS's longest visibility timeout), got {undelivered_delay!r}."
            )
        self._undelivered_delay = undelivered_delay
        self._returned = 0
        self._batch_size = batch_size
        self._wait = wait_time_seconds
        self._pollers = pollers
        self._linger = float(delete_linger)
        self._senders = senders
        self._consume = consume
        self._max_bytes = 262_144
        self._holding = 0  # received and not yet deleted, deferred or released by SQS
        self._reserved = 0  # room claimed by receives in progress
        self._to_delete: list[_Held] = []
        self._to_defer: list[tuple[_Held, int, bool]] = []  # (message, seconds, a retry?)
        self._to_release: list[_Held] = []
        self._to_send_later: list[tuple[_Held, float]] = []  # (message, Unix time due)
        # SQS's limits, as attributes so that tests can shrink them to seconds
        self._max_visibility = MAX_VISIBILITY
        self._max_delay_seconds = _MAX_DELAY_SECONDS
        self._visibility_margin = 60.0  # for the time between our clock and SQS's
        # invokes share SendMessageBatch calls, up to `senders` in flight, retried as the
        # batcher's rules say (throttling backoff on the app's clock)
        self._sender = Batcher(
            self._send_batch,
            describe=("SendMessageBatch", f"the SQS event queue {queue_url}"),
            max_entries=_BATCH,
            max_bytes=SQS_MAX_BATCH_BYTES,
            linger=0,
            buffer_size=_SEND_BUFFER,
            concurrency=senders,
            clock=clock,
        )
        self._clock_given = clock is not None
        self._send_client: Any = None
        self._send_stack: AsyncExitStack | None = None
        self._deferred_until = 0.0  # when the last retry this process deferred is due
        self._room = anyio.Event()
        self._received = self._duplicates = 0
        self._malformed = self._undeliverable = 0
        self._deleted = self._deferred = self._released = 0
        self._postponed = 0

    def __repr__(self) -> str:
        return f"SQSEventQueue({self.queue_url!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> SQSEventQueue:
        # the sends' client is opened first and closed last: the sender drains in _close
        stack = AsyncExitStack()
        self._send_client = await stack.enter_async_context(
            shared_client(
                "sqs",
                region_name=self._region_name,
                endpoint_url=self._endpoint_url,
                session=self._session,
                batching=True,
            )
        )
        try:
            attributes = await self._open()
            await self._tg.start(self._sender.run)
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_GRACE):
                await stack.aclose()
            raise
        self._send_stack = stack
        self._max_bytes = int(attributes.get("MaximumMessageSize", self._max_bytes))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # the app has settled every event it took; flush deletes, defers and releases
        self._closing = True
        self._closed.set()
        for held in list(self._held.values()):
            if held.request_id:
                self._release(held)  # received, never delivered to the app
            else:
                self._drop(held)
        self._wake()
        self._sender.close()  # invokes already waiting are sent; no new ones are taken
        try:
            await self._close()
        finally:
            if self._send_stack is not None:
                stack, self._send_stack = self._send_stack, None
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_GRACE):
                    await stack.aclose()

    # -- sending --------------------------------------------------------------------

    async def put(self, event: QueuedEvent) -> None:
        """Send ``event`` to SQS; return once SQS has stored it.

        Raises:
            InvalidPayload: the message would be larger than the queue accepts.
            QueueUnavailable: SQS did not store it (nothing was accepted).
        """
        if self._client is None or self._closing:
            raise QueueUnavailable(
                f"The SQS event queue {self.queue_url} is not open; the app opens it when "
                "it starts (App(queue=...))."
            )
        body = wire.encode_body(event.payload)
        trace = wire.encode_trace(event.trace_context)
        entry = {
            "MessageBody": body,
            "MessageAttributes": wire.attributes(
                event.request_id,
                event.handler,
                event.first_enqueued,
                event.attempts,
                trace=trace,
            ),
        }
        size = wire.size_of(body, event.request_id, event.handler, trace)
        if size > self._max_bytes:
            raise InvalidPayload(
                f"The payload for {event.handler!r} is {len(body.encode())} bytes as JSON "
                f"({size} with its attributes); the SQS "
                f"event queue {self.queue_url} takes messages of at most {self._max_bytes} "
                "bytes (its MaximumMessageSize). Put the data in S3 and invoke with its key."
            )
        try:
            outcome = await self._sender.submit(entry, size)
        except anyio.ClosedResourceError:
            raise QueueUnavailable(
                f"The SQS event queue {self.queue_url} closed while the event waited to be "
                "sent; nothing was accepted."
            ) from None
        if outcome.stopped:
            raise QueueUnavailable(
                f"The SQS event queue {self.queue_url} closed before SQS answered the send; "
                "the event may or may not have been stored."
            )
        if outcome.error is not None:
            raise QueueUnavailable(
                f"The SQS event queue {self.queue_url} did not store the event: "
                f"{outcome.error} Nothing was accepted; invoke again."
            ) from outcome.cause

    async def _send_batch(self, entries: list[dict[str, Any]]) -> list[Fault | None]:
        response = await self._send_client.send_message_batch(
            QueueUrl=self.queue_url,
            Entries=[dict(entry, Id=str(i)) for i, entry in enumerate(entries)],
        )
        return id_faults(response, len(entries))

    # -- receiving ------------------------------------------------------------------

    async def run(self, app: AppHost, *, task_status: TaskStatus[None]) -> None:
        """Receive events and hand them to ``app`` until cancelled."""
        if self._client is None:
            raise RuntimeError(
                "SQSEventQueue is not open: pass it as App(queue=...); the app opens it."
            )
        if not self._clock_given:
            self._sender.clock = app.clock  # a throttled send backs off in the app's time
        if not self._consume:
            task_status.started()
            return
        bound = app.concurrency + self._batch_size
        async with anyio.create_task_group() as tg:
            for _ in range(self._pollers):
                tg.start_soon(self._poll, app, bound)
            task_status.started()
            await self._until_stopped(app)

    async def _poll(self, app: AppHost, bound: int) -> None:
        backoff = receive_backoff(app.clock)
        while True:
            # hold at most the app's concurrency plus one batch, pending deletes included
            while self._holding + self._reserved + self._batch_size > bound:
                if self._to_delete or self._to_defer or self._to_send_later:
                    self._wake()  # room is waiting in a batch not sent yet
                if self._room.is_set():
                    self._room = anyio.Event()
                await self._room.wait()
            await anyio.lowlevel.checkpoint()  # where a shutdown's cancellation lands
            room = min(self._batch_size, bound - self._holding - self._reserved)
            self._reserved += room
            messages = None
            try:
                # shielded: a poll cut off would leave its messages received, unattempted;
                # but only until the shutdown's bound, in case SQS never answers
                with self._shielded() as shield:
                    messages = await self._receive(room)
            finally:
                self._reserved -= room
            if shield.cancelled_caught:
                _log.warning(
                    "sqs_queue.receive_cut_short",
                    queue_url=self.queue_url,
                    reason=(
                        "SQS did not answer the receive in progress within the app's "
                        "shutdown_timeout plus the grace; the app stops without it"
                    ),
                )
            if messages is None:
                await backoff.wait()
                continue
            backoff.reset()
            batch = self._take(messages)
            for i, held in enumerate(batch):
                try:
                    await self._deliver(app, held)
                except BaseException as exc:
                    for rest in batch[i:]:
                        self._release(rest)  # a no-op for what is no longer held
                    if isinstance(exc, AppClosed):
                        return
                    raise

    async def _receive(self, room: int) -> list[dict[str, Any]] | None:
        try:
            self._api_calls += 1
            response = await self._receive_client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=room,
                WaitTimeSeconds=self._wait,
                VisibilityTimeout=self._vt,
                MessageAttributeNames=wire.RECEIVE_ATTRIBUTES,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (ClientError, BotoCoreError) as exc:
            _log.error(
                "sqs_queue.receive_failed",
                queue_url=self.queue_url,
                error=f"{type(exc).__name__}: {exc}",
                hint=failure_hint(exc),
            )
            return None
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _take(self, messages: list[dict[str, Any]]) -> list[_Held]:
        now = anyio.current_time()
        until = now + self._vt
        batch: list[_Held] = []
        for m in messages:
            self._received += 1
            old = self._held.get(m["MessageId"])
            if old is not None:
                # SQS delivered it again while we hold it: keep the newer receipt only
                old.receipt = m["ReceiptHandle"]
                old.until = until
                old.received = now
                self._duplicates += 1
                _log.warning(
                    "sqs_queue.duplicate_delivery",
                    message_id=old.id,
                    request_id=old.request_id,
                    handler=old.handler,
                    attempt=old.attempts,
                )
                continue
            held = _Held(m, until, now)
            self._held[held.id] = held
            self._holding += 1
            if self._parse(held, m):
                batch.append(held)
        return batch

    def _parse(self, held: _Held, message: dict[str, Any]) -> bool:
        try:
            event = wire.decode(message)
        except ValueError as exc:  # whatever a foreign sender put there: that message alone
            held.request_id, held.handler = wire.identity(message)
            self._malformed_message(held, str(exc))
            return False
        held.request_id, held.handler = event.request_id, event.handler
        held.first, held.attempts = event.first_enqueued, event.attempts
        held.not_before = event.not_before
        held.trace = event.trace_context
        return True

    def _malformed_message(self, held: _Held, reason: str) -> None:
        """Count, log and let go of a message that cannot be an event: it shows again after
        its visibility timeout until the queue's redrive policy moves it aside."""
        self._malformed += 1
        _log.error(
            "sqs_queue.malformed_message",
            queue_url=self.queue_url,
            message_id=held.id,
            request_id=held.request_id or None,
            handler=held.handler or None,
            attempt=held.attempts,
            reason=f"{reason}. It is left to the queue's redrive policy.",
        )
        self._drop(held)

    async def _deliver(self, app: AppHost, held: _Held) -> None:
        if wire.is_early(held.not_before, time.time()):
            self._postpone(held)
            return
        # where a body becomes an event: nothing it holds may raise out of the poller
        try:
            payload = parse_json(held.body)
        except RecursionError:
            self._malformed_message(held, "its body is JSON nested too deeply to decode")
            return
        except Exception as exc:
            self._malformed_message(held, f"its body is not valid JSON ({exc})")
            return
        why = json_error(payload)  # what invoke refuses (1e999 decodes to an infinity)
        if why is not None:
            self._malformed_message(held, f"its payload cannot be an event ({why})")
            return
        event = QueuedEvent(
            held.request_id, held.handler, payload, held.first, held.attempts, held.trace
        )
        try:
            await app.deliver(
                event,
                settle=lambda _rid, outcome: self._settle(held, outcome),
                defer=lambda _rid, delay: self._defer(held, delay),
            )
        except InvalidPayload as exc:
            self._malformed_message(held, f"its payload cannot be an event ({exc})")
        except UnknownHandler as exc:
            self._undeliverable += 1
            _log.error(
                "sqs_queue.undeliverable",
                queue_url=self.queue_url,
                request_id=held.request_id,
                handler=held.handler,
                attempt=held.attempts,
                reason=f"{exc} It is left for an app that serves it.",
            )
            self._drop(held)

    # -- settling -------------------------------------------------------------------

    def _drop(self, held: _Held) -> None:
        # let go without a call: SQS shows it again after its visibility timeout
        if self._held.pop(held.id, None) is not None:
            self._holding -= 1
            self._room.set()

    def _settle(self, held: _Held, outcome: Outcome) -> None:
        if outcome is Outcome.RELEASED:
            self._release(held)
        elif outcome is Outcome.UNDELIVERED:
            if held.id in self._held:
                self._returned += 1
                delay = self._undelivered_delay
                self._held.pop(held.id)
                self._put_back(held, delay, time.time() + delay, retry=False)
        elif self._held.pop(held.id, None) is not None:
            self._to_delete.append(held)
            self._nudge(len(self._to_delete))

    def _defer(self, held: _Held, delay: float) -> None:
        if self._held.pop(held.id, None) is None:
            return
        seconds = max(0, math.ceil(delay))
        # until then the retry is this process's business, whatever SQS's counts say
        self._deferred_until = max(self._deferred_until, anyio.current_time() + seconds + 1)
        self._put_back(held, seconds, time.time() + delay, retry=True)

    def _postpone(self, held: _Held) -> None:
        # received before its NotBefore: put back, and no attempt runs
        assert held.not_before is not None
        if self._held.pop(held.id, None) is None:
            return
        self._postponed += 1
        seconds = math.ceil(held.not_before - time.time())
        _log.debug(
            "sqs_queue.postponed",
            request_id=held.request_id,
            handler=held.handler,
            attempt=held.attempts + 2,  # the attempt it is due for (Attempt is set one short)
            due_in_s=seconds,
        )
        # by visibility, the receive when it is due adds one to ApproximateReceiveCount,
        # and the Attempt attribute was set one short for it (see _send_back)
        self._put_back(held, seconds, held.not_before, retry=False)

    def _put_back(self, held: _Held, seconds: int, due: float, *, retry: bool) -> None:
        """Hide ``held`` for ``seconds`` (until Unix time ``due``): by its visibility if SQS
        allows that long, else as a fresh message that carries the due time."""
        if seconds <= self._visibility_left(held):
            self._to_defer.append((held, seconds, retry))
            self._nudge(len(self._to_defer))
        else:
            # the fresh message's attempts come from its attribute alone: count in it what
            # this delivery counted (a failed attempt, or a postponing receive)
            held.attempts += 1
            self._to_send_later.append((held, due))
            self._nudge(len(self._to_send_later))

    def _visibility_left(self, held: _Held) -> float:
        """Seconds SQS lets ``held`` stay invisible, counted from its receive."""
        held_for = anyio.current_time() - held.received
        return self._max_visibility - held_for - self._visibility_margin

    def _release(self, held: _Held) -> None:
        if self._held.pop(held.id, None) is None:
            return
        self._to_release.append(held)
        self._nudge(len(self._to_release))

    def _nudge(self, pending: int) -> None:
        # releases and long retries go out at once: their messages wait for nothing else
        self._queued(pending, urgent=bool(self._to_release or self._to_send_later))

    def _ready(self) -> bool:
        return (
            len(self._to_delete) >= _BATCH
            or len(self._to_defer) >= _BATCH
            or bool(self._to_release or self._to_send_later)
        )

    async def _flush_round(self) -> None:
        if self._to_defer:
            defers, self._to_defer = self._to_defer[:_BATCH], self._to_defer[_BATCH:]
            async with self._visibility_lock:  # after any heartbeat in flight
                await self._change_visibility(defers)
        if self._to_delete:
            chunk, self._to_delete = self._to_delete[:_BATCH], self._to_delete[_BATCH:]
            self._deleted += await self._delete(chunk)
        if self._to_release:
            chunk, self._to_release = self._to_release[:_BATCH], self._to_release[_BATCH:]
            await self._send_back([(h, None) for h in chunk])
        if self._to_send_later:
            later = self._to_send_later[:_BATCH]
            self._to_send_later = self._to_send_later[_BATCH:]
            await self._send_back(later)

    def _done(self, count: int) -> None:
        self._holding -= count
        self._room.set()

    async def _delete(self, chunk: list[_Held]) -> int:
        entries = [{"Id": str(i), "ReceiptHandle": h.receipt} for i, h in enumerate(chunk)]
        failed = await self._batch("delete_message_batch", entries, chunk)
        self._done(len(chunk))
        # a failed delete means a duplicate delivery later, never a loss
        return 0 if failed is None else len(chunk) - len(failed)

    async def _change_visibility(self, defers: list[tuple[_Held, int, bool]]) -> None:
        todo = defers
        for tries in range(1, _VISIBILITY_TRIES + 1):
            entries = [
                {"Id": str(i), "ReceiptHandle": h.receipt, "VisibilityTimeout": delay}
                for i, (h, delay, _) in enumerate(todo)
            ]
            failed = await self._batch(
                "change_message_visibility_batch", entries, [h for h, _, _ in todo]
            )
            self._deferred += sum(
                1
                for i, (_, _, retry) in enumerate(todo)
                if retry and failed is not None and str(i) not in failed
            )
            todo = [d for i, d in enumerate(todo) if failed is None or str(i) in failed]
            if not todo or tries == _VISIBILITY_TRIES:
                break
            # a message left as it is shows again once its current visibility lapses,
            # which can be long before the retry's delay: try again, briefly, in wall time
            # (the time SQS's visibility timeout runs in, whatever the app's clock)
            await anyio.sleep(0.1 * 2**tries * (0.5 + random.random()))
        self._done(len(defers))

    async def _send_back(self, later: Sequence[tuple[_Held, float | None]]) -> None:
        # a fresh message with the attempts so far, so its next receive counts no attempt;
        # with a due time, a long retry: delayed as far as SQS allows, then postponed
        chunk = [h for h, _ in later]
        entries = []
        for i, (h, due) in enumerate(later):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": h.body}
            attempts = h.attempts
            if due is not None:
                delay, adjust = wire.resend_delay(due, time.time(), self._max_delay_seconds)
                entry["DelaySeconds"] = delay
                attempts += adjust
            entry["MessageAttributes"] = wire.attributes(
                h.request_id, h.handler, h.first, attempts, due, wire.encode_trace(h.trace)
            )
            entries.append(entry)
        failed = await self._batch("send_message_batch", entries, chunk)
        sent: list[tuple[_Held, float | None]] = []
        unsent: list[tuple[_Held, float | None]] = []
        for i, pair in enumerate(later):
            (unsent if failed is None or str(i) in failed else sent).append(pair)
        if unsent:
            # a release shows again now (one receive is counted), a long retry once as much
            # of its delay as the original's visibility allows has passed
            await self._batch(
                "change_message_visibility_batch",
                [
                    {
                        "Id": str(i),
                        "ReceiptHandle": h.receipt,
                        "VisibilityTimeout": 0
                        if due is None
                        else max(
                            0, min(math.ceil(due - time.time()), int(self._visibility_left(h)))
                        ),
                    }
                    for i, (h, due) in enumerate(unsent)
                ],
                [h for h, _ in unsent],
            )
            self._done(len(unsent))
        if sent:
            await self._delete([h for h, _ in sent])
        released = sum(1 for _, due in sent if due is None)
        self._released += released
        self._deferred += len(sent) - released

    # -- heartbeats and emptiness ---------------------------------------------------

    async def wait_empty(self, poll_interval: float = 0.2) -> None:
        """Return once the queue holds no message, visible, in flight or delayed.

        SQS's counts are approximate (on AWS they can lag by a minute), so this polls them
        until they read zero twice in a row and every retry this process deferred is due.
        """
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        empty_readings = 0
        while True:
            busy = self._sender.statistics().pending or self._holding
            if busy or anyio.current_time() < self._deferred_until:
                empty_readings = 0
            else:
                self._api_calls += 1
                result = await self._client.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=names
                )
                counts = result.get("Attributes", {})
                empty = not any(int(counts.get(n, "0")) for n in names)
                empty_readings = empty_readings + 1 if empty else 0
                if empty_readings >= 2:
                    return
            await anyio.sleep(poll_interval)

    def _unsent(self) -> int:
        return (
            len(self._to_delete)
            + len(self._to_defer)
            + len(self._to_release)
            + len(self._to_send_later)
        )

    @property
    def consume(self) -> bool:
        """Whether this queue's app runs the events it receives (``consume=`` at construction)."""
        return self._consume

    def statistics(self) -> SQSEventQueueStatistics:
        """A snapshot of this process's counters."""
        sender = self._sender.statistics()
        return SQSEventQueueStatistics(
            sent=sender.sent,
            send_failed=sender.failed + sender.rejected,
            received=self._received,
            duplicates=self._duplicates,
            malformed=self._malformed,
            undeliverable=self._undeliverable,
            deleted=self._deleted,
            deferred=self._deferred,
            released=self._released,
            held=self._holding,
            api_calls=self._api_calls + sender.api_calls,
            postponed=self._postponed,
            returned=self._returned,
        )

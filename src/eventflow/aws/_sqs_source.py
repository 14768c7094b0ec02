"""SQSSource: events from an SQS queue, deleted only when they reach a terminal outcome.

S3 notifications, SNS subscriptions and EventBridge rules all deliver to SQS; this source
long-polls the queue in batches, decodes each body into the payload Lambda would have
given the function (``_shapes.decode_body``; what a body is, ``eventflow.events`` decides),
and submits it to the app with a settle callback. The message stays invisible (its
visibility extended by a heartbeat) while the event runs and waits for retries; it is
deleted (batched) once the event succeeded or was dead-lettered, and made visible again
(batched) if the app stops first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import anyio
import structlog
from aiobotocore.session import AioSession
from anyio.abc import TaskStatus
from botocore.exceptions import BotoCoreError, ClientError

from .._errors import AppClosed, ConfigurationError, InvalidPayload
from ..events._bodies import BodyKind
from ..sources import Outcome
from ._routes import router_for, submit_routed
from ._shapes import decode_body
from ._sqs_leases import LeasedQueue, receive_backoff

if TYPE_CHECKING:
    from .._contracts import AppHost
    from .._handler import Handler
    from ..routing import Route

__all__ = ("SQSSource", "SQSSourceStatistics")

_log = structlog.get_logger("eventflow.sqs")
_BATCH = 10
_REST = 1.0  # seconds extra pollers stay off after a short receive


@dataclass(frozen=True, slots=True)
class SQSSourceStatistics:
    """Counters of one :class:`SQSSource`.

    Attributes:
        received: Messages received (every delivery).
        duplicates: Deliveries of a message already held: its event runs once, and its
            newest receipt handle is the one kept for the delete.
        submitted: Events submitted to the app.
        rejected: Messages whose body could not be an event (sent down the failure path).
        test_events: S3 test events deleted without an invocation.
        unmatched: Messages that matched no route (with routes): deleted, logged at debug.
        deleted: Messages deleted after a terminal outcome.
        released: Messages made visible again (the app stopped first).
        returned: Messages made visible again after ``undelivered_delay`` because their
            events' failure records could not be sent (``Outcome.UNDELIVERED``).
        held: Messages received and not yet deleted or released.
        api_calls: SQS API calls made (receive, delete, change visibility).
    """

    received: int
    duplicates: int
    submitted: int
    rejected: int
    test_events: int
    unmatched: int
    deleted: int
    released: int
    held: int
    api_calls: int
    returned: int = 0


class _Held:
    __slots__ = ("id", "receipt", "until")

    def __init__(self, message_id: str, receipt: str, until: float) -> None:
        self.id = message_id
        self.receipt = receipt
        self.until = until


class SQSSource(LeasedQueue[_Held]):
    """Take events for ``handler`` from the SQS queue at ``queue_url``.

    Args:
        queue_url: The queue's URL.
        handler: The handler (or its name) that runs every event of this queue, or a
            list of :class:`eventflow.routing.Route`: each event then runs once per
            matching route, with the filter AWS applies to the body's kind (README,
            "Routing"); one that matches none is deleted and counted as ``unmatched``; a
            body that is not JSON goes down the first route's failure path.
        batch_size: Messages per ReceiveMessage call (1 to 10).
        wait_time_seconds: Long-polling wait (0 to 20 s).
        pollers: Concurrent ReceiveMessage loops at most. One always polls; the others
            join while receives come back full (a backlog) and stop for a second after
            one comes back short, so a queue that is not deep is not split into partial
            batches over concurrent calls.
        max_in_flight: Messages held at once (received, not yet deleted or released);
            polling pauses at this bound. Events waiting for a retry count, so allow for
            them.
        visibility_timeout: Seconds each extension keeps a message invisible (default: the
            queue's own VisibilityTimeout).
        delete_linger: Seconds a delete or release waits for nine others, to batch them.
        undelivered_delay: Seconds a message stays invisible before it is received again
            when its event failed but none of its failure records could be sent (a dead
            letter queue that is down, say): it is not deleted, and the queue's own redrive
            policy takes it if it keeps coming back.
        endpoint_url: AWS endpoint (LocalStack, moto); ``None`` for AWS or the
            ``AWS_ENDPOINT_URL*`` environment.
        region_name: AWS region; ``None`` for the standard AWS configuration.
        session: An aiobotocore session to use.
        check: Check at start that the queue exists and is reachable.
    """

    _what = "source queue"
    _iam_action = "sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility"
    _attribute_names = ["VisibilityTimeout"]  # noqa: RUF012
    _event_prefix = "sqs"

    def __init__(
        self,
        queue_url: str,
        handler: str | Handler | Sequence[Route],
        *,
        batch_size: int = 10,
        wait_time_seconds: int = 20,
        pollers: int = 2,
        max_in_flight: int = 1000,
        visibility_timeout: int | None = None,
        delete_linger: float = 0.05,
        undelivered_delay: int = 60,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: AioSession | None = None,
        check: bool = True,
    ) -> None:
        if not 1 <= batch_size <= _BATCH:
            raise ConfigurationError(f"batch_size must be between 1 and 10, got {batch_size!r}.")
        if not 0 <= wait_time_seconds <= 20:
            raise ConfigurationError(
                f"wait_time_seconds must be between 0 and 20 (SQS long polling), "
                f"got {wait_time_seconds!r}."
            )
        if pollers < 1 or max_in_flight < batch_size:
            raise ConfigurationError(
                f"pollers must be >= 1 and max_in_flight >= batch_size, got pollers={pollers!r}, "
                f"max_in_flight={max_in_flight!r}."
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
        self._router = router_for(handler, "SQSSource")
        routed = None if self._router is None else self._router.routes[0].handler
        self.handler: str | Handler = routed or cast("str | Handler", handler)
        self._unmatched = 0
        self._undelivered_delay = undelivered_delay
        self._to_return: list[_Held] = []  # released after undelivered_delay
        self._returned = 0
        self._batch_size = batch_size
        self._wait = wait_time_seconds
        self._pollers = pollers
        self._max_in_flight = max_in_flight
        self._linger = delete_linger
        self._to_delete: list[_Held] = []
        self._to_release: list[_Held] = []
        self._room = anyio.Event()
        self._backlog = anyio.Event()  # set while receives come back full
        self._last_short = float("-inf")
        self._received = self._duplicates = 0
        self._submitted = self._rejected = self._test_events = 0
        self._deleted = self._released = 0

    def __repr__(self) -> str:
        return f"SQSSource({self.queue_url!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> SQSSource:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # the app has settled every event it took from us; flush deletes and releases
        self._closing = True
        self._closed.set()
        self._work.set()
        self._full.set()
        for held in list(self._held.values()):
            self._release(held)  # received but never submitted
        await self._close()

    async def run(self, app: AppHost, *, task_status: TaskStatus[None]) -> None:
        """Poll the queue and submit its events until cancelled."""
        if self._client is None:
            raise RuntimeError(
                "SQSSource is not open: pass it in App(sources=[...]); the app opens it."
            )
        async with anyio.create_task_group() as tg:
            for index in range(self._pollers):
                tg.start_soon(self._poll, app, index > 0)
            task_status.started()
            await self._until_stopped(app)

    # -- receiving ------------------------------------------------------------------

    async def _poll(self, app: AppHost, extra: bool) -> None:
        backoff = receive_backoff(app.clock)
        while True:
            if extra:
                await self._backlog.wait()
            while len(self._held) >= self._max_in_flight:
                if self._room.is_set():  # another poller may be waiting on the current one
                    self._room = anyio.Event()
                await self._room.wait()
            room = min(self._batch_size, self._max_in_flight - len(self._held))
            try:
                self._api_calls += 1
                response = await self._receive_client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=room,
                    WaitTimeSeconds=self._wait,
                    VisibilityTimeout=self._vt,
                )
            except (ClientError, BotoCoreError) as exc:
                _log.error(
                    "sqs.receive_failed",
                    queue_url=self.queue_url,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=backoff.ceiling,
                )
                await backoff.wait()
                continue
            backoff.reset()
            messages = response.get("Messages", [])
            now = anyio.current_time()
            if len(messages) < room:
                self._last_short = now
                if self._backlog.is_set():
                    self._backlog = anyio.Event()
            elif now - self._last_short >= _REST:
                self._backlog.set()
            until = now + self._vt
            batch = []
            for m in messages:
                known = self._held.get(m["MessageId"])
                if known is not None:
                    # only the newest receipt handle is sure to delete or extend it
                    known.receipt = m["ReceiptHandle"]
                    known.until = until
                    self._duplicates += 1
                    continue
                held = _Held(m["MessageId"], m["ReceiptHandle"], until)
                self._held[held.id] = held
                batch.append((held, m.get("Body", "")))
            self._received += len(messages)
            accepted = 0
            try:
                for held, body in batch:
                    if not await self._dispatch(app, held, body):
                        break  # the app is closing
                    accepted += 1
            finally:
                # stopped mid-batch: give back what was not handed to the app
                for held, _ in batch[accepted:]:
                    self._release(held)
            if accepted < len(batch):
                return

    async def _dispatch(self, app: AppHost, held: _Held, body: str) -> bool:
        kind, payload = decode_body(body)
        settle = functools.partial(self._settle, held)
        if kind is BodyKind.S3_TEST_EVENT:
            self._test_events += 1
            _log.info(
                "sqs.s3_test_event_deleted",
                queue_url=self.queue_url,
                bucket=payload.get("Bucket"),
                message_id=held.id,
            )
            self._delete(held)
            return True
        try:
            if kind is BodyKind.INVALID:
                await app.reject(self.handler, body, payload, settle=settle)
                self._rejected += 1
                return True
            try:
                if self._router is not None:
                    if not await submit_routed(
                        app, self._router, kind, payload, body, settle, self._count_submitted
                    ):
                        self._unmatched += 1
                        _log.debug("sqs.unmatched", queue_url=self.queue_url, message_id=held.id)
                        self._delete(held)
                    return True
                await app.submit(self.handler, payload, settle=settle)
            except InvalidPayload as exc:
                # valid JSON the app refuses (say, 1e999 became an infinity): its own failure
                reason = f"The SQS message body cannot be an event: {exc}"
                await app.reject(self.handler, body, reason, settle=settle)
                self._rejected += 1
            else:
                self._submitted += 1
        except AppClosed:
            return False
        return True

    def _count_submitted(self) -> None:
        self._submitted += 1

    def _settle(self, held: _Held, request_id: str, outcome: Outcome) -> None:
        if outcome is Outcome.RELEASED:
            self._release(held)
        elif outcome is Outcome.UNDELIVERED:
            if self._held.pop(held.id, None) is not None:
                self._to_return.append(held)
                self._room.set()
                self._queued(len(self._to_return))
        else:
            self._delete(held)

    def _delete(self, held: _Held) -> None:
        if self._held.pop(held.id, None) is None:
            return
        self._to_delete.append(held)
        self._room.set()
        self._queued(len(self._to_delete))

    def _release(self, held: _Held) -> None:
        if self._held.pop(held.id, None) is None:
            return
        self._to_release.append(held)
        self._room.set()
        self._queued(len(self._to_release))

    # -- deleting, releasing, heartbeats --------------------------------------------

    def _ready(self) -> bool:
        return max(len(self._to_delete), len(self._to_release), len(self._to_return)) >= _BATCH

    async def _flush_round(self) -> None:
        if self._to_delete:
            chunk, self._to_delete = self._to_delete[:_BATCH], self._to_delete[_BATCH:]
            await self._batch_call("delete_message_batch", chunk)
        if self._to_release:
            chunk, self._to_release = self._to_release[:_BATCH], self._to_release[_BATCH:]
            async with self._visibility_lock:  # after any heartbeat in flight
                await self._batch_call("change_message_visibility_batch", chunk, visibility=0)
        if self._to_return:
            chunk, self._to_return = self._to_return[:_BATCH], self._to_return[_BATCH:]
            async with self._visibility_lock:
                await self._batch_call(
                    "change_message_visibility_batch",
                    chunk,
                    visibility=self._undelivered_delay,
                )

    async def _batch_call(
        self, operation: str, chunk: list[_Held], *, visibility: int | None = None
    ) -> None:
        entries: list[dict[str, Any]] = []
        for i, held in enumerate(chunk):
            entry: dict[str, Any] = {"Id": str(i), "ReceiptHandle": held.receipt}
            if visibility is not None:
                entry["VisibilityTimeout"] = visibility
            entries.append(entry)
        failed = await self._batch(operation, entries, chunk)
        if failed is None:
            return  # the messages reappear after their visibility timeout: a duplicate
        done = len(chunk) - len(failed)
        if operation == "delete_message_batch":
            self._deleted += done
        elif visibility:
            self._returned += done
        else:
            self._released += done

    def _unsent(self) -> int:
        return len(self._to_delete) + len(self._to_release) + len(self._to_return)

    def statistics(self) -> SQSSourceStatistics:
        return SQSSourceStatistics(
            received=self._received,
            duplicates=self._duplicates,
            submitted=self._submitted,
            rejected=self._rejected,
            test_events=self._test_events,
            unmatched=self._unmatched,
            deleted=self._deleted,
            released=self._released,
            held=len(self._held),
            api_calls=self._api_calls,
            returned=self._returned,
        )

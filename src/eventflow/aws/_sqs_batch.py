"""SQSBatchSource: Lambda's SQS event-source mapping, batches and partial failures included.

Where :class:`SQSSource` turns each message into one asynchronous invocation (retries, dead
letters and destinations are the app's), this source does what Lambda's event-source mapping
does: it polls the queue, gathers up to ``batch_size`` messages (for at most
``max_batching_window`` seconds), and calls the handler once per batch, synchronously, with
Lambda's SQS event ``{"Records": [...]}``. What happens next:

=====================================================  ==========================================
the handler                                            the messages
=====================================================  ==========================================
returns (``None``, ``{}``, or no/empty                 all deleted
``batchItemFailures``)
returns ``{"batchItemFailures": [{"itemIdentifier":    those messages stay (FIFO: with the later
id}, ...]}`` (``report_batch_item_failures=True``)     messages of their groups); the rest deleted
returns failures naming an unknown, empty or           none deleted: the whole batch failed
non-string identifier, or a value that is not a
response object
raises, or times out                                   none deleted: the whole batch failed
=====================================================  ==========================================

A message that is not deleted is left alone: it shows again once the queue's visibility
timeout lapses, its receive count one higher, and the queue's redrive policy moves it to the
dead-letter queue after ``maxReceiveCount`` receives. There are no retries in between, as in
Lambda.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
import structlog
from aiobotocore.session import AioSession
from anyio.abc import TaskGroup, TaskStatus
from botocore.exceptions import BotoCoreError, ClientError

from .._errors import AppClosed, ConfigurationError
from ._batcher import Backoff
from ._clients import resolve_region
from ._sqs_leases import LeasedQueue, receive_backoff

if TYPE_CHECKING:
    from .._contracts import AppHost
    from .._handler import Handler

__all__ = ("SQSBatchSource", "SQSBatchSourceStatistics")

_log = structlog.get_logger("eventflow.sqs_batch")
_RECEIVE_MAX: Final = 10  # messages per ReceiveMessage, and entries per batch call
_MAX_PAYLOAD: Final = 6 * 1024 * 1024  # Lambda's invocation payload limit
_MAX_WINDOW: Final = 300.0  # Lambda's MaximumBatchingWindowInSeconds limit
_MAX_BATCH: Final = 10_000  # Lambda's BatchSize limit for standard queues
_RELEASE_TIMEOUT: Final = 5.0  # seconds a shutdown waits to give messages back


@dataclass(frozen=True, slots=True)
class SQSBatchSourceStatistics:
    """Counters of one :class:`SQSBatchSource`; a frozen snapshot.

    Attributes:
        received: Messages received (every delivery).
        batches: Handler invocations, one per batch.
        batches_succeeded: Batches whose every message was deleted.
        batches_partial: Batches that reported some messages failed (``batchItemFailures``).
        batches_failed: Batches that failed whole: the handler raised or timed out, or its
            response was invalid.
        deleted: Messages deleted.
        failed: Messages left on the queue after a failure, to show again once their
            visibility timeout lapses.
        released: Messages received but never handed to the handler, made visible again
            at once because the app stopped.
        running: Batches being handled now.
        held: Messages received and not yet deleted, failed or released.
        api_calls: SQS API calls made (receive, delete, change visibility).
    """

    received: int
    batches: int
    batches_succeeded: int
    batches_partial: int
    batches_failed: int
    deleted: int
    failed: int
    released: int
    running: int
    held: int
    api_calls: int


class _Held:
    __slots__ = ("group", "id", "receipt", "record", "until")

    def __init__(self, record: dict[str, Any], until: float) -> None:
        self.id: str = record["messageId"]
        self.receipt: str = record["receiptHandle"]
        self.group: str | None = record["attributes"].get("MessageGroupId")
        self.record = record
        self.until = until


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ReceiveMessage's ``MessageAttributes`` in Lambda's lower-camel form (binary as base64)."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = _b64(value["BinaryValue"])
        item["stringListValues"] = list(value.get("StringListValues", []))
        item["binaryListValues"] = [_b64(b) for b in value.get("BinaryListValues", [])]
        item["dataType"] = value["DataType"]
        out[name] = item
    return out


# Lambda lists these first, in this order; any others SQS returns follow
_ATTRIBUTE_ORDER: Final = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
)


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One message of a ReceiveMessage response as the record Lambda hands the function."""
    received = message.get("Attributes", {})
    attributes = {k: received[k] for k in _ATTRIBUTE_ORDER if k in received}
    attributes.update((k, v) for k, v in received.items() if k not in attributes)
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


def _arn_from_url(queue_url: str, region: str) -> str:
    # https://sqs.<region>.amazonaws.com/<account>/<name>, or an emulator's http://host/<account>/<name>
    parts = queue_url.rstrip("/").split("/")
    account, name = (parts[-2], parts[-1]) if len(parts) >= 2 else ("000000000000", parts[-1])
    return f"arn:aws:sqs:{region}:{account}:{name}"


class SQSBatchSource(LeasedQueue[_Held]):
    """Run ``handler`` on batches of the SQS queue at ``queue_url``, as Lambda's SQS trigger does.

    The handler gets Lambda's SQS event (see :class:`eventflow.events.SQSEvent`) and is run
    through the app as a ``RequestResponse`` invocation: the handler's timeout, concurrency
    cap, thread pool for synchronous handlers and logging all apply, and the app's retries,
    dead letters and destinations do not (the queue's redrive policy takes their place).

    Args:
        queue_url: The queue's URL.
        handler: The handler (or its name) that runs every batch.
        batch_size: Messages per batch at most (Lambda's ``BatchSize``): 1 to 10 for a FIFO
            queue, 1 to 10000 otherwise; above 10 needs a batching window of at least 1 s.
        max_batching_window: Seconds to keep gathering a batch after its first message
            arrived (Lambda's ``MaximumBatchingWindowInSeconds``, 0 to 300). With 0, a batch
            is what one ReceiveMessage call returns. SQS long polling waits whole seconds,
            so a window ends on the next whole second after it. A batch also ends at about
            6 MB of bodies, Lambda's payload limit.
        report_batch_item_failures: Read ``batchItemFailures`` from the handler's result
            (Lambda's ``ReportBatchItemFailures`` response type). When False, any return is
            a success and every message of the batch is deleted.
        max_concurrency: Batches handled at once at most (Lambda's ``MaximumConcurrency``).
            A poller gathers the next batch only when a slot is free.
        pollers: Concurrent ReceiveMessage loops.
        wait_time_seconds: Long-polling wait while the queue is empty (0 to 20 s).
        shutdown_grace: Seconds a batch being handled when the app stops may still run; a
            batch cut short is a failed batch (its messages show again).
        endpoint_url: AWS endpoint (LocalStack, moto); ``None`` for AWS or the
            ``AWS_ENDPOINT_URL*`` environment.
        region_name: AWS region; ``None`` for the standard AWS configuration.
        session: An aiobotocore session to use.
        check: Check at start that the queue exists and is reachable, and read its ARN and
            visibility timeout (needed to check the handler's timeout against it). With
            False, the ARN is derived from the URL.

    Raises:
        ConfigurationError: An option is out of Lambda's range; at start, the handler's
            timeout is longer than the queue's visibility timeout (Lambda refuses that
            mapping too).
    """

    _what = "source queue"
    _iam_action = "sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes"
    _attribute_names = ["VisibilityTimeout", "QueueArn", "FifoQueue"]  # noqa: RUF012
    _event_prefix = "sqs_batch"

    def __init__(
        self,
        queue_url: str,
        handler: str | Handler,
        *,
        batch_size: int = 10,
        max_batching_window: float = 0.0,
        report_batch_item_failures: bool = True,
        max_concurrency: int = 5,
        pollers: int = 1,
        wait_time_seconds: int = 20,
        shutdown_grace: float = 30.0,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        session: AioSession | None = None,
        check: bool = True,
    ) -> None:
        fifo = queue_url.rstrip("/").endswith(".fifo")
        limit = _RECEIVE_MAX if fifo else _MAX_BATCH
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise ConfigurationError(f"batch_size must be an integer, got {batch_size!r}.")
        if not 1 <= batch_size <= limit:
            kind = "a FIFO queue" if fifo else "a standard queue"
            raise ConfigurationError(
                f"batch_size must be between 1 and {limit} for {kind}, got {batch_size!r}."
            )
        if not 0 <= max_batching_window <= _MAX_WINDOW:
            raise ConfigurationError(
                f"max_batching_window must be between 0 and 300 seconds, "
                f"got {max_batching_window!r}."
            )
        if batch_size > _RECEIVE_MAX and max_batching_window < 1:
            raise ConfigurationError(
                f"batch_size {batch_size} is above 10, which needs max_batching_window of at "
                f"least 1 second (as Lambda requires), got {max_batching_window!r}."
            )
        if not 0 <= wait_time_seconds <= 20:
            raise ConfigurationError(
                f"wait_time_seconds must be between 0 and 20 (SQS long polling), "
                f"got {wait_time_seconds!r}."
            )
        if max_concurrency < 1 or pollers < 1:
            raise ConfigurationError(
                f"max_concurrency and pollers must be at least 1, got "
                f"max_concurrency={max_concurrency!r}, pollers={pollers!r}."
            )
        if shutdown_grace < 0:
            raise ConfigurationError(
                f"shutdown_grace must be 0 or more seconds, got {shutdown_grace!r}."
            )
        super().__init__(
            queue_url,
            visibility_timeout=None,
            endpoint_url=endpoint_url,
            region_name=region_name,
            session=session,
            check=check,
            log=_log,
        )
        self.handler = handler
        self._fifo = fifo
        self._batch_size = batch_size
        self._window = float(max_batching_window)
        self._report = report_batch_item_failures
        self._max_concurrency = max_concurrency
        self._pollers = pollers
        self._wait = wait_time_seconds
        self._grace = shutdown_grace
        self._queue_vt: int | None = None
        self._arn = ""
        self._region = ""
        self._slots = anyio.Semaphore(max_concurrency)
        self._running: set[anyio.CancelScope] = set()
        self._stop_deadline: float | None = None
        self._received = self._batches = 0
        self._batches_succeeded = self._batches_partial = self._batches_failed = 0
        self._deleted = self._failed = self._released = 0

    def __repr__(self) -> str:
        return f"SQSBatchSource({self.queue_url!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> SQSBatchSource:
        attributes = await self._open()
        self._region = resolve_region(self._session, self._region_name)
        self._arn = attributes.get("QueueArn") or _arn_from_url(self.queue_url, self._region)
        if "VisibilityTimeout" in attributes:
            self._queue_vt = int(attributes["VisibilityTimeout"])
        if attributes.get("FifoQueue") == "true":
            self._fifo = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        self._closed.set()
        await self._close()

    async def run(self, app: AppHost, *, task_status: TaskStatus[None]) -> None:
        """Poll the queue and hand the handler its batches until cancelled."""
        if self._client is None:
            raise RuntimeError(
                "SQSBatchSource is not open: pass it in App(sources=[...]); the app opens it."
            )
        timeout = app.handler_config(self.handler).timeout
        if timeout is not None and self._queue_vt is not None and timeout > self._queue_vt:
            raise ConfigurationError(
                f"The queue {self.queue_url} has a visibility timeout of {self._queue_vt} s, "
                f"shorter than the handler's timeout of {timeout} s: a batch could show again "
                "while it runs. Raise the queue's VisibilityTimeout (Lambda advises six times "
                "the function timeout) or lower the handler's timeout."
            )
        async with anyio.create_task_group() as tg:
            for _ in range(self._pollers):
                tg.start_soon(self._poll, app, tg)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                # the app is stopping: batches already handed to the handler get the grace
                self._stop_deadline = anyio.current_time() + self._grace
                for scope in self._running:
                    scope.deadline = min(scope.deadline, self._stop_deadline)

    # -- gathering ------------------------------------------------------------------

    async def _poll(self, app: AppHost, tg: TaskGroup) -> None:
        backoff = receive_backoff(app.clock)
        while True:
            await self._slots.acquire()
            try:
                batch = await self._gather(backoff)
            except BaseException:
                self._slots.release()
                raise
            if not batch:
                self._slots.release()
                continue
            tg.start_soon(self._run_batch, app, batch)

    async def _gather(self, backoff: Backoff) -> list[_Held]:
        """Receive one batch: up to batch_size messages, within the batching window."""
        batch: list[_Held] = []
        size = 0
        deadline: float | None = None
        try:
            while len(batch) < self._batch_size and size < _MAX_PAYLOAD:
                if deadline is None:
                    wait = self._wait
                else:
                    remaining = deadline - anyio.current_time()
                    if remaining <= 0:
                        break
                    wait = min(20, math.ceil(remaining))
                try:
                    self._api_calls += 1
                    response = await self._receive_client.receive_message(
                        QueueUrl=self.queue_url,
                        MaxNumberOfMessages=min(_RECEIVE_MAX, self._batch_size - len(batch)),
                        WaitTimeSeconds=wait,
                        MessageSystemAttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    )
                except (ClientError, BotoCoreError) as exc:
                    _log.error(
                        "sqs_batch.receive_failed",
                        queue_url=self.queue_url,
                        error=f"{type(exc).__name__}: {exc}",
                        retry_in_s=backoff.ceiling,
                    )
                    if batch:
                        break  # hand over what was gathered; the next batch retries
                    await backoff.wait()
                    continue
                backoff.reset()
                now = anyio.current_time()
                until = now + self._vt
                for message in response.get("Messages", []):
                    self._received += 1
                    known = self._held.get(message["MessageId"])
                    if known is not None:
                        # a second delivery of a message held here: keep its newest receipt
                        known.receipt = message["ReceiptHandle"]
                        known.record["receiptHandle"] = known.receipt
                        continue
                    held = _Held(lambda_record(message, self._arn, self._region), until)
                    self._held[held.id] = held
                    batch.append(held)
                    size += len(held.record["body"])
                if batch and deadline is None:
                    if self._window <= 0:
                        break
                    deadline = now + self._window
        except BaseException:
            # stopped while gathering: give back at once what no handler has seen
            with anyio.move_on_after(_RELEASE_TIMEOUT, shield=True):
                await self._release(batch)
            raise
        return batch

    # -- handling -------------------------------------------------------------------

    async def _run_batch(self, app: AppHost, batch: list[_Held]) -> None:
        try:
            with anyio.CancelScope(shield=True) as scope:
                if self._stop_deadline is not None:
                    scope.deadline = self._stop_deadline
                self._running.add(scope)
                try:
                    await self._handle(app, batch)
                finally:
                    self._running.discard(scope)
            if scope.cancelled_caught:
                _log.warning(
                    "sqs_batch.cut_short",
                    queue_url=self.queue_url,
                    messages=len(batch),
                    shutdown_grace=self._grace,
                )
        finally:
            for held in batch:
                if self._held.pop(held.id, None) is not None:
                    self._failed += 1  # not deleted: it shows again after its timeout
            self._slots.release()

    async def _handle(self, app: AppHost, batch: list[_Held]) -> None:
        event = {"Records": [held.record for held in batch]}
        try:
            result = await app.invoke(self.handler, event, invocation_type="RequestResponse")
        except AppClosed:
            await self._release(batch)
            return
        self._batches += 1
        if result.function_error is not None:
            failed = {held.id for held in batch}
            error = result.payload if isinstance(result.payload, dict) else {}
            _log.info(
                "sqs_batch.batch_failed",
                queue_url=self.queue_url,
                request_id=result.request_id,
                messages=len(batch),
                error_type=error.get("errorType"),
            )
        elif self._report:
            failed = self._reported_failures(result.payload, batch, result.request_id)
        else:
            failed = set()
        if self._fifo and failed:
            # a group's later messages must not pass a failed one: they fail with it
            failed_groups: set[str | None] = set()
            for held in batch:
                if held.id in failed:
                    failed_groups.add(held.group)
                elif held.group in failed_groups:
                    failed.add(held.id)
        if not failed:
            self._batches_succeeded += 1
        elif len(failed) == len(batch):
            self._batches_failed += 1
        else:
            self._batches_partial += 1
        await self._delete([held for held in batch if held.id not in failed])

    def _reported_failures(self, payload: Any, batch: list[_Held], request_id: str) -> set[str]:
        """The message IDs in a ``batchItemFailures`` response, or every ID if it is invalid."""
        if payload is None:
            return set()
        known = {held.id for held in batch}
        problem: str | None = None
        failures: Any = None
        if not isinstance(payload, dict):
            problem = f"the handler returned a JSON {type(payload).__name__}, not an object"
        else:
            failures = payload.get("batchItemFailures")
            if failures is not None and not isinstance(failures, list):
                problem = "'batchItemFailures' is not a list"
        ids: set[str] = set()
        for item in failures if problem is None and failures else ():
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or not identifier:
                problem = f"the failure {item!r} has no 'itemIdentifier' string"
                break
            if identifier not in known:
                problem = f"the itemIdentifier {identifier!r} is not a message of this batch"
                break
            ids.add(identifier)
        if problem is None:
            return ids
        _log.warning(
            "sqs_batch.invalid_response",
            queue_url=self.queue_url,
            request_id=request_id,
            reason=(
                f"The handler's response is not a valid partial batch response ({problem}), "
                "so the whole batch failed, as in Lambda. Return None for success, or "
                "{'batchItemFailures': [{'itemIdentifier': record['messageId']}, ...]}."
            ),
        )
        return known

    # -- deleting and releasing -----------------------------------------------------

    async def _delete(self, done: list[_Held]) -> None:
        for start in range(0, len(done), _RECEIVE_MAX):
            chunk = done[start : start + _RECEIVE_MAX]
            entries = [{"Id": str(i), "ReceiptHandle": h.receipt} for i, h in enumerate(chunk)]
            failed = await self._batch("delete_message_batch", entries, chunk)
            if failed is None:
                continue  # logged; the messages show again: a duplicate, never a loss
            for i, held in enumerate(chunk):
                if str(i) not in failed:
                    self._held.pop(held.id, None)
                    self._deleted += 1

    async def _release(self, batch: list[_Held]) -> None:
        for start in range(0, len(batch), _RECEIVE_MAX):
            chunk = batch[start : start + _RECEIVE_MAX]
            entries = [
                {"Id": str(i), "ReceiptHandle": h.receipt, "VisibilityTimeout": 0}
                for i, h in enumerate(chunk)
            ]
            async with self._visibility_lock:  # after any heartbeat in flight
                failed = await self._batch("change_message_visibility_batch", entries, chunk)
            for i, held in enumerate(chunk):
                if self._held.pop(held.id, None) is None:
                    continue
                if failed is None or str(i) in failed:
                    self._failed += 1  # it shows again after its visibility timeout
                else:
                    self._released += 1

    async def _heartbeat(self) -> None:
        # Lambda never extends a batch's visibility: the queue's timeout must cover the
        # handler's (checked at start), and a message that outlives it shows again
        return

    async def _flusher(self) -> None:
        # nothing to flush at close: each batch deletes its own messages when it ends
        return

    def _unsent(self) -> int:
        return 0  # no queued deletes or releases: each batch makes its own calls

    def statistics(self) -> SQSBatchSourceStatistics:
        """A snapshot of this source's counters."""
        return SQSBatchSourceStatistics(
            received=self._received,
            batches=self._batches,
            batches_succeeded=self._batches_succeeded,
            batches_partial=self._batches_partial,
            batches_failed=self._batches_failed,
            deleted=self._deleted,
            failed=self._failed,
            released=self._released,
            running=len(self._running),
            held=len(self._held),
            api_calls=self._api_calls,
        )

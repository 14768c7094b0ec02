"""What SQSSource and SQSEventQueue share: opening the queue, batch calls, and heartbeats.

Both open a shared SQS client and check their queue at start (reading its attributes),
make batch calls whose failures they log alike, and keep a received message invisible
for as long as its event needs (a long attempt, retries waiting, a wait for a slot) by
extending its visibility before it lapses, ten messages per ChangeMessageVisibilityBatch
call.

Shutdown is bounded whatever SQS does: once the app stops the queue's ``run``, every call
still to come (a shielded receive, the final deletes and releases, a heartbeat) ends by the
app's ``shutdown_timeout`` plus :data:`CLOSE_GRACE`; what could not be sent in time is
logged, and those messages show again after their visibility timeout."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import anyio
from botocore.exceptions import BotoCoreError, ClientError

from .._clock import Clock
from .._errors import ConfigurationError
from ._batcher import Backoff
from ._clients import shared_client
from ._errors import check_resource, error_code, failure_hint

if TYPE_CHECKING:
    from .._contracts import AppHost

__all__ = (
    "CLOSE_GRACE",
    "MAX_VISIBILITY",
    "Lease",
    "LeasedQueue",
    "keep_invisible",
    "open_queue",
    "receive_backoff",
)

_BATCH = 10
MAX_VISIBILITY = 43_200  # SQS's limit: 12 hours
CLOSE_GRACE = 2.0  # seconds past the app's shutdown_timeout that a shutdown's SQS calls get
_LAST_CALLS = 1.0  # the least the final deletes and releases get, however late the close


def receive_backoff(clock: Clock) -> Backoff:
    """How a poller waits after a failed ReceiveMessage: 1 s doubling up to 20 s, on the
    app's clock (so tests of a failing receive run in virtual time)."""
    return Backoff(clock, 1.0, 20.0)


async def open_queue(
    stack: AsyncExitStack,
    queue_url: str,
    *,
    region_name: str | None,
    endpoint_url: str | None,
    session: Any,
    check: bool,
    what: str,
    iam_action: str,
    attribute_names: list[str],
) -> tuple[Any, dict[str, str]]:
    """The shared SQS client (closed with ``stack``) and, with ``check``, the queue's
    attributes; an unreachable queue raises a ResourceCheckFailed that names it."""
    client = await stack.enter_async_context(
        shared_client("sqs", region_name=region_name, endpoint_url=endpoint_url, session=session)
    )
    if not check:
        return client, {}
    result = await check_resource(
        client,
        "get_queue_attributes",
        {"QueueUrl": queue_url, "AttributeNames": attribute_names},
        what=what,
        resource=queue_url,
        iam_action=iam_action,
    )
    attributes: dict[str, str] = result.get("Attributes", {})
    return client, attributes


class Lease(Protocol):
    """A held message: its ID, its receipt handle and when its visibility lapses (anyio
    time)."""

    id: str
    receipt: str
    until: float


HeldT = TypeVar("HeldT", bound=Lease)


class LeasedQueue(Generic[HeldT]):
    """A queue this process receives from and holds messages of (SQSSource, SQSEventQueue).

    It owns the shared SQS client and a task group that runs the subclass's ``_flusher``
    (its deletes and visibility changes, in batches) and the heartbeat that keeps the
    messages in ``_held`` invisible while they are held.
    """

    _what: ClassVar[str]  # the queue's role, for the start-up check's error
    _iam_action: ClassVar[str]  # the permissions it needs, for the same error
    _attribute_names: ClassVar[list[str]]  # the queue attributes read at start
    _event_prefix: ClassVar[str]  # the prefix of its log events

    def __init__(
        self,
        queue_url: str,
        *,
        visibility_timeout: int | None,
        endpoint_url: str | None,
        region_name: str | None,
        session: Any,
        check: bool,
        log: Any,
    ) -> None:
        if visibility_timeout is not None and not 2 <= visibility_timeout <= MAX_VISIBILITY:
            raise ConfigurationError(
                f"visibility_timeout must be between 2 and 43200 seconds, "
                f"got {visibility_timeout!r}."
            )
        self.queue_url = queue_url
        self._vt_arg = visibility_timeout
        self._vt = visibility_timeout or 30
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._session = session
        self._check = check
        self._log = log
        self._client: Any = None
        self._receive_client: Any = None  # one attempt per call: the poller's backoff retries
        self._stack: AsyncExitStack | None = None
        self._tg: Any = None
        self._held: dict[str, HeldT] = {}
        self._closing = False
        self._closed = anyio.Event()
        self._visibility_lock = anyio.Lock()  # heartbeats vs. our own visibility changes
        self._linger = 0.0  # seconds a settlement waits for others to fill its batch
        self._work = anyio.Event()  # set on every queued settlement
        self._full = anyio.Event()  # set when a batch is full or urgent, or at close
        self._api_calls = 0
        self._stop_by: float | None = None  # anyio time the shutdown's calls must end by
        self._shields: set[anyio.CancelScope] = set()
        self._cut_short = 0  # messages of batch calls cancelled at that bound

    async def _open(self) -> dict[str, str]:
        """Open the client (checking the queue), start the flusher and the heartbeat;
        the queue's attributes."""
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self._client, attributes = await open_queue(
                stack,
                self.queue_url,
                region_name=self._region_name,
                endpoint_url=self._endpoint_url,
                session=self._session,
                check=self._check,
                what=self._what,
                iam_action=self._iam_action,
                attribute_names=self._attribute_names,
            )
            if self._vt_arg is None:
                self._vt = max(2, int(attributes.get("VisibilityTimeout", 30)))
            # botocore's own retries would back off in wall time, under receive_backoff
            self._receive_client = await stack.enter_async_context(
                shared_client(
                    "sqs",
                    region_name=self._region_name,
                    endpoint_url=self._endpoint_url,
                    session=self._session,
                    batching=True,
                )
            )
            self._tg = await stack.enter_async_context(anyio.create_task_group())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._tg.start_soon(self._flusher)
        self._tg.start_soon(self._heartbeat)
        return attributes

    async def _until_stopped(self, app: AppHost) -> None:
        """Wait for the app to stop ``run`` (its shutdown begins), then bound every call
        from now on by the app's shutdown_timeout plus the grace."""
        try:
            await anyio.sleep_forever()
        finally:
            self._stop_by = anyio.current_time() + app.shutdown_timeout + CLOSE_GRACE
            for scope in self._shields:
                scope.deadline = min(scope.deadline, self._stop_by)

    @contextmanager
    def _shielded(self) -> Iterator[anyio.CancelScope]:
        """A shield from the shutdown's cancellation that holds only until the shutdown's
        bound (a call cut there raises nothing: check ``cancelled_caught``)."""
        with anyio.CancelScope(shield=True) as scope:
            if self._stop_by is not None:
                scope.deadline = self._stop_by
            self._shields.add(scope)
            try:
                yield scope
            finally:
                self._shields.discard(scope)

    def _unsent(self) -> int:
        """Messages whose delete, release or retry is still queued (after the flusher)."""
        raise NotImplementedError

    async def _close(self) -> None:
        """Wait for the flusher to finish what is queued, within the shutdown's bound, then
        release the client."""
        assert self._stack is not None
        now = anyio.current_time()
        stop_by = now + CLOSE_GRACE if self._stop_by is None else self._stop_by
        # a hanging endpoint must not hold the app: the flusher and heartbeat stop by then
        self._tg.cancel_scope.deadline = max(stop_by, now + _LAST_CALLS)
        await self._stack.aclose()
        self._stack = None
        unsent = self._unsent() + self._cut_short
        if unsent:
            self._log.warning(
                f"{self._event_prefix}.close_cut_short",
                queue_url=self.queue_url,
                messages=unsent,
                reason=(
                    "SQS did not answer the calls made at shutdown within the app's "
                    f"shutdown_timeout plus {CLOSE_GRACE:g} s, so these messages were not "
                    "deleted or released; SQS shows them again after their visibility "
                    "timeout (a delete not sent means a duplicate delivery)."
                ),
            )

    # -- the one flush loop (deletes, visibility changes, sends back) ---------------------

    def _queued(self, pending: int, *, urgent: bool = False) -> None:
        """Wake the flusher for a queued settlement: it lingers for a fuller batch unless
        ``pending`` fills one, the work is ``urgent`` or the queue is closing."""
        self._work.set()
        if urgent or pending >= _BATCH or self._closing:
            self._full.set()

    def _wake(self) -> None:
        """Make the flusher send what is queued now, without lingering."""
        self._work.set()
        self._full.set()

    async def _flusher(self) -> None:
        while True:
            if not self._unsent():
                if self._closing:
                    return
                self._work = anyio.Event()
                await self._work.wait()
                continue
            if not self._closing and not self._ready():
                # linger so a batch fills up: one call per ten messages
                self._full = anyio.Event()
                with anyio.move_on_after(self._linger):
                    await self._full.wait()
            await self._flush_round()

    def _ready(self) -> bool:
        """Whether what is queued should be sent without lingering (a full batch, say)."""
        raise NotImplementedError

    async def _flush_round(self) -> None:
        """Make one round of batch calls from what is queued (up to ten of each kind)."""
        raise NotImplementedError

    async def _heartbeat(self) -> None:
        await keep_invisible(
            self._client,
            self.queue_url,
            self._held.values,
            self._vt,
            self._closed,
            self._count_call,
            self._log,
            self._event_prefix,
            self._visibility_lock,
        )

    def _count_call(self) -> None:
        self._api_calls += 1

    async def _batch(
        self, operation: str, entries: list[dict[str, Any]], chunk: list[HeldT]
    ) -> set[str] | None:
        """Call a batch operation on ``chunk``; the entry Ids that failed, or ``None`` if
        the call failed. Each failure is logged; the caller decides what it means."""
        try:
            self._count_call()
            response = await getattr(self._client, operation)(
                QueueUrl=self.queue_url, Entries=entries
            )
        except anyio.get_cancelled_exc_class():
            self._cut_short += len(entries)  # at the shutdown's bound: logged at close
            raise
        except (ClientError, BotoCoreError) as exc:
            self._log.error(
                f"{self._event_prefix}.batch_failed",
                operation=operation,
                queue_url=self.queue_url,
                messages=len(entries),
                error=f"{type(exc).__name__}: {exc}",
                hint=failure_hint(exc),
            )
            return None
        failed = response.get("Failed", [])
        for failure in failed:
            self._log.error(
                f"{self._event_prefix}.batch_entry_failed",
                operation=operation,
                queue_url=self.queue_url,
                message_id=chunk[int(failure["Id"])].id,
                code=failure.get("Code"),
                error=failure.get("Message"),
            )
        return {f["Id"] for f in failed}


async def keep_invisible(
    client: Any,
    queue_url: str,
    held: Callable[[], Iterable[Lease]],
    visibility: int,
    closed: anyio.Event,
    count_call: Callable[[], None],
    log: Any,
    event_prefix: str,
    lock: anyio.Lock,
) -> None:
    """Every third of ``visibility``, extend the messages whose visibility is half gone.

    ``lock`` is held around each extension; the caller holds it around its own visibility
    changes (a retry's delay, a release), so a heartbeat in flight cannot undo one.
    Returns once ``closed`` is set.
    """
    while not closed.is_set():
        with anyio.move_on_after(max(0.5, visibility / 3)):
            await closed.wait()
        if closed.is_set():
            return
        async with lock:
            await _extend(client, queue_url, held, visibility, count_call, log, event_prefix)


async def _extend(
    client: Any,
    queue_url: str,
    held: Callable[[], Iterable[Lease]],
    visibility: int,
    count_call: Callable[[], None],
    log: Any,
    event_prefix: str,
) -> None:
    now = anyio.current_time()
    due = [h for h in held() if h.until - now < visibility / 2]
    for start in range(0, len(due), _BATCH):
        chunk = due[start : start + _BATCH]
        entries = [
            {"Id": str(i), "ReceiptHandle": h.receipt, "VisibilityTimeout": visibility}
            for i, h in enumerate(chunk)
        ]
        try:
            count_call()
            response = await client.change_message_visibility_batch(
                QueueUrl=queue_url, Entries=entries
            )
        except (ClientError, BotoCoreError) as exc:
            # not extended: the message may show again, a duplicate rather than a loss
            log.error(
                f"{event_prefix}.heartbeat_failed",
                queue_url=queue_url,
                code=error_code(exc),
                error=str(exc),
                hint=failure_hint(exc),
            )
            continue
        failed = {f["Id"] for f in response.get("Failed", [])}
        for i, h in enumerate(chunk):
            if str(i) not in failed:
                h.until = now + visibility

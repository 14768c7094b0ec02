"""The batcher: one bounded buffer, batch loop and retry policy for every AWS batch API.

Why batching: when a downstream dependency fails, every worker of an app fails at once and
each one sends a dead letter or an on-failure record at the same moment; one API call per
message would multiply the request rate (and the bill, and the throttling) by up to ten.
So the sinks and ``SQSEventQueue``'s send side each *hold* a :class:`Batcher` and give it
one function, ``call(entries) -> faults``, that makes one batch call.

How: :meth:`Batcher.submit` puts an entry (already validated and sized by its holder) in a
bounded buffer and waits for the outcome of *its own* entry. ``concurrency`` flusher tasks,
run by :meth:`Batcher.run` in the holder's task group, take entries from the buffer and
make a call as soon as ``max_entries`` are waiting, or ``linger`` seconds after the oldest
waiting entry arrived, or sooner when the next entry would push the call past
``max_bytes``. While a call is in flight new entries queue up, so under load batches fill
by themselves; when the buffer is full, ``submit`` waits (backpressure). :meth:`close`
stops intake and lets the flushers send everything still buffered (without waiting out the
linger); if ``run`` is cancelled instead, every caller still waiting gets an error.

Failures are settled per entry (:class:`EntryOutcome`):

* an entry the service says can never succeed (``SenderFault``, a malformed entry) is
  *rejected*: retrying cannot help;
* an entry that failed for a transient reason is retried alone, a few times with jittered
  backoff, then *failed* (the caller may try again later);
* a throttled call, or one that failed for a passing reason (a 5xx, a broken connection),
  is retried whole with capped, jittered exponential backoff;
* a call rejected as invalid (a 400 that is not about permissions or a missing resource)
  is split into one call per entry, so one bad entry fails alone and the rest go through;
* any other failure (denied, missing resource) fails each entry of the call.

Every backoff sleeps on the :class:`~eventflow.Clock` the holder was given (the app's
clock), so tests run the throttling paths in virtual time. :class:`Backoff` is the same
policy for a loop that retries one call (the SQS sources' receives).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from botocore.exceptions import BotoCoreError, ClientError

from .._clock import Clock, LoopClock, sleep_until
from .._errors import ConfigurationError
from ._errors import (
    ENTRY_INVALID_CODES,
    error_code,
    http_status,
    is_throttling,
    is_transient,
    maybe_about_entries,
)

__all__ = (
    "Backoff",
    "Batcher",
    "BatcherStatistics",
    "Fault",
    "EntryOutcome",
    "check_batching_options",
    "id_faults",
)

# retry tuning: an entry failed for a transient reason, and a throttled or failing call
_ENTRY_RETRIES = 3
_ENTRY_BACKOFF = (0.05, 0.5)  # base, cap (seconds)
_CALL_RETRIES = 5
_CALL_BACKOFF = (0.1, 2.0)


@dataclass(frozen=True, slots=True)
class Fault:
    """Why the service did not take one entry of a batch call."""

    code: str
    message: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """How one submitted entry ended: sent (``error`` is None), failed or rejected.

    Attributes:
        error: A sentence saying why the entry was not sent, or None if it was.
        rejected: Retrying cannot help (the entry itself is at fault).
        cause: The exception behind ``error``, if there was one.
        stopped: The batcher was cancelled before the entry was sent (or answered).
    """

    error: str | None = None
    rejected: bool = False
    cause: BaseException | None = None
    stopped: bool = False


_SENT = EntryOutcome()

BatchCall = Callable[[list[dict[str, Any]]], Awaitable[Sequence[Fault | None]]]


@dataclass(frozen=True, slots=True)
class BatcherStatistics:
    """A snapshot of one batcher's counters.

    Attributes:
        sent: Entries the service accepted.
        failed: Entries settled as failed (the caller may try again).
        rejected: Entries settled as rejected (never sent).
        batches: Batches the flushers formed.
        api_calls: Batch calls made, retries and split-up calls included.
        largest_batch: The most entries sent in one call so far.
        pending: Entries submitted and not yet settled (buffered or in flight).
        buffer_size: How many entries the buffer holds before ``submit`` waits.
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
    entry: dict[str, Any]
    size: int
    enqueued: float
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: EntryOutcome = _SENT


def _ceiling(attempt: int, base_cap: tuple[float, float]) -> float:
    base, cap = base_cap
    return min(cap, base * 2.0**attempt)


def _backoff(attempt: int, base_cap: tuple[float, float]) -> float:
    return _ceiling(attempt, base_cap) * (0.5 + random.random() / 2)


class Backoff:
    """Capped, jittered exponential backoff on a clock, for a loop that retries a call.

    ``await wait()`` after each failure sleeps ``base * 2**n`` seconds capped at ``cap``
    (jittered down to half) on ``clock``; ``reset()`` after a success starts over.
    """

    __slots__ = ("_attempt", "_base_cap", "clock")

    def __init__(self, clock: Clock, base: float, cap: float) -> None:
        self.clock = clock
        self._base_cap = (base, cap)
        self._attempt = 0

    @property
    def ceiling(self) -> float:
        """The longest the next :meth:`wait` may sleep (for logs)."""
        return _ceiling(self._attempt, self._base_cap)

    async def wait(self) -> None:
        """Sleep the next delay on the clock."""
        delay = _backoff(self._attempt, self._base_cap)
        self._attempt += 1
        await sleep_until(self.clock, self.clock.now() + delay)

    def reset(self) -> None:
        """Start over from the shortest delay (after a success)."""
        self._attempt = 0


def check_batching_options(linger: float, buffer_size: int) -> None:
    """Raise ConfigurationError for a ``linger`` or ``buffer_size`` out of range."""
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


def id_faults(response: Mapping[str, Any], count: int) -> list[Fault | None]:
    """Per-entry faults of an SQS or SNS batch response (``Successful``/``Failed``, Id = index)."""
    failed = {str(f.get("Id")): f for f in response.get("Failed", [])}
    succeeded = {str(s.get("Id")) for s in response.get("Successful", [])}
    out: list[Fault | None] = []
    for i in range(count):
        f = failed.get(str(i))
        if f is not None:
            out.append(
                Fault(
                    str(f.get("Code", "")),
                    str(f.get("Message", "")),
                    retryable=not f.get("SenderFault", False),
                )
            )
        elif str(i) in succeeded:
            out.append(None)
        else:
            out.append(Fault("Missing", "the response reported neither success nor failure.", True))
    return out


def positional_faults(
    results: Sequence[Mapping[str, Any]],
    count: int,
    *,
    ok_field: str,
    retryable_codes: frozenset[str],
) -> list[Fault | None]:
    """Per-entry faults of a response listing one result per entry, in order (``ErrorCode``).

    EventBridge ``PutEvents`` (``EventId`` on success) and Kinesis ``PutRecords``
    (``SequenceNumber``) answer this way.
    """
    out: list[Fault | None] = []
    for i in range(count):
        result = results[i] if i < len(results) else {}
        code = result.get("ErrorCode")
        if code:
            out.append(
                Fault(
                    str(code),
                    str(result.get("ErrorMessage", "")),
                    retryable=code in retryable_codes,
                )
            )
        elif result.get(ok_field):
            out.append(None)
        else:
            out.append(Fault("Missing", "the response reported neither success nor failure.", True))
    return out


class Batcher:
    """Batches entries into calls of ``call``, and settles each entry (module docstring).

    Args:
        call: Makes one batch call with the entries given; returns each entry's fault, in
            order (None = accepted). It raises botocore errors for a failed call.
        describe: What the calls go to and by which API, for messages, such as
            ``("SendMessageBatch", "the SQS queue https://...")``.
        max_entries: Entries per call at most.
        max_bytes: Bytes per call at most (the sum of the entries' sizes).
        linger: Seconds the oldest waiting entry waits for others to share its call.
        buffer_size: Entries buffered before ``submit`` waits for room.
        concurrency: Calls in flight at once.
        clock: The clock the backoff sleeps on (the app's clock); the loop's by default.
    """

    def __init__(
        self,
        call: BatchCall,
        *,
        describe: tuple[str, str],
        max_entries: int,
        max_bytes: int,
        linger: float,
        buffer_size: int,
        concurrency: int = 1,
        clock: Clock | None = None,
    ) -> None:
        check_batching_options(linger, buffer_size)
        self._call = call
        self._api, self._target = describe
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._linger = float(linger)
        self._buffer_size = buffer_size
        self._concurrency = concurrency
        self.clock: Clock = clock if clock is not None else LoopClock()
        self._send: MemoryObjectSendStream[_Pending] | None = None
        self._closing = False
        self._sent = self._failed = self._rejected = 0
        self._batches = self._api_calls = self._largest = self._in_flight = 0

    # -- lifecycle --------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the flushers until :meth:`close` (then send what is buffered) or cancellation."""
        send, receive = anyio.create_memory_object_stream[_Pending](self._buffer_size)
        self._send, self._closing = send, False
        try:
            async with receive, anyio.create_task_group() as tg:
                for _ in range(self._concurrency):
                    tg.start_soon(self._flush_loop, receive.clone())
                receive.close()  # the clones hold it open
                task_status.started()
        finally:
            self._send = None
            send.close()

    def close(self) -> None:
        """Stop intake; the flushers send what is buffered, then :meth:`run` returns."""
        self._closing = True
        if self._send is not None:
            self._send.close()

    # -- submitting -------------------------------------------------------------------

    async def submit(self, entry: dict[str, Any], size: int) -> EntryOutcome:
        """Send ``entry`` (counted as ``size`` bytes) in a batch call; its outcome.

        Raises:
            anyio.ClosedResourceError: The batcher is not running or was closed.
        """
        stream = self._send
        if stream is None or self._closing:
            raise anyio.ClosedResourceError
        pending = _Pending(entry, size, anyio.current_time())
        try:
            await stream.send(pending)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise anyio.ClosedResourceError from None
        await pending.done.wait()
        return pending.outcome

    def count_rejected(self) -> None:
        """Count an entry its holder rejected before submitting it."""
        self._rejected += 1

    def statistics(self) -> BatcherStatistics:
        """Counters since the batcher was created, and the buffer's current state."""
        pending = self._in_flight
        if self._send is not None:
            buffer = self._send.statistics()
            pending += buffer.current_buffer_used + buffer.tasks_waiting_send
        return BatcherStatistics(
            sent=self._sent,
            failed=self._failed,
            rejected=self._rejected,
            batches=self._batches,
            api_calls=self._api_calls,
            largest_batch=self._largest,
            pending=pending,
            buffer_size=self._buffer_size,
        )

    # -- the flushers -----------------------------------------------------------------

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
                    while len(batch) < self._max_entries:
                        item = await self._next_before(receive, deadline)
                        if item is None:
                            break
                        self._in_flight += 1
                        if total + item.size > self._max_bytes:
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
                    except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                        break
                    self._in_flight += 1
                    leftovers.append(item)
                for pending in leftovers:
                    self._settle(
                        pending,
                        EntryOutcome(
                            f"{self._api} to {self._target} was stopped before it was sent.",
                            stopped=True,
                        ),
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

    async def _backoff(self, attempt: int, base_cap: tuple[float, float]) -> None:
        await sleep_until(self.clock, self.clock.now() + _backoff(attempt, base_cap))

    async def _deliver(self, batch: list[_Pending]) -> None:
        """Send ``batch``, retrying as the module docstring says, and settle every entry."""
        todo = batch
        entry_retries = call_retries = 0
        while todo:
            self._api_calls += 1
            self._largest = max(self._largest, len(todo))
            try:
                faults = await self._call([p.entry for p in todo])
            except (ClientError, BotoCoreError) as exc:
                if (is_throttling(exc) or is_transient(exc)) and call_retries < _CALL_RETRIES:
                    await self._backoff(call_retries, _CALL_BACKOFF)
                    call_retries += 1
                    continue
                if len(todo) > 1 and maybe_about_entries(exc):
                    for pending in todo:  # one call per entry isolates the entry refused
                        await self._deliver([pending])
                    return
                code = error_code(exc)
                rejected = code in ENTRY_INVALID_CODES and http_status(exc) == 400
                outcome = EntryOutcome(
                    f"{self._api} to {self._target} failed ({code or type(exc).__name__}): "
                    f"{exc}" + (" Retrying cannot help." if rejected else ""),
                    rejected=rejected,
                    cause=exc,
                )
                for pending in todo:
                    self._settle(pending, outcome)
                return
            except Exception as exc:  # never let a flusher die: its callers would hang
                outcome = EntryOutcome(
                    f"{self._api} to {self._target} failed unexpectedly: "
                    f"{type(exc).__name__}: {exc}",
                    cause=exc,
                )
                for pending in todo:
                    self._settle(pending, outcome)
                return
            retry: list[_Pending] = []
            for pending, fault in zip(todo, faults, strict=True):
                if fault is None:
                    self._settle(pending, _SENT)
                elif fault.retryable and entry_retries < _ENTRY_RETRIES:
                    retry.append(pending)
                else:
                    self._settle(
                        pending,
                        EntryOutcome(
                            f"{self._target[0].upper()}{self._target[1:]} refused the message "
                            f"({fault.code or 'no error code'}): {fault.message}"
                            + ("" if fault.retryable else " Retrying cannot help."),
                            rejected=not fault.retryable,
                        ),
                    )
            if retry:
                await self._backoff(entry_retries, _ENTRY_BACKOFF)
                entry_retries += 1
            todo = retry

    def _settle(self, pending: _Pending, outcome: EntryOutcome) -> None:
        if pending.done.is_set():
            return
        if outcome.error is None:
            self._sent += 1
        elif outcome.rejected:
            self._rejected += 1
        else:
            self._failed += 1
        self._in_flight -= 1
        pending.outcome = outcome
        pending.done.set()

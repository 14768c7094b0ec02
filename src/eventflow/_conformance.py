"""Conformance kits: the checks any implementation of an extension protocol must pass.

Like ``trio.testing.check_one_way_stream``, each kit is one coroutine that takes a factory
for the implementation under test and raises :class:`AssertionError` (with a sentence
saying what broke) at the first behaviour that differs from the contract:

- :func:`check_shared_queue` — a :class:`~eventflow.queues.SharedQueue` runs Lambda's
  asynchronous semantics (each event once under its request ID, retries with their
  delays, dead letters, on-success records, event age, idempotency, bad invokes refused,
  a retry pending at shutdown finished by the next app);
- :func:`check_sink` — a :class:`~eventflow.sinks.Sink` takes messages, one at a time and
  concurrently, and (given a way to read them back) delivers each body and its
  attributes; an app sends its dead letters through it;
- :func:`check_store` — an :class:`~eventflow.stores.IdempotencyStore` claims, answers
  duplicates and conflicts, takes over lapsed leases, ignores stale tokens, completes,
  releases and expires, and its optional non-blocking calls agree with the async ones.

eventflow's own implementations (in memory, SQLite, SQS, DynamoDB) are tested through
these kits in its suite.
"""

from __future__ import annotations

import inspect
import itertools
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio

from ._contracts import ClaimStatus, IdempotencyStore, Message, SharedQueue, Sink

if TYPE_CHECKING:
    from ._app import App
    from ._context import Context
    from ._results import Stats
    from .testing import VirtualClock

__all__ = ("check_shared_queue", "check_sink", "check_store")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


async def _make(factory: Callable[[], Any]) -> Any:
    made = factory()
    return await made if inspect.isawaitable(made) else made


# -- shared queues -----------------------------------------------------------------------


class _QueueRun:
    """Apps on one queue of the implementation under test (or the app's own, for None)."""

    def __init__(
        self,
        queue: SharedQueue | None,
        reopen: Callable[[SharedQueue], Any],
        virtual: bool,
        delay: float,
    ) -> None:
        from .testing import VirtualClock

        self.queue = queue
        self.reopen = reopen
        self.clock: VirtualClock | None = VirtualClock(start=1_000.0) if virtual else None
        self.delay = delay
        self._first = True

    async def app(self) -> App:
        from ._app import App

        queue = self.queue
        if queue is not None and not self._first:
            # each further app opens its own handle, as another process would
            first = queue
            queue = await _make(lambda: self.reopen(first))
        self._first = False
        return App(queue=queue, clock=self.clock, concurrency=20)

    @asynccontextmanager
    async def time_flows(self) -> AsyncIterator[None]:
        """Within this block virtual time jumps whenever the program waits."""
        if self.clock is None:
            yield
            return
        async with self.clock.autojump():
            yield


def _accounted(stats: Stats, check: str) -> None:
    _expect(
        stats.received == stats.finished + stats.pending and stats.pending == 0,
        f"{check}: the app's accounting does not balance once drained: {stats}.",
    )


async def _every_event_runs_once(run: _QueueRun) -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    app = await run.app()

    @app.handler
    async def work(event: dict[str, int], context: Context) -> int:
        seen[context.aws_request_id].append(context.attempt)
        return event["n"] * 2

    async with app, run.time_flows():
        accepted = [await app.invoke(work, {"n": i}) for i in range(40)]
        await app.drain()
        stats = app.stats()
    check = "every event runs once under its request ID"
    _expect(
        sorted(seen) == sorted(a.request_id for a in accepted),
        f"{check}: the request IDs run differ from those accepted.",
    )
    _expect(
        all(attempts == [1] for attempts in seen.values()),
        f"{check}: some event ran more than once or with the wrong attempt number: {seen}.",
    )
    _expect(
        stats.succeeded == 40 and stats.attempts == 40 and stats.failed == 0,
        f"{check}: expected 40 successes in 40 attempts, got {stats}.",
    )
    shared = run.queue is not None
    _expect(stats.enqueued == (40 if shared else 0), f"{check}: expected 40 enqueued, got {stats}.")
    _accounted(stats, check)


async def _retried_twice_then_dead_lettered(run: _QueueRun) -> None:
    from .sinks import MemorySink

    attempts: list[tuple[str, int, float]] = []
    dlq = MemorySink()
    app = await run.app()

    @app.handler(dead_letter=dlq, retry_delays=(run.delay, 2 * run.delay))
    async def broken(event: dict[str, str], context: Context) -> None:
        attempts.append((context.aws_request_id, context.attempt, app.clock.now()))
        raise RuntimeError(f"cannot process {event['key']}")

    async with app, run.time_flows():
        accepted = await app.invoke(broken, {"key": "photo.jpg"})
        await app.drain()
        stats = app.stats()
    check = "a failing event is retried twice, then dead-lettered"
    _expect(
        [(rid, n) for rid, n, _ in attempts] == [(accepted.request_id, n) for n in (1, 2, 3)],
        f"{check}: expected attempts 1, 2, 3 under one request ID, got {attempts}.",
    )
    gaps = [b[2] - a[2] for a, b in itertools.pairwise(attempts)]
    _expect(
        gaps[0] >= run.delay and gaps[1] >= 2 * run.delay,
        f"{check}: the retries came before their delays ({run.delay:g} s, "
        f"{2 * run.delay:g} s): gaps {gaps}.",
    )
    _expect(len(dlq.messages) == 1, f"{check}: expected one dead letter, got {dlq.messages}.")
    letter = dlq.messages[0]
    _expect(letter.json() == {"key": "photo.jpg"}, f"{check}: wrong body {letter.body!r}.")
    _expect(
        dict(letter.attributes)
        == {
            "RequestID": accepted.request_id,
            "ErrorCode": "200",
            "ErrorMessage": "cannot process photo.jpg",
        },
        f"{check}: wrong attributes {dict(letter.attributes)}.",
    )
    _expect(
        stats.attempts == 3 and stats.errors == 3 and stats.retries == 2,
        f"{check}: expected 3 attempts, 3 errors, 2 retries, got {stats}.",
    )
    _expect(stats.dead_lettered == 1, f"{check}: expected one dead letter counted: {stats}.")
    _accounted(stats, check)


async def _fails_once_then_succeeds(run: _QueueRun) -> None:
    from .sinks import MemorySink

    on_success = MemorySink()
    app = await run.app()

    @app.handler(on_success=on_success, retry_delays=(run.delay,))
    async def flaky(event: dict[str, str], context: Context) -> dict[str, int]:
        if context.attempt == 1:
            raise TimeoutError("the first attempt times out")
        return {"attempt": context.attempt}

    async with app, run.time_flows():
        accepted = await app.invoke(flaky, {"order": "o-1"})
        await app.drain()
        stats = app.stats()
    check = "an event failing once succeeds on its retry"
    _expect(len(on_success.messages) == 1, f"{check}: expected one on-success record.")
    record = on_success.messages[0].json()
    context = record["requestContext"]
    _expect(
        context["requestId"] == accepted.request_id
        and context["condition"] == "Success"
        and context["approximateInvokeCount"] == 2
        and record["responsePayload"] == {"attempt": 2},
        f"{check}: wrong on-success record {record}.",
    )
    _expect(stats.attempts == 2 and stats.failed == 0, f"{check}: wrong counts {stats}.")
    _accounted(stats, check)


async def _retry_past_max_age_not_run(run: _QueueRun) -> None:
    from .sinks import MemorySink

    on_failure = MemorySink()
    calls: list[int] = []
    app = await run.app()

    @app.handler(on_failure=on_failure, max_event_age=60, retry_delays=(120,))
    async def slow_to_fix(event: dict[str, str], context: Context) -> None:
        calls.append(context.attempt)
        raise ValueError("bad input")

    async with app, run.time_flows():
        accepted = await app.invoke(slow_to_fix, {"id": "1"})
        await app.drain()
        stats = app.stats()
    check = "a retry past max_event_age is not run"
    _expect(calls == [1], f"{check}: expected one attempt, got {calls}.")
    _expect(len(on_failure.messages) == 1, f"{check}: expected one on-failure record.")
    context = on_failure.messages[0].json()["requestContext"]
    _expect(
        context["requestId"] == accepted.request_id and context["condition"] == "EventAgeExceeded",
        f"{check}: wrong on-failure record context {context}.",
    )
    _expect(stats.expired == 1 and stats.failed == 1, f"{check}: wrong counts {stats}.")
    _accounted(stats, check)


async def _duplicates_run_once(run: _QueueRun) -> None:
    from ._idempotency import Idempotency
    from .stores import MemoryStore

    runs: list[str] = []
    app = await run.app()

    @app.handler(idempotency=Idempotency(MemoryStore(), key="order"))
    async def charge(event: dict[str, str], context: Context) -> str:
        runs.append(event["order"])
        return "charged"

    async with app, run.time_flows():
        for _ in range(5):
            for order in ("a", "b"):
                await app.invoke(charge, {"order": order})
        await app.drain()
        stats = app.stats()
    check = "duplicates run once with idempotency"
    _expect(sorted(runs) == ["a", "b"], f"{check}: the handler ran for {runs}.")
    _expect(
        stats.deduplicated == 8 and stats.succeeded == 10,
        f"{check}: expected 8 duplicates of 10 successes, got {stats}.",
    )
    _accounted(stats, check)


async def _bad_invokes_refused(run: _QueueRun) -> None:
    from ._errors import InvalidPayload, UnknownHandler

    app = await run.app()

    @app.handler
    async def ok(event: Any, context: Context) -> None:
        return None

    check = "bad invokes are refused and nothing is queued"
    async with app:
        for handler, payload, error in (
            ("missing", {}, UnknownHandler),
            (ok, {"when": object()}, InvalidPayload),
        ):
            try:
                await app.invoke(handler, payload)
            except error:
                pass
            else:
                raise AssertionError(f"{check}: invoke did not raise {error.__name__}.")
        stats = app.stats()
    _expect(stats.received == 0 and stats.enqueued == 0, f"{check}: something was queued.")


async def _retry_pending_at_shutdown(run: _QueueRun) -> None:
    attempts: list[tuple[str, int]] = []
    failed_once = anyio.Event()

    async def build() -> App:
        app = await run.app()

        @app.handler(retry_delays=(run.delay,))
        async def flaky(event: dict[str, str], context: Context) -> None:
            attempts.append((context.aws_request_id, context.attempt))
            if context.attempt == 1:
                failed_once.set()
                raise RuntimeError("first attempt fails")

        return app

    check = "a retry pending at shutdown is finished by the next app"
    first = await build()
    async with first:
        accepted = await first.invoke("flaky", {"k": "v"})
        await failed_once.wait()
    # the app finished the attempt before it stopped: its retry waits in the queue
    _expect(
        first.stats().requeued == 1 and first.stats().undelivered == 0,
        f"{check}: the first app did not hand its retry back: {first.stats()}.",
    )
    second = await build()
    async with second, run.time_flows():
        await second.drain()
        stats = second.stats()
    _expect(
        attempts == [(accepted.request_id, 1), (accepted.request_id, 2)],
        f"{check}: expected attempts 1 then 2 of one event, got {attempts}.",
    )
    _expect(stats.succeeded == 1, f"{check}: the second app did not finish it: {stats}.")
    _accounted(stats, check)


async def check_shared_queue(
    factory: Callable[[], SharedQueue | Awaitable[SharedQueue | None] | None],
    *,
    reopen: Callable[[SharedQueue], SharedQueue | Awaitable[SharedQueue]] | None = None,
    virtual_time: bool = True,
    retry_delay: float = 60.0,
) -> None:
    """Check that a shared event queue keeps Lambda's asynchronous semantics.

    Args:
        factory: Returns a new, empty queue (sync or async) for each check; ``None``
            checks the app's own in-memory queue, the reference the others are held to.
        reopen: Returns another handle on the same storage as the queue it is given, as
            another process would open (a new ``SQLiteQueue(path)``, say); the default
            reuses the object, as apps in one process share a ``MemoryQueue``.
        virtual_time: Run the apps on a :class:`~eventflow.testing.VirtualClock` (retry
            delays pass at once). ``False`` for a queue whose delays a server keeps.
        retry_delay: The shortest retry delay the queue keeps honestly (1 s for SQS).

    Raises:
        AssertionError: the queue broke the contract; the message says how.

    .. versionadded:: 0.1
    """
    checks: list[tuple[Callable[[_QueueRun], Awaitable[None]], bool]] = [
        (_every_event_runs_once, False),
        (_retried_twice_then_dead_lettered, False),
        (_fails_once_then_succeeds, False),
        (_retry_past_max_age_not_run, False),
        (_duplicates_run_once, False),
        (_bad_invokes_refused, False),
        (_retry_pending_at_shutdown, True),
    ]
    for check, needs_shared in checks:
        queue = await _make(factory)
        if queue is None and needs_shared:
            continue  # the in-memory queue ends with its app: nothing to finish later
        if queue is not None and not isinstance(queue, SharedQueue):
            raise AssertionError(
                f"The factory returned {queue!r}, which lacks put(), run() or wait_empty() "
                "of the SharedQueue protocol."
            )
        run = _QueueRun(queue, reopen or (lambda q: q), virtual_time, retry_delay)
        await check(run)


# -- sinks -------------------------------------------------------------------------------

_MESSAGES = (
    Message('{"orderId": 42}'),
    Message(
        '{"key": "photo.jpg"}',
        MappingProxyType({"RequestID": "req-1", "ErrorCode": "200", "ErrorMessage": "boom"}),
    ),
    Message('"unicode: \u00e9\u00e8 \u4e2d\u6587 \U0001f600"'),
    Message("[1, 2, 3]", MappingProxyType({"Handler": "resize"})),
)


async def check_sink(
    factory: Callable[[], Sink | Awaitable[Sink]],
    *,
    received: Callable[[Sink, int], Awaitable[Sequence[Message]]] | None = None,
) -> None:
    """Check that a sink takes messages one at a time and concurrently, inside an app too.

    Args:
        factory: Returns a new sink (sync or async), unopened: a sink that is an async
            context manager is entered by the check, as an app enters it.
        received: Given the sink and a count, returns the messages it delivered so far,
            waiting until there are that many (say, by receiving them from its queue).
            With it, the check also compares each body and its attributes; a target that
            reshapes messages (an EventBridge bus) leaves it out.

    Raises:
        AssertionError: the sink broke the contract; the message says how.

    .. versionadded:: 0.1
    """
    sink = await _make(factory)
    _expect(
        isinstance(sink, Sink),
        f"The factory returned {sink!r}, which has no 'async def send(self, message)'.",
    )
    async with AsyncExitStack() as stack:
        if hasattr(sink, "__aenter__"):
            await stack.enter_async_context(sink)
        await sink.send(_MESSAGES[0])  # one alone
        async with anyio.create_task_group() as tg:  # the others at once
            for message in _MESSAGES[1:]:
                tg.start_soon(sink.send, message)
        if received is not None:
            got = await received(sink, len(_MESSAGES))
            want = Counter((m.body, frozenset(m.attributes.items())) for m in _MESSAGES)
            have = Counter((m.body, frozenset(m.attributes.items())) for m in got)
            _expect(
                have == want,
                f"The sink delivered {sorted(have)} instead of {sorted(want)}: a message "
                "was lost, repeated or changed.",
            )
    await _dead_letters_through(await _make(factory), received)


async def _dead_letters_through(
    sink: Sink, received: Callable[[Sink, int], Awaitable[Sequence[Message]]] | None
) -> None:
    from ._app import App
    from ._handler import Handler

    async def broken(event: Any, context: Context) -> None:
        raise RuntimeError("cannot process it")

    handler = Handler(broken, name="broken", max_retries=0, dead_letter=sink)
    async with App(handlers=[handler], sink_timeout=5.0) as app:
        accepted = await app.invoke(handler, {"key": "photo.jpg"})
        with anyio.fail_after(30):
            await app.drain()
        stats = app.stats()
        # read while the app holds the sink open
        got = None if received is None else await received(sink, 1)
    _expect(
        stats.dead_lettered == 1 and stats.dead_letter_errors == 0,
        f"An app could not send its dead letter through the sink: {stats}.",
    )
    if got is not None:
        _expect(
            len(got) == 1
            and got[0].json() == {"key": "photo.jpg"}
            and got[0].attributes.get("RequestID") == accepted.request_id,
            f"The app's dead letter arrived as {list(got)}.",
        )


# -- idempotency stores ------------------------------------------------------------------


async def check_store(
    factory: Callable[[], IdempotencyStore | Awaitable[IdempotencyStore]],
) -> None:
    """Check an idempotency store against the contract of :mod:`eventflow.stores`.

    Args:
        factory: Returns a new, empty store (sync or async); a store that is an async
            context manager is entered by the check.

    Raises:
        AssertionError: the store broke the contract; the message says how.

    .. versionadded:: 0.1
    """
    store = await _make(factory)
    _expect(
        isinstance(store, IdempotencyStore),
        f"The factory returned {store!r}, which lacks claim(), complete() or release().",
    )
    async with AsyncExitStack() as stack:
        if hasattr(store, "__aenter__"):
            await stack.enter_async_context(store)
        await _claim_lifecycle(store)
        await _keys_are_independent(store)
    if all(hasattr(store, m) for m in ("claim_nowait", "complete_nowait", "release_nowait")):
        _nowait_calls_agree(await _make(factory))


async def _claim_lifecycle(store: IdempotencyStore) -> None:
    payload = {"id": 1, "amount": 5}

    async def claim(key: str, value: Any, now: float, validate: bool = True) -> Any:
        return await store.claim(key, value, now=now, lease_until=now + 60.0, validate=validate)

    first = await claim("k", payload, 1000.0)
    _expect(
        first.status is ClaimStatus.CLAIMED and first.token is not None,
        f"A free key must be CLAIMED with a token, got {first}.",
    )
    busy = await claim("k", payload, 1010.0)
    _expect(
        busy.status is ClaimStatus.IN_PROGRESS and busy.lease_until == 1060.0,
        f"A claimed key must answer IN_PROGRESS with its lease's end (1060.0), got {busy}.",
    )
    clash = await claim("k", {"id": 1}, 1011.0)
    _expect(
        clash.status is ClaimStatus.CONFLICT,
        f"Another payload for a claimed key must be a CONFLICT, got {clash}.",
    )
    taken = await claim("k", payload, 1061.0)
    _expect(
        taken.status is ClaimStatus.CLAIMED
        and taken.token is not None
        and taken.token is not first.token
        and taken.token != first.token,
        f"A key whose lease ended must be taken over with a new token, got {taken}.",
    )
    # the first holder finishes late: its result is not recorded, nor may it release
    await store.complete("k", first.token, '"stale"', expires_at=5000.0)
    await store.release("k", first.token)
    still = await claim("k", payload, 1070.0)
    _expect(
        still.status is ClaimStatus.IN_PROGRESS and still.lease_until == 1121.0,
        f"A stale token must neither complete nor release the key, got {still}.",
    )
    await store.complete("k", taken.token, '{"ok":true}', expires_at=4661.0)
    done = await claim("k", payload, 1100.0)
    _expect(
        done.status is ClaimStatus.COMPLETED and done.result == '{"ok":true}',
        f"A completed key must answer COMPLETED with its result, got {done}.",
    )
    clash = await claim("k", {"id": 2}, 1101.0)
    _expect(
        clash.status is ClaimStatus.CONFLICT,
        f"Another payload for a completed key must be a CONFLICT, got {clash}.",
    )
    loose = await claim("k", {"id": 2}, 1102.0, validate=False)
    _expect(
        loose.status is ClaimStatus.COMPLETED,
        f"Without validation another payload must get the result, got {loose}.",
    )
    await store.release("k", taken.token)
    again = await claim("k", payload, 1200.0)
    _expect(
        again.status is ClaimStatus.COMPLETED,
        f"A release after completion must leave the result, got {again}.",
    )
    later = await claim("k", {"id": 3}, 4661.0)
    _expect(
        later.status is ClaimStatus.CLAIMED,
        f"A key whose result expired must be free again, even for another payload: {later}.",
    )
    await store.release("k", later.token)
    freed = await claim("k", payload, 4662.0)
    _expect(
        freed.status is ClaimStatus.CLAIMED,
        f"A released key must be free again, got {freed}.",
    )
    await store.release("k", freed.token)


async def _keys_are_independent(store: IdempotencyStore) -> None:
    claims = [
        await store.claim(f"key-{i}", {"i": i}, now=1000.0, lease_until=1060.0, validate=True)
        for i in range(5)
    ]
    _expect(
        all(c.status is ClaimStatus.CLAIMED for c in claims),
        f"Distinct keys must be claimed independently, got {claims}.",
    )
    await store.complete("key-0", claims[0].token, "0", expires_at=2000.0)
    other = await store.claim("key-1", {"i": 1}, now=1001.0, lease_until=1061.0, validate=True)
    _expect(
        other.status is ClaimStatus.IN_PROGRESS,
        f"Completing one key must not touch another, got {other}.",
    )
    for i, c in enumerate(claims[1:], start=1):
        await store.release(f"key-{i}", c.token)


def _nowait_calls_agree(store: Any) -> None:
    status, token = store.claim_nowait("k", 1, 1000.0, 1060.0, True)
    _expect(status is ClaimStatus.CLAIMED, f"claim_nowait of a free key gave {status}.")
    busy = store.claim_nowait("k", 1, 1001.0, 1061.0, True)
    _expect(
        busy == (ClaimStatus.IN_PROGRESS, 1060.0),
        f"claim_nowait of a claimed key must give (IN_PROGRESS, lease end), got {busy}.",
    )
    _expect(
        store.claim_nowait("k", 2, 1001.0, 1061.0, True)[0] is ClaimStatus.CONFLICT,
        "claim_nowait with another payload must give CONFLICT.",
    )
    store.complete_nowait("k", None, '"no token"', 2000.0)  # ignored
    store.release_nowait("k", None)  # ignored
    store.complete_nowait("k", token, "7", 2000.0)
    done = store.claim_nowait("k", 1, 1002.0, 1062.0, True)
    _expect(done == (ClaimStatus.COMPLETED, "7"), f"complete_nowait did not record: {done}.")
    store.complete_nowait("k", token, "8", 3000.0)  # the token was used up
    kept = store.claim_nowait("k", 1, 1999.0, 2059.0, True)
    _expect(kept == (ClaimStatus.COMPLETED, "7"), f"a used token completed again: {kept}.")
    status, token = store.claim_nowait("k", 2, 2000.0, 2060.0, True)
    _expect(status is ClaimStatus.CLAIMED, f"an expired result did not free the key: {status}.")
    store.release_nowait("k", token)
    status, _ = store.claim_nowait("k", 2, 2001.0, 2061.0, True)
    _expect(status is ClaimStatus.CLAIMED, f"release_nowait did not free the key: {status}.")

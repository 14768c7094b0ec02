"""SQLiteQueue: the app's event queue in one SQLite file, durable without AWS.

``invoke`` answers 202 once the event's row is committed (and, with the default
``synchronous="FULL"``, synced to disk). Every write goes through one connection in a
worker thread and is group-committed (see :mod:`eventflow._sqlite_commit`): a lone
caller waits for one commit, a burst of concurrent invokes shares one.

Each row is an event: its request ID, handler, payload (JSON), first-enqueue time
(wall clock), attempts so far, a due time and, while a process holds it, its owner and
a lease token. A process *claims* rows whose due time has passed: it sets the due time
to the end of its lease (like an SQS visibility timeout) and counts the delivery as an
attempt, so a delivery cut short by a dying process counts, as Lambda counts a crashed
runtime. A heartbeat extends the lease while the process holds the row; a dead
process's rows come due again when their leases lapse and run in whichever process
claims them. A retry is the same row with its due time moved to when the retry is due,
so it survives the process that scheduled it and runs at once if it is overdue after a
restart. The row is deleted at the event's terminal outcome.

Times in the file are wall-clock seconds. A process reads them on its app's clock
(offset to the wall clock when it starts), so a virtual clock drives leases and retry
delays in tests.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, cast

import anyio
import anyio.lowlevel
import structlog
from anyio.abc import TaskGroup, TaskStatus

from ._clock import Clock, sleep_until
from ._contracts import AppHost, Outcome, QueuedEvent
from ._errors import AppClosed, ConfigurationError, QueueUnavailable, UnknownHandler
from ._payload import checked_to_json
from ._sqlite_commit import GroupCommit, Synchronous

__all__ = ("SQLiteQueue", "SQLiteQueueStatistics")

_log = structlog.get_logger("eventflow.sqlite_queue")

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS eventflow_queue (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        handler TEXT NOT NULL,
        payload TEXT NOT NULL,
        first_enqueued REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        due REAL NOT NULL DEFAULT 0,
        owner TEXT,
        lease INTEGER NOT NULL DEFAULT 0,
        trace_context TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS eventflow_queue_due ON eventflow_queue (due)",
)
# the operations that come in runs, each run one executemany: (statement, parameters)
_MANY = {
    "delete": ("DELETE FROM eventflow_queue WHERE id = ? AND lease = ?", slice(1, 3)),
}
_INSERT = (
    "INSERT INTO eventflow_queue "
    "(request_id, handler, payload, first_enqueued, attempts, trace_context) VALUES "
)
_PUT_VALUES = 6  # the values of one put's row
_row = itemgetter(1)  # a put's row
_MAX_CHUNK = 512  # most rows in one INSERT (each distinct size is a cached statement)
_SINGLE_MAX = 256  # most puts written as one statement of their exact number of rows
_COLUMNS = "id, request_id, handler, payload, first_enqueued, attempts, lease, trace_context"
_SYNCHRONOUS = ("FULL", "NORMAL")
_WAL_LIMIT = 16 * 1024 * 1024  # bytes the WAL is cut back to after a checkpoint
_VACUUM_EVERY = 512  # transactions between returns of free pages to the file system
_VACUUM_PAGES = 256
_COUNT_SMALL = 200  # a file this shallow is counted at every transaction (cheap)
_COUNT_EVERY = 0.25  # else at most this often (seconds), and once after a burst
_COUNT_SHARE = 20  # and a count takes at most a 20th of the time between two counts
# the depth from the due index (every row has one entry); leased and scheduled rows are
# the ones due later, found through it too: never a scan of the rows themselves (at 1 M
# rows 8 ms, where summing over every row took 260 ms)
_COUNT = (
    "SELECT (SELECT count(*) FROM eventflow_queue), coalesce(sum(owner IS NOT NULL), 0), "
    "coalesce(sum(owner IS NULL), 0) FROM eventflow_queue WHERE due > ?"
)


@dataclass(frozen=True, slots=True)
class SQLiteQueueStatistics:
    """A snapshot of a :class:`SQLiteQueue`.

    ``depth``, ``leased``, ``scheduled`` and ``ready`` count the rows of the file (every
    process's), as of ``counted_at``: at every transaction while the file is shallow,
    else a few times a second; the other fields count this process's work.

    Attributes:
        depth: Events stored (rows in the file).
        leased: Rows a process holds (claimed, lease not lapsed).
        scheduled: Rows waiting for a retry's due time.
        ready: Rows due now, waiting for a process to claim them.
        counted_at: Wall-clock time (Unix seconds) of those four counts.
        commits: Transactions this process committed.
        rows_per_commit: Rows written (inserted, updated, deleted) per commit, on average.
        put: Events stored by ``invoke``.
        claimed: Rows claimed (deliveries: first ones and retries).
        deleted: Rows deleted at a terminal outcome.
        deferred: Retries written back with their due time.
        released: Rows given back unstarted when the app stopped.
        held: Rows this process holds now (its crash would repeat these).
        writes_pending: Writes of this process not committed yet (in the transaction
            under way or waiting for the next).
        undecodable: Rows that could not be decoded (sent down their failure path).
        undeliverable: Claims of a handler this app does not serve (left for another).
        write_errors: Settles, retries or releases whose write failed (the row comes back
            when its lease lapses: a duplicate, never a loss).
    """

    depth: int
    leased: int
    scheduled: int
    ready: int
    counted_at: float
    commits: int
    rows_per_commit: float
    put: int
    claimed: int
    deleted: int
    deferred: int
    released: int
    held: int
    writes_pending: int
    undecodable: int
    undeliverable: int
    write_errors: int


@dataclass(slots=True)
class _Row:
    """A claimed row: what is needed to deliver it and to settle it."""

    id: int
    lease: int
    event: QueuedEvent | None  # None: it could not be decoded
    raw: tuple[Any, ...]  # the columns as stored, for a row that could not be decoded
    error: str = ""


@dataclass(slots=True)
class _Counts:
    depth: int = 0
    leased: int = 0
    scheduled: int = 0
    counted_at: float = 0.0  # wall-clock time
    monotonic: float = -math.inf  # when it was counted, for spacing the counts
    cost: float = 0.0  # seconds the count took


def _decode(columns: tuple[Any, ...], lease: int) -> _Row:
    row_id, request_id, handler, payload, first, attempts, _, trace = columns
    try:
        if not isinstance(request_id, str) or not isinstance(handler, str):
            raise TypeError("its request ID or handler name is not text")
        event = QueuedEvent(
            request_id,
            handler,
            json.loads(payload),
            float(first),
            int(attempts),
            _trace_context(trace),
        )
    except (TypeError, ValueError, RecursionError) as exc:
        return _Row(row_id, lease, None, columns, f"{type(exc).__name__}: {exc}")
    return _Row(row_id, lease, event, columns)


def _trace_context(stored: object) -> dict[str, str] | None:
    """The trace context of a row; one that cannot be read is left out (it only links
    spans: the event runs all the same); none is stored as "" (or NULL, in older files)."""
    if not stored:
        return None
    try:
        pairs = json.loads(stored) if isinstance(stored, str) else None
    except ValueError:
        return None
    if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
        return None
    return pairs


class SQLiteQueue:
    """A durable event queue in one SQLite file, for ``App(queue=...)``.

    Every process on this machine that opens the same file shares the queue: events
    invoked in one may run in another, and a process that dies only delays the events it
    held (until their leases lapse). Put the file on a local disk: SQLite's locking is not
    safe over a network file system, so the queue is for one machine; use
    :class:`eventflow.aws.SQSEventQueue` across machines.

    Args:
        path: The database file (created, with its folder, if missing).
        consume: ``False`` for a process that only invokes: it runs no events.
        synchronous: ``"FULL"`` (default): a 202 survives a power cut (the WAL is synced
            at every commit that stores an event). ``"NORMAL"``: a 202 survives a crash of
            the process, and a power cut may lose the last commits before it; commits are
            cheaper. Either case is accepted.
        batch_size: A process holds at most its app's concurrency plus this many rows:
            all that its crash can repeat. It claims once at least this many fit under
            that bound, as many as fit, in one statement.
        lease: Seconds a claim lasts; a heartbeat renews it every third of that while
            the event is held. A dead process's events run elsewhere after this.
        poll_interval: Seconds between looks at the file for rows written by other
            processes (rows written here are seen at once).
        max_batch: Most writes per transaction.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        consume: bool = True,
        synchronous: Literal["FULL", "NORMAL", "full", "normal"] = "FULL",
        batch_size: int = 32,
        lease: float = 30.0,
        poll_interval: float = 0.1,
        max_batch: int = 1024,
    ) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise ConfigurationError(f"path must be a file path, got {path!r}.")
        level = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if level not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}."
            )
        for option, value in (("batch_size", batch_size), ("max_batch", max_batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{option} must be an integer >= 1, got {value!r}.")
        for option, number in (("lease", lease), ("poll_interval", poll_interval)):
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not (number > 0 and math.isfinite(number))
            ):
                raise ConfigurationError(
                    f"{option} must be a positive number of seconds, got {number!r}."
                )
        self.path = Path(path)
        self._consume = consume
        self._batch = batch_size
        self._lease = float(lease)
        self._poll = float(poll_interval)
        self._db = GroupCommit(
            self.path,
            setup=self._setup,
            apply=self._apply,
            synchronous=cast(Synchronous, level),
            # a put is a 202: synced; a claim, delete or retry time lost to a power cut
            # only runs an event again (the row is still there), so it is not
            durable=_is_put,
            max_batch=max_batch,
            single=self._single,
            what="The event queue",
        )
        self._owner = f"{os.getpid()}-{random.getrandbits(48):012x}"
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._open = False
        self._wall: Callable[[], float] = time.time
        self._now_hint = time.time()  # the latest _now(), for counts made in the thread
        self._held: dict[int, _Row] = {}
        self._settling = 0  # settled rows whose delete or update is not committed yet
        self._changed = anyio.Event()  # the file changed here: look again
        self._room = anyio.Event()  # a held row was let go
        self._posted = anyio.Event()  # writes wait for the writer
        self._any_held = anyio.Event()
        self._counts = _Counts()
        self._chunk = 1  # rows per INSERT at most: set when the file opens
        self._single_max = 0  # most puts written as one statement: set when the file opens
        self._inserts: dict[int, str] = {}  # a multi-row INSERT by its number of rows
        self._put = self._claimed = self._deleted = self._deferred = self._released = 0
        self._undecodable = self._undeliverable = self._write_errors = 0

    def __repr__(self) -> str:
        return f"SQLiteQueue({str(self.path)!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> SQLiteQueue:
        if self._stack is not None:
            raise ConfigurationError(
                f"{self!r} is open already: an SQLiteQueue serves one app at a time. Give "
                "each app its own SQLiteQueue on the same file; they share its events."
            )
        try:
            await self._db.open()
        except OSError as exc:
            raise QueueUnavailable(
                f"{exc}. Check that the folder is writable and the file is an eventflow "
                "queue (or a new file)."
            ) from exc
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self._tg = await stack.enter_async_context(anyio.create_task_group())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._tg.start_soon(self._writer)
        self._tg.start_soon(self._counter)
        self._open = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # the app has settled every event it delivered; give back what it never took
        self._open = False
        for row in list(self._held.values()):
            self._release(row)
        assert self._stack is not None and self._tg is not None
        try:
            self._tg.cancel_scope.cancel()  # the writer and counter; then write what is left
            await self._stack.aclose()
        finally:
            self._stack = self._tg = None
            with anyio.CancelScope(shield=True):
                await self._db.aclose()

    def _check_open(self, what: str) -> None:
        if not self._open:
            raise QueueUnavailable(
                f"The event queue {self.path} is not open, so it cannot {what}; pass it as "
                "App(queue=...): the app opens it when it starts."
            )

    # -- putting --------------------------------------------------------------------

    async def put(self, event: QueuedEvent) -> None:
        """Store ``event``; return once its row is committed (and synced, with FULL).

        Raises:
            QueueUnavailable: the row could not be written (nothing was accepted).
        """
        self._check_open("store events")
        # the row's values in a tuple of their own: the thread chains them without a slice
        op = (
            "put",
            (
                event.request_id,
                event.handler,
                checked_to_json(event.payload),
                event.first_enqueued,
                event.attempts,
                # "" rather than NULL for none: binding None makes sqlite3 look for an
                # adapter, raising and formatting two AttributeErrors per row
                "" if not event.trace_context else checked_to_json(dict(event.trace_context)),
            ),
        )
        db = self._db
        written = db.push(op)  # submit() inlined: one coroutine level less per invoke
        try:
            if not db.flushing:
                await db.flush()
            await written
        except OSError as exc:
            raise QueueUnavailable(
                f"{exc}. The event was not stored: nothing was accepted; invoke again."
            ) from exc
        self._put += 1
        self._look_again()

    # -- delivering -----------------------------------------------------------------

    async def run(self, app: AppHost, *, task_status: TaskStatus[None]) -> None:
        """Claim due rows and hand their events to ``app`` until cancelled."""
        self._check_open("deliver events")
        if not self._consume:
            task_status.started()
            return
        clock = app.clock
        offset = time.time() - clock.now()
        self._wall = lambda: offset + clock.now()
        bound = app.concurrency + self._batch
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeat, clock)
            task_status.started()
            while True:
                # rows let go count as room at once: their writes are queued before the
                # claim, so they commit before it or with it, never after
                while len(self._held) + self._batch > bound:
                    self._room = anyio.Event()
                    await self._room.wait()
                await anyio.lowlevel.checkpoint()  # where a shutdown's cancellation lands
                room = bound - len(self._held)
                changed = self._change_event()  # before the claim: a change after it wakes us
                now = self._now()
                claim = ("claim", now, now + self._lease, room)
                try:
                    # shielded: a claim cut off would leave its rows held by nobody here
                    with anyio.CancelScope(shield=True):
                        rows, next_due = await self._db.submit((*claim, frozenset(self._held)))
                except OSError as exc:
                    _log.error("sqlite_queue.claim_failed", path=str(self.path), error=str(exc))
                    await self._wait_change(clock, changed, now + self._lease)
                    continue
                for row in rows:
                    self._held[row.id] = row
                self._claimed += len(rows)
                if rows:
                    self._any_held.set()
                for i, row in enumerate(rows):
                    try:
                        await self._deliver(app, row)
                    except BaseException as exc:
                        for rest in rows[i:]:
                            self._release(rest)  # a no-op for what is no longer held
                        if isinstance(exc, AppClosed):
                            return
                        raise
                if not rows:
                    await self._wait_change(clock, changed, next_due)

    @property
    def _holding(self) -> int:
        return len(self._held) + self._settling

    async def _wait_change(self, clock: Clock, changed: anyio.Event, due: float | None) -> None:
        """Wait until the file changed here, ``due`` (wall time) passed, or a poll is due."""
        handle = None
        if due is not None:
            handle = clock.call_at(clock.now() + max(0.0, due - self._wall()), changed.set)
        try:
            with anyio.move_on_after(self._poll):  # real time: for other processes' writes
                await changed.wait()
        finally:
            if handle is not None:
                handle.cancel()

    async def _deliver(self, app: AppHost, row: _Row) -> None:
        settle = functools.partial(self._settle, row)
        if row.event is None:
            await self._reject(app, row, settle)
            return
        try:
            await app.deliver(row.event, settle=settle, defer=functools.partial(self._defer, row))
        except UnknownHandler as exc:
            self._undeliverable += 1
            _log.error(
                "sqlite_queue.undeliverable",
                path=str(self.path),
                request_id=row.event.request_id,
                handler=row.event.handler,
                attempt=row.event.attempts,
                reason=f"{exc} It is left for an app that serves it.",
            )
            self._let_go(row, "postpone", self._now() + self._lease)

    async def _reject(
        self, app: AppHost, row: _Row, settle: Callable[[str, Outcome], None]
    ) -> None:
        # a row that cannot be decoded still has a handler: it fails there, no attempt
        self._undecodable += 1
        _, request_id, handler, payload, *_ = row.raw
        reason = (
            f"The event queue {self.path} holds a row (id {row.id}) that cannot be decoded "
            f"({row.error}); it is sent down its handler's failure path without an attempt."
        )
        try:
            await app.reject(
                str(handler),
                payload,
                reason,
                settle=settle,
                request_id=request_id if isinstance(request_id, str) else None,
            )
        except UnknownHandler as exc:
            self._undeliverable += 1
            _log.error(
                "sqlite_queue.undeliverable",
                path=str(self.path),
                row=row.id,
                reason=f"{reason} {exc} It is left for an app that serves it.",
            )
            self._let_go(row, "postpone", self._now() + self._lease)

    # -- settling (called by the app, on the event loop) -----------------------------

    def _settle(self, row: _Row, request_id: str, outcome: Outcome) -> None:
        if outcome is Outcome.RELEASED:
            self._release(row)
        elif self._let_go(row, "delete", 0.0):
            self._deleted += 1

    def _defer(self, row: _Row, request_id: str, delay: float) -> None:
        if self._let_go(row, "defer", self._now() + max(0.0, delay)):
            self._deferred += 1

    def _release(self, row: _Row) -> None:
        if self._let_go(row, "release", 0.0):
            self._released += 1

    def _let_go(self, row: _Row, kind: str, due: float) -> bool:
        """Write ``row`` off this process (deleted, due later, or given back)."""
        if self._held.pop(row.id, None) is None:
            return False
        self._settling += 1
        self._db.post((kind, row.id, row.lease, due, row), self._written)
        self._posted.set()
        self._room.set()
        return True

    def _written(self, op: tuple[Any, ...], error: BaseException | None) -> None:
        self._settling -= 1
        self._look_again()
        if error is not None:
            kind, row = op[0], op[4]
            self._write_errors += 1
            _log.error(
                "sqlite_queue.write_failed",
                path=str(self.path),
                row=row.id,
                write=kind,
                request_id=row.event.request_id if row.event else None,
                error=str(error),
                consequence="the row comes back when its lease lapses and runs again",
            )

    def _look_again(self) -> None:
        self._changed.set()

    def _change_event(self) -> anyio.Event:
        """The event the next change sets: take it before looking at the file."""
        if self._changed.is_set():  # whoever held the old one has been woken
            self._changed = anyio.Event()
        return self._changed

    def _now(self) -> float:
        """Wall-clock time on the app's clock (on the event loop: the thread reads the hint)."""
        self._now_hint = now = self._wall()
        return now

    async def _writer(self) -> None:
        while True:
            await self._posted.wait()
            self._posted = anyio.Event()
            await self._db.flush()

    async def _heartbeat(self, clock: Clock) -> None:
        period = self._lease / 3
        while True:
            if not self._held:
                self._any_held = anyio.Event()
                await self._any_held.wait()
            await sleep_until(clock, clock.now() + period)
            leases = [(row.id, row.lease) for row in self._held.values()]
            if not leases:
                continue
            try:
                await self._db.submit(("extend", self._now() + self._lease, leases))
            except OSError as exc:
                _log.error("sqlite_queue.heartbeat_failed", path=str(self.path), error=str(exc))

    async def _counter(self) -> None:
        # once a burst is over, count once more so statistics() shows where it ended
        counted = 0
        while True:
            await anyio.sleep(_COUNT_EVERY)
            if counted != self._db.commits:
                counted = self._db.commits
                await self._count()

    async def _count(self) -> _Counts:
        try:
            with anyio.CancelScope(shield=True):
                await self._db.submit(("count", self._now()))
        except OSError as exc:
            _log.error("sqlite_queue.count_failed", path=str(self.path), error=str(exc))
        return self._counts

    # -- emptiness and statistics ---------------------------------------------------

    async def wait_empty(self) -> None:
        """Return once the file holds no event: none waiting, running anywhere or due
        for a retry."""
        self._check_open("be waited on")
        while True:
            changed = self._change_event()
            # while this process holds rows the file is not empty: no need to count
            if not self._holding and (await self._count()).depth == 0:
                return
            with anyio.move_on_after(self._poll):
                await changed.wait()

    @property
    def consume(self) -> bool:
        """Whether this queue's app runs the events it takes (``consume=`` at construction)."""
        return self._consume

    def statistics(self) -> SQLiteQueueStatistics:
        """A snapshot of the file's counts and this process's counters."""
        c = self._counts
        return SQLiteQueueStatistics(
            depth=c.depth,
            leased=c.leased,
            scheduled=c.scheduled,
            ready=c.depth - c.leased - c.scheduled,
            counted_at=c.counted_at,
            commits=self._db.commits,
            rows_per_commit=self._db.rows / self._db.commits if self._db.commits else 0.0,
            put=self._put,
            claimed=self._claimed,
            deleted=self._deleted,
            deferred=self._deferred,
            released=self._released,
            held=self._holding,
            writes_pending=self._db.pending,
            undecodable=self._undecodable,
            undeliverable=self._undeliverable,
            write_errors=self._write_errors,
        )

    # -- in the worker thread -------------------------------------------------------

    def _setup(self, conn: sqlite3.Connection) -> None:
        _setup(conn)
        # the largest power of two of rows whose values SQLite takes in one statement
        rows = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _PUT_VALUES
        self._chunk = 1 << (min(_MAX_CHUNK, rows).bit_length() - 1)
        self._single_max = min(_SINGLE_MAX, rows)

    def _apply(self, conn: sqlite3.Connection, ops: Sequence[tuple[Any, ...]]) -> list[Any]:
        out: list[Any] = []
        counted = False
        i = 0
        while i < len(ops):
            kind = ops[i][0]
            if kind == "put":
                j = i
                while j < len(ops) and ops[j][0] == "put":
                    j += 1
                self._insert(conn, ops, i, j)
                out += [None] * (j - i)
                i = j
                continue
            if kind in _MANY:
                # a run of deletes: one executemany, in order with the rest
                j = i
                while j < len(ops) and ops[j][0] == kind:
                    j += 1
                statement, parameters = _MANY[kind]
                conn.executemany(statement, [op[parameters] for op in ops[i:j]])
                out += [None] * (j - i)
                i = j
                continue
            op = ops[i]
            i += 1
            if kind == "claim":
                out.append(self._claim(conn, *op[1:]))
                continue
            if kind == "defer":
                conn.execute(
                    "UPDATE eventflow_queue SET owner = NULL, lease = 0, due = ? "
                    "WHERE id = ? AND lease = ?",
                    (op[3], op[1], op[2]),
                )
            elif kind in ("release", "postpone"):
                # no attempt ran: the claim's count is taken back
                conn.execute(
                    "UPDATE eventflow_queue SET owner = NULL, lease = 0, due = ?, "
                    "attempts = max(0, attempts - 1) WHERE id = ? AND lease = ?",
                    (op[3], op[1], op[2]),
                )
            elif kind == "extend":
                conn.executemany(
                    "UPDATE eventflow_queue SET due = ? WHERE id = ? AND lease = ?",
                    [(op[1], row_id, lease) for row_id, lease in op[2]],
                )
            elif kind == "count":
                self._count_rows(conn, op[1])
                counted = True
            else:
                raise AssertionError(f"unknown operation {kind!r}")
            out.append(None)
        if self._vacuum_due():
            conn.execute(f"PRAGMA incremental_vacuum({_VACUUM_PAGES})")
        if not counted and self._count_due():
            self._count_rows(conn, self._now_hint)
        return out

    def _vacuum_due(self) -> bool:
        return (self._db.commits + 1) % _VACUUM_EVERY == 0

    def _count_due(self) -> bool:
        c = self._counts
        return c.depth <= _COUNT_SMALL or (
            time.monotonic() - c.monotonic >= max(_COUNT_EVERY, _COUNT_SHARE * c.cost)
        )

    def _single(self, ops: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]] | None:
        """A batch of puts alone, with no count or vacuum due: one INSERT of them all."""
        if (
            len(ops) > self._single_max
            or any(op[0] != "put" for op in ops)
            or self._vacuum_due()
            or self._count_due()
        ):
            return None
        return self._statement(len(ops)), _values(ops)

    def _statement(self, size: int) -> str:
        statement = self._inserts.get(size)
        if statement is None:
            statement = _INSERT + ",".join(["(?,?,?,?,?,?)"] * size)
            self._inserts[size] = statement
        return statement

    def _insert(
        self, conn: sqlite3.Connection, ops: Sequence[tuple[Any, ...]], i: int, j: int
    ) -> None:
        """Insert the puts ``ops[i:j]`` with a few multi-row INSERTs: SQLite's step runs
        once per statement, not once per row (each step lets go of the GIL and takes it
        back, a wait while the event loop runs)."""
        while i < j:
            size = self._chunk
            while size > j - i:
                size >>= 1  # sizes are powers of two: a handful of cached statements
            statement = self._statement(size)
            conn.execute(statement, _values(ops[i : i + size]))
            i += size

    def _count_rows(self, conn: sqlite3.Connection, now: float) -> None:
        started = time.monotonic()
        depth, leased, scheduled = conn.execute(_COUNT, (now,)).fetchone()
        ended = time.monotonic()
        self._counts = _Counts(depth, leased, scheduled, now, ended, ended - started)

    def _claim(
        self,
        conn: sqlite3.Connection,
        now: float,
        until: float,
        room: int,
        held: frozenset[int],
    ) -> tuple[list[_Row], float | None]:
        # our own rows are ours to settle while we hold them; one we let go of but whose
        # write failed is ours again a lease after its lease lapsed
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM eventflow_queue WHERE due <= ? "
            "AND (owner IS NOT ? OR due <= ?) ORDER BY due LIMIT ?",
            (now, self._owner, now - self._lease, room),
        ).fetchall()
        rows = []
        for columns in found:
            if columns[0] in held:  # still ours (a lease lapsed while we ran it)
                continue
            rows.append(_decode(columns, random.getrandbits(62) + 1))
        conn.executemany(
            "UPDATE eventflow_queue SET owner = ?, lease = ?, due = ?, attempts = attempts + 1 "
            "WHERE id = ?",
            [(self._owner, row.lease, until, row.id) for row in rows],
        )
        next_due = None
        if not rows:
            after = conn.execute(
                "SELECT due FROM eventflow_queue WHERE due > ? AND owner IS NOT ? "
                "ORDER BY due LIMIT 1",
                (now, self._owner),
            ).fetchone()
            next_due = None if after is None else float(after[0])
        return rows, next_due


def _values(puts: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The values of ``puts``, one row after the other, for a multi-row INSERT."""
    return list(chain.from_iterable(map(_row, puts)))


def _is_put(op: tuple[Any, ...]) -> bool:
    return bool(op[0] == "put")


def _setup(conn: sqlite3.Connection) -> None:
    # space freed by deleted rows is reused; incremental vacuum returns a surplus of it
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
    for statement in _SCHEMA:
        conn.execute(statement)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(eventflow_queue)")}
    if "trace_context" not in columns:
        # a file made before the column: its rows read as events without a trace context
        try:
            conn.execute("ALTER TABLE eventflow_queue ADD COLUMN trace_context TEXT")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise  # else another process opening the file added it first


# public as eventflow.queues.SQLiteQueue
SQLiteQueue.__module__ = SQLiteQueueStatistics.__module__ = "eventflow.queues"

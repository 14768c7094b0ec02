"""What SQLiteQueue adds to the shared-queue semantics (tests/queues/test_semantics.py runs
those on it too): rows in a file, group commit, leases and heartbeats, retries as rows with
a due time, a row that cannot be decoded, the hold bound, statistics, a bounded file.

Leases and retry delays run on a virtual clock; an "other process" is a second queue object
on the same file (its own connection), or rows written straight into the file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import eventflow
from eventflow.queues import QueuedEvent, SQLiteQueue
from eventflow.sinks import MemorySink
from eventflow.testing import VirtualClock


def rows(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM eventflow_queue ORDER BY id")]


def insert(path: Path, **row: Any) -> None:
    with sqlite3.connect(path) as conn:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        conn.execute(f"INSERT INTO eventflow_queue ({names}) VALUES ({marks})", tuple(row.values()))


async def create(path: Path) -> None:
    async with SQLiteQueue(path, consume=False):
        pass


async def test_a_burst_of_invokes_shares_commits_and_each_202_is_a_row(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    queue = SQLiteQueue(path, consume=False)
    app = eventflow.App(queue=queue)

    @app.handler
    async def work(event: dict[str, int], context: eventflow.Context) -> None:
        return None

    async with app:
        await app.invoke(work, {"n": -1})
        lone = queue.statistics()
        accepted: list[str] = []

        async def caller(n: int) -> None:
            accepted.append((await app.invoke(work, {"n": n})).request_id)

        async with anyio.create_task_group() as tg:
            for n in range(300):
                tg.start_soon(caller, n)
        burst = queue.statistics()
    assert lone.commits == 1 and lone.rows_per_commit == 1
    assert lone.depth == 1
    # 300 callers at once: far fewer commits than events
    assert burst.commits - lone.commits <= 30, burst
    assert burst.put == 301 and burst.depth == 301 and burst.ready == 301
    stored = rows(path)
    assert {r["request_id"] for r in stored} >= set(accepted)
    assert all(r["attempts"] == 0 and r["owner"] is None for r in stored)
    assert json.loads(stored[0]["payload"]) == {"n": -1}


async def test_every_row_of_a_burst_holds_its_own_values(tmp_path: Path) -> None:
    # Given a burst whose transactions hold sizes that are not powers of two
    path = tmp_path / "q.db"
    queue = SQLiteQueue(path, consume=False, max_batch=700)
    app = eventflow.App(queue=queue)

    @app.handler
    async def work(event: dict[str, int], context: eventflow.Context) -> None:
        return None

    accepted: dict[str, int] = {}

    async def caller(n: int) -> None:
        accepted[(await app.invoke(work, {"n": n})).request_id] = n

    # When 1,001 callers invoke at once
    async with app:
        async with anyio.create_task_group() as tg:
            for n in range(1001):
                tg.start_soon(caller, n)
        stats = queue.statistics()
    # Then each 202 is the row with that caller's payload, in a few large transactions
    assert stats.commits <= 10 and stats.rows_per_commit > 100, stats
    stored = {r["request_id"]: r for r in rows(path)}
    assert len(stored) == 1001
    assert {rid: json.loads(r["payload"])["n"] for rid, r in stored.items()} == accepted
    assert all(r["handler"] == "work" and r["attempts"] == 0 for r in stored.values())


async def test_a_row_that_cannot_be_written_fails_only_its_own_invoke(tmp_path: Path) -> None:
    # Given a middleware that gives the 50th event a trace context UTF-8 cannot encode
    path = tmp_path / "q.db"
    injected: list[str] = []

    class Unwritable:
        def inject(self, event: eventflow.EventInfo) -> dict[str, str] | None:
            injected.append(event.request_id)
            return {"traceparent": "\ud800"} if len(injected) == 50 else None

    queue = SQLiteQueue(path, consume=False)
    app = eventflow.App(queue=queue, middleware=[Unwritable()])

    @app.handler
    async def work(event: dict[str, int], context: eventflow.Context) -> None:
        return None

    accepted: list[str] = []
    refused: list[eventflow.QueueUnavailable] = []

    async def caller(n: int) -> None:
        try:
            accepted.append((await app.invoke(work, {"n": n})).request_id)
        except eventflow.QueueUnavailable as exc:
            refused.append(exc)

    # When it is invoked in one burst with 99 others
    async with app:
        async with anyio.create_task_group() as tg:
            for n in range(100):
                tg.start_soon(caller, n)
        stats = queue.statistics()
    # Then only its invoke fails, and the other 99 share a few transactions
    assert len(refused) == 1 and "nothing was accepted" in str(refused[0])
    assert stats.put == 99 and stats.commits <= 5, stats
    assert sorted(r["request_id"] for r in rows(path)) == sorted(accepted)
    assert injected[49] not in accepted


async def test_consume_false_runs_nothing(tmp_path: Path) -> None:
    runs: list[int] = []
    app = eventflow.App(queue=SQLiteQueue(tmp_path / "q.db", consume=False))

    @app.handler
    async def work(event: dict[str, int], context: eventflow.Context) -> None:
        runs.append(event["n"])

    async with app:
        for n in range(5):
            await app.invoke(work, {"n": n})
        with pytest.raises(TimeoutError):
            await app.drain(timeout=0.3)
    assert runs == []
    assert len(rows(tmp_path / "q.db")) == 5


async def test_a_retry_is_a_row_with_its_due_time_and_runs_after_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.db"
    clock = VirtualClock(start=5_000.0)
    attempts: list[tuple[int, float]] = []
    failed = anyio.Event()

    def build() -> tuple[eventflow.App, SQLiteQueue]:
        queue = SQLiteQueue(path)
        app = eventflow.App(queue=queue, clock=clock)

        @app.handler(retry_delays=(300,))
        async def flaky(event: dict[str, str], context: eventflow.Context) -> None:
            attempts.append((context.attempt, clock.now()))
            if context.attempt == 1:
                failed.set()
                raise RuntimeError("the first attempt fails")

        return app, queue

    first, queue = build()
    async with first:
        await first.invoke("flaky", {"k": "v"})
        await failed.wait()
    [row] = rows(path)
    assert row["attempts"] == 1 and row["owner"] is None
    assert row["due"] >= time.time() + 290  # on disk: due in five minutes
    stats = queue.statistics()
    assert stats.depth == 1 and stats.scheduled == 1 and stats.deferred == 1
    # the process that scheduled it is gone; a new one runs it when it is due, not before
    second, _ = build()
    async with second, clock.autojump():
        await second.drain()
    assert [n for n, _ in attempts] == [1, 2]
    # the real time the restart took counts toward the delay, as it would in production
    assert attempts[1][1] - attempts[0][1] >= 300 - 5
    assert rows(path) == []


async def test_an_overdue_retry_runs_at_once_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    await create(path)
    # a retry whose due time passed while no process ran
    insert(
        path,
        request_id="req-overdue",
        handler="work",
        payload="{}",
        first_enqueued=time.time() - 120,
        attempts=1,
        due=time.time() - 60,
    )
    seen: list[tuple[str, int]] = []
    clock = VirtualClock()
    app = eventflow.App(queue=SQLiteQueue(path), clock=clock)

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        seen.append((context.aws_request_id, context.attempt))

    async with app:
        await app.drain(timeout=5)  # the virtual clock never moves: it must run at once
    assert seen == [("req-overdue", 2)]


async def test_a_dead_process_lease_lapses_and_the_row_runs_here(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    await create(path)
    now = time.time()
    # claimed by a process that died: leased for 30 more seconds, one attempt counted
    insert(
        path,
        request_id="req-orphan",
        handler="work",
        payload='{"n": 7}',
        first_enqueued=now,
        attempts=1,
        due=now + 30,
        owner="4242-dead",
        lease=99,
    )
    clock = VirtualClock(start=100.0)
    seen: list[tuple[int, float]] = []
    app = eventflow.App(queue=SQLiteQueue(path), clock=clock)

    @app.handler
    async def work(event: dict[str, int], context: eventflow.Context) -> None:
        seen.append((context.attempt, clock.now()))

    async with app:
        # the app's wall clock starts here; the lease's 30 s counted from `now` on
        entered = time.time()
        async with clock.autojump():
            await app.drain()
    assert len(seen) == 1
    attempt, when = seen[0]
    assert attempt == 2  # the dead process's attempt counts
    assert when >= 100.0 + 30 - (entered - now)  # not before the lease lapsed


async def test_heartbeats_keep_a_long_attempt_from_another_process(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    clock = VirtualClock(start=100.0)
    runs: list[tuple[str, int]] = []
    finished = anyio.Event()
    queue = SQLiteQueue(path, lease=6)

    def build(queue: SQLiteQueue) -> eventflow.App:
        app = eventflow.App(queue=queue, clock=clock)

        @app.handler(timeout=120)
        async def slow(event: dict[str, str], context: eventflow.Context) -> None:
            runs.append((app.name, context.attempt))
            await clock.sleep(60)  # ten leases long
            finished.set()

        return app

    other = SQLiteQueue(path, lease=6)

    async def written() -> None:
        # virtual time waits for no thread: let every task post its writes (heartbeats,
        # polls) and both queues' writes land before time moves again
        for _ in range(3_000):  # bounded: 30 s on a loaded machine
            await anyio.wait_all_tasks_blocked()
            if queue.statistics().writes_pending == other.statistics().writes_pending == 0:
                await anyio.wait_all_tasks_blocked()
                if queue.statistics().writes_pending == other.statistics().writes_pending == 0:
                    return
            await anyio.sleep(0.01)
        pytest.fail(f"a write did not finish: {queue.statistics()} {other.statistics()}")

    one, two = build(queue), build(other)
    async with one, two:
        await one.invoke("slow", {"k": "v"})
        for _ in range(1_000):  # bounded: 10 s
            if runs:
                break
            await anyio.sleep(0.01)
        for _ in range(70):  # seventy seconds, one at a time
            await clock.advance(1)
            await written()
        assert finished.is_set()
        async with clock.autojump():
            await one.drain()
            await two.drain()
    assert runs == [(one.name, 1)]
    assert rows(path) == []


async def test_a_row_that_cannot_be_decoded_takes_its_failure_path(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    await create(path)
    insert(
        path,
        request_id="req-broken",
        handler="work",
        payload="{not json",
        first_enqueued=time.time(),
    )
    dlq = MemorySink()
    ran: list[Any] = []
    queue = SQLiteQueue(path)
    app = eventflow.App(queue=queue)

    @app.handler(dead_letter=dlq)
    async def work(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    async with app:
        await app.invoke(work, {"fine": True})
        await app.drain(timeout=10)
        stats = app.stats()
    assert ran == [{"fine": True}]  # the process lives on and runs the rest
    [letter] = dlq.messages
    assert letter.attributes["RequestID"] == "req-broken"
    assert "cannot be decoded" in letter.attributes["ErrorMessage"]
    assert letter.json() == "{not json"  # the row's text, as it is
    assert stats.failed == 1 and stats.succeeded == 1
    assert queue.statistics().undecodable == 1
    assert rows(path) == []


async def test_a_process_holds_at_most_its_concurrency_plus_one_batch(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    queue = SQLiteQueue(path, batch_size=3)
    app = eventflow.App(queue=queue, concurrency=2)
    gate = anyio.Event()
    started: list[int] = []

    @app.handler
    async def blocked(event: dict[str, int], context: eventflow.Context) -> None:
        started.append(event["n"])
        await gate.wait()

    async with app:
        for n in range(40):
            await app.invoke(blocked, {"n": n})
        for _ in range(1_000):  # bounded: 10 s
            if len(started) == 2 and queue.statistics().held >= 3:
                break
            await anyio.sleep(0.01)
        else:
            pytest.fail(f"two attempts never started: {queue.statistics()}")
        # the claimer has had time to take more, were it to
        for _ in range(20):
            await anyio.sleep(0.01)
            assert queue.statistics().held <= 2 + 3
        leased = sum(1 for r in rows(path) if r["owner"] is not None)
        assert leased <= 5
        gate.set()
        await app.drain(timeout=20)
    assert sorted(started) == list(range(40))


async def test_the_file_does_not_grow_with_the_events_it_has_seen(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    wal = path.with_name(path.name + "-wal")
    app = eventflow.App(queue=SQLiteQueue(path, synchronous="NORMAL"), concurrency=50)
    payload = {"data": "x" * 2_000}

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        return None

    sizes = []
    async with app:
        for _ in range(4):
            async with anyio.create_task_group() as tg:
                for _ in range(250):
                    tg.start_soon(app.invoke, work, payload)
            await app.drain(timeout=30)
            sizes.append((path.stat().st_size, wal.stat().st_size if wal.exists() else 0))
    assert rows(path) == []
    # 2 MB of events went through: the file keeps about one round's worth (free pages
    # are reused), the WAL at most a checkpoint's worth (1,000 pages) and a transaction
    assert sizes[3][0] <= sizes[1][0] * 1.1 and sizes[3][0] < 1_500_000, sizes
    assert all(log < 5_000_000 for _, log in sizes), sizes


async def test_invoke_before_the_app_starts_is_refused(tmp_path: Path) -> None:
    queue = SQLiteQueue(tmp_path / "q.db")
    with pytest.raises(eventflow.QueueUnavailable, match="not open"):
        await queue.put(QueuedEvent("r", "h", {}, 0.0))


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(eventflow.ConfigurationError, match="synchronous"):
        SQLiteQueue(tmp_path / "q.db", synchronous="OFF")  # type: ignore[arg-type]
    assert SQLiteQueue(tmp_path / "q.db", synchronous="normal") is not None
    with pytest.raises(eventflow.ConfigurationError, match="lease"):
        SQLiteQueue(tmp_path / "q.db", lease=0)
    with pytest.raises(eventflow.ConfigurationError, match="batch_size"):
        SQLiteQueue(tmp_path / "q.db", batch_size=0)


async def test_one_queue_object_serves_one_app_at_a_time(tmp_path: Path) -> None:
    queue = SQLiteQueue(tmp_path / "q.db")
    async with eventflow.App(queue=queue):
        with pytest.raises(eventflow.ConfigurationError, match="its own SQLiteQueue"):
            async with eventflow.App(queue=queue):
                pass


async def test_a_row_keeps_its_trace_context_and_a_file_from_before_the_column_opens(
    tmp_path: Path,
) -> None:
    # Given a file made before the trace_context column, with one row in it
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE eventflow_queue (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, "
            "handler TEXT NOT NULL, payload TEXT NOT NULL, first_enqueued REAL NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL DEFAULT 0, owner TEXT, "
            "lease INTEGER NOT NULL DEFAULT 0)"
        )
    insert(path, request_id="r-old", handler="work", payload="{}", first_enqueued=time.time())
    seen: list[tuple[str, object]] = []

    class Carrying:
        def attempt(self, event: eventflow.EventInfo) -> Any:
            seen.append((event.request_id, event.trace_context))
            return contextlib.nullcontext()

        def inject(self, event: eventflow.EventInfo) -> dict[str, str]:
            return {"traceparent": f"for-{event.handler}"}

    app = eventflow.App(queue=SQLiteQueue(path), middleware=[Carrying()])

    @app.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        pass

    # When the app opens it and a new event is invoked
    async with app:
        accepted = await app.invoke(work, {})
        await app.drain()
    # Then the old row runs without a trace context, the new one with its own
    assert sorted(seen) == sorted(
        [("r-old", None), (accepted.request_id, {"traceparent": "for-work"})]
    )


async def test_statistics_count_leased_scheduled_and_ready_rows(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    await create(path)
    now = time.time()
    base: dict[str, Any] = {"handler": "work", "payload": "{}", "first_enqueued": now}
    kinds: dict[str, dict[str, Any]] = {
        "ready": {"due": now - 1},
        "leased": {"due": now + 60, "owner": "4242-other", "lease": 7},
        "lapsed": {"due": now - 5, "owner": "4242-dead", "lease": 3},  # ready again
        "scheduled": {"due": now + 3600, "attempts": 1},
    }
    counts = {"ready": 3, "leased": 2, "lapsed": 1, "scheduled": 4}
    for kind, n in counts.items():
        for i in range(n):
            insert(path, request_id=f"req-{kind}-{i}", **base, **kinds[kind])
    async with SQLiteQueue(path, consume=False) as queue:
        # a put is a transaction, and a shallow file is counted at each one
        await queue.put(QueuedEvent("req-new", "work", {}, now))
        stats = queue.statistics()
    assert (stats.depth, stats.leased, stats.scheduled, stats.ready) == (11, 2, 4, 5)


def test_the_count_reads_the_due_index_never_every_row(tmp_path: Path) -> None:
    from eventflow._sqlite_queue import _COUNT

    path = tmp_path / "q.db"
    anyio.run(create, path)
    with sqlite3.connect(path) as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {_COUNT}", (0.0,))]
    assert plan, "no query plan"
    # every step searches or scans the due index; none reads the table's rows one by one
    assert all("INDEX eventflow_queue_due" in step for step in plan if "eventflow_queue" in step)

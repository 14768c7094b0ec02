"""Several worker processes on one SQSEventQueue, against the moto server, with SIGKILL.

The workers are real processes (``python -m eventflow worker scale_app:app``, see
scale_app/scale_app.py) talking HTTP to a moto server in a process of its own; the test
invokes through an app of its own that only sends (``consume=False``), then reads the
outcome back: the dead-letter queue (SQS), the on-success records (a JSON-lines sink per
worker), and the logs each worker wrote of its attempts and side effects.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession

import eventflow
from eventflow.aws import DynamoDBStore, SQSEventQueue

APP_DIR = Path(__file__).parent / "scale_app"
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.timeout(400),
]


class Workers:
    """Worker processes of scale_app, started with one environment."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**env, "EF_LOG_DIR": str(log_dir)}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **extra: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "eventflow", "worker", "scale_app:app"]
        command += ["--stats-interval", "0.2", "--log-format", "json"]
        with (self.log_dir / f"stdout-{len(self.procs)}.log").open("wb") as out:
            proc = subprocess.Popen(
                command,
                cwd=APP_DIR,
                env={**os.environ, **self.env, **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> dict[int, int]:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return {proc.pid: proc.wait(timeout=60) for proc in self.procs}

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def attempts(self) -> dict[str, list[tuple[int, float, int]]]:
        """Request ID -> [(attempt, time, pid)] over every worker's log."""
        out: dict[str, list[tuple[int, float, int]]] = {}
        for path in self.log_dir.glob("attempts-*.log"):
            pid = int(path.stem.split("-")[1])
            for line in path.read_text().splitlines():
                rid, attempt, when = line.split()
                out.setdefault(rid, []).append((int(attempt), float(when), pid))
        return out

    def logged(self, index: int, text: str) -> bool:
        """Whether worker ``index`` (in start order) has logged ``text``."""
        return text in (self.log_dir / f"stdout-{index}.log").read_text(errors="replace")

    def successes(self) -> list[dict[str, Any]]:
        """Every on-success destination record the workers wrote."""
        return [
            json.loads(json.loads(line)["body"])
            for path in self.log_dir.glob("success-*.jsonl")
            for line in path.read_text().splitlines()
        ]

    def effects(self) -> Counter[str]:
        return Counter(
            line
            for path in self.log_dir.glob("effects-*.log")
            for line in path.read_text().splitlines()
        )


@pytest.fixture
async def aws(moto_process_endpoint: str, aio_session: AioSession) -> AsyncIterator[dict[str, Any]]:
    """Clients on a moto server in its own process: three workers and a producer load it."""
    session = aio_session
    kw: dict[str, Any] = {"region_name": "us-east-1", "endpoint_url": moto_process_endpoint}
    async with session.create_client("sqs", **kw) as sqs:
        yield {"sqs": sqs, "endpoint": moto_process_endpoint}


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Workers]]:
    made: list[Workers] = []

    def make(env: dict[str, str]) -> Workers:
        w = Workers(env, tmp_path)
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill_all()


async def make_queues(aws: dict[str, Any], name: str, visibility: int) -> dict[str, str]:
    sqs = aws["sqs"]
    urls = {}
    for role, attributes in (
        ("queue", {"VisibilityTimeout": str(visibility)}),
        ("dlq", {}),
    ):
        created = await sqs.create_queue(QueueName=f"{name}-{role}", Attributes=attributes)
        urls[role] = created["QueueUrl"]
    return urls


async def read_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message of a queue (each received once, visibility kept long)."""
    out: list[dict[str, Any]] = []
    while True:
        got = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=600,
            MessageAttributeNames=["All"],
        )
        messages = got.get("Messages", [])
        if not messages:
            return out
        out.extend(messages)


async def queue_empty(sqs: Any, url: str) -> bool:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    got = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return not any(int(got["Attributes"].get(n, "0")) for n in names)


async def stays_empty(sqs: Any, url: str, seconds: float = 3.0) -> bool:
    """Whether the queue reads empty throughout ``seconds`` (longer than a retry's delay:
    a retry waiting in SQS shows up again within it)."""
    deadline = anyio.current_time() + seconds
    while anyio.current_time() < deadline:
        if not await queue_empty(sqs, url):
            return False
        await anyio.sleep(0.2)
    return True


async def depth_below(sqs: Any, url: str, limit: int) -> bool:
    got = await sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(got["Attributes"]["ApproximateNumberOfMessages"]) < limit


async def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``condition`` (an async or plain callable) until it is true."""
    with anyio.fail_after(timeout):
        while True:
            result = condition()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await anyio.sleep(0.1)
    raise AssertionError(what)


async def invoke_all(
    endpoint: str, queue_url: str, payloads: list[dict[str, Any]], *, pace: Any = None
) -> list[str]:
    """Invoke every payload through an app that only sends, 50 invokes at once.

    ``pace`` (an async callable) is awaited before each chunk of 100 invokes: moto's
    receive slows down with the queue's depth, which real SQS does not.
    """
    producer = eventflow.App(
        name="producer",
        queue=SQSEventQueue(queue_url, endpoint_url=endpoint, consume=False),
    )

    @producer.handler
    async def work(event: Any, context: eventflow.Context) -> None:
        raise AssertionError("the producer runs no events")

    ids: list[str] = [""] * len(payloads)
    async with producer:
        limiter = anyio.Semaphore(50)

        async def one(i: int) -> None:
            async with limiter:
                ids[i] = (await producer.invoke(work, payloads[i])).request_id

        for start in range(0, len(payloads), 100):
            if pace is not None:
                await pace()
            async with anyio.create_task_group() as tg:
                for i in range(start, min(start + 100, len(payloads))):
                    tg.start_soon(one, i)
        assert producer.stats().enqueued == len(payloads)
    return ids


def check_attempts(
    kinds: dict[str, str],
    attempts: dict[str, list[tuple[int, float, int]]],
    interrupted: set[str],
    victim: int,
) -> None:
    """Each event's attempts, given that one worker (``victim``) was killed.

    The kill takes two kinds of attempt from an event, a first attempt or a retry alike:
    one the victim had started (in its log, among ``interrupted``, cut short) and one it
    had received and not started (at most one receive batch). Attempts come from SQS's
    receive count, so the latter never shows in any log: a gap in the event's attempt
    numbers. An event that succeeded did so on its last attempt; one that failed used all
    three, the last perhaps taken by the kill (then dead-lettered as AttemptInterrupted
    without a run).
    """
    gaps = 0
    for rid, kind in kinds.items():
        runs = sorted(attempts.get(rid, []))
        numbers = [a for a, _, _ in runs]
        assert len(numbers) == len(set(numbers)) and set(numbers) <= {1, 2, 3}, (rid, runs)
        assert numbers or kind == "fail", (rid, runs)  # a success ran somewhere
        last = 3 if kind == "fail" else numbers[-1]
        gaps += last - len(numbers)
        if kind != "fail" and rid in interrupted:
            assert runs[-1][2] != victim, (rid, runs)  # cut short there, finished elsewhere
    assert gaps <= 10, f"{gaps} attempts lost unstarted: more than one receive batch"


def test_the_attempt_check_allows_any_attempt_the_kill_took() -> None:
    victim, other = 1, 2
    kinds = {"ok-first": "ok", "retry-lost": "fail_once", "last-lost": "fail", "cut": "ok"}
    attempts = {
        "ok-first": [(2, 1.0, other)],  # its first attempt lost unstarted
        "retry-lost": [(1, 1.0, other), (3, 3.0, other)],  # its retry lost unstarted
        "last-lost": [(1, 1.0, other), (2, 2.0, other)],  # then dead-lettered unrun
        "cut": [(1, 1.0, victim), (2, 6.0, other)],  # started by the victim, cut short
    }
    check_attempts(kinds, attempts, {"cut"}, victim)
    for wrong in (
        {**attempts, "ok-first": [(2, 1.0, other), (2, 2.0, other)]},  # one attempt twice
        {**attempts, "cut": [(1, 1.0, victim)]},  # its success cannot be the cut attempt
        {**attempts, **{f"e{i}": [(2, 1.0, other)] for i in range(10)}},  # 11 lost
    ):
        with pytest.raises(AssertionError):
            check_attempts({rid: kinds.get(rid, "ok") for rid in wrong}, wrong, {"cut"}, victim)


async def test_two_workers_one_killed_every_event_has_one_outcome(
    aws: dict[str, Any], unique_name: str, workers: Callable[[dict[str, str]], Workers]
) -> None:
    endpoint = aws["endpoint"]
    sqs = aws["sqs"]
    urls = await make_queues(aws, unique_name, visibility=5)
    table = f"{unique_name}-idem"
    await DynamoDBStore.create_table(table, endpoint_url=endpoint)
    # enough for the victim to freeze (FREEZE_AFTER attempts, then one per worker slot)
    # well before the end, and for its events to finish elsewhere after the kill
    n, freeze_after = 150, 20
    kinds = ["fail" if i % 10 == 0 else "fail_once" if i % 10 == 1 else "ok" for i in range(n)]
    payloads = [{"n": i, "kind": kind} for i, kind in enumerate(kinds)]
    group = workers(
        {
            "EF_ENDPOINT": endpoint,
            "EF_QUEUE_URL": urls["queue"],
            "EF_DLQ_URL": urls["dlq"],
            "EF_TABLE": table,
        }
    )
    # one survivor suffices: it shares the queue with the victim, then takes over its events
    victim = group.start(EF_FREEZE_AFTER=str(freeze_after))
    group.start()

    async def shallow() -> None:
        await wait_for(lambda: depth_below(sqs, urls["queue"], 100), 120, "workers stalled")

    async def kill_midway() -> None:
        # the victim blocks all its attempts (before their effects), then dies
        frozen = group.log_dir / f"frozen-{victim.pid}"
        await wait_for(frozen.exists, 120, "the victim worker never reached its freeze point")
        victim.send_signal(signal.SIGKILL)
        await anyio.to_thread.run_sync(victim.wait)

    async with anyio.create_task_group() as tg:
        tg.start_soon(kill_midway)
        ids = await invoke_all(endpoint, urls["queue"], payloads, pace=shallow)
    by_kind = dict(zip(ids, kinds, strict=True))

    await wait_for(lambda: stays_empty(sqs, urls["queue"]), 120, "the event queue never emptied")
    codes = group.stop_all()
    assert [code for pid, code in codes.items() if pid != victim.pid] == [0]

    dead = await read_all(sqs, urls["dlq"])
    dead_ids = {m["MessageAttributes"]["RequestID"]["StringValue"] for m in dead}
    success_ids = {r["requestContext"]["requestId"] for r in group.successes()}
    # every event reached one terminal outcome: a success record or a dead letter, not both
    assert dead_ids | success_ids == set(ids)
    assert not dead_ids & success_ids
    assert dead_ids == {rid for rid, kind in by_kind.items() if kind == "fail"}

    attempts = group.attempts()
    # the victim's attempts after its freeze point were cut short by the kill
    victim_log = (group.log_dir / f"attempts-{victim.pid}.log").read_text().splitlines()
    interrupted = {line.split()[0] for line in victim_log[freeze_after:]}
    assert interrupted, "the kill interrupted no attempt"
    check_attempts(by_kind, attempts, interrupted, victim.pid)
    effects = group.effects()
    assert {rid for rid, count in effects.items() if count != 1} == set(), "effect not once"
    assert set(effects) == success_ids


async def test_a_retry_scheduled_by_a_killed_worker_runs_elsewhere_after_its_delay(
    aws: dict[str, Any], unique_name: str, workers: Callable[[dict[str, str]], Workers]
) -> None:
    endpoint = aws["endpoint"]
    sqs = aws["sqs"]
    # a visibility timeout far longer than the retry delay tells the two paths apart
    urls = await make_queues(aws, unique_name, visibility=60)
    group = workers(
        {
            "EF_ENDPOINT": endpoint,
            "EF_QUEUE_URL": urls["queue"],
            "EF_DLQ_URL": urls["dlq"],
            "EF_RETRY_DELAY": "2",
        }
    )
    first = group.start()
    [request_id] = await invoke_all(endpoint, urls["queue"], [{"n": 7, "kind": "fail_once"}])
    # the first attempt failed and its retry was handed to SQS: then the worker dies
    await wait_for(lambda: group.logged(0, '"deferred": 1'), 60, "the retry was never deferred")
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = group.start()
    # the retry's run, not the queue's counts: moto may read empty while a retry waits
    await wait_for(lambda: len(group.attempts()[request_id]) >= 2, 60, "the retry never ran")
    await wait_for(group.successes, 60, "the retry never succeeded")
    await wait_for(lambda: queue_empty(sqs, urls["queue"]), 60, "the retry was never deleted")
    assert group.stop_all()[second.pid] == 0

    tries = sorted(group.attempts()[request_id])
    assert [(attempt, pid) for attempt, _, pid in tries] == [(1, first.pid), (2, second.pid)]
    gap = tries[1][1] - tries[0][1]
    assert 2.0 <= gap < 60, f"the retry ran {gap:.1f} s after the failure"
    [record] = group.successes()
    context = record["requestContext"]
    assert context["requestId"] == request_id
    assert context["approximateInvokeCount"] == 2

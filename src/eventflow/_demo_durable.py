"""``eventflow demo --durable``: the demo's uploads on an SQLiteQueue file, a SIGKILL
midway, and a restart that finishes every event the killed process had accepted.

A child process runs the app on the file and invokes the uploads, printing each request
ID once its 202 came back (by then the event's row is committed and synced). The demo
kills the child with SIGKILL once about half are accepted, shows what the file holds,
then opens the same file in this process and drains it. Each success is a line the
handler writes (a write that survives the SIGKILL), each dead letter a line of the
dead-letter file; the summary checks that every accepted request ID has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import unquote_plus

import anyio
import anyio.to_thread
from anyio.streams.text import TextReceiveStream

from ._app import App
from ._context import Context
from ._demo import s3_put_event
from ._handler import Handler
from ._progress import ProgressBar
from .sinks import JsonlSink

__all__ = (
    "DurableReport",
    "DurableSetup",
    "durable_all_accounted_for",
    "format_durable_report",
    "run_durable_demo",
)


@dataclass(frozen=True)
class DurableSetup:
    """What both processes of the durable demo run (passed to the child as JSON)."""

    queue_file: str
    dead_letters: str
    effects: str
    events: int = 1000
    concurrency: int = 200
    transient_failure_rate: float = 0.10
    permanent_failure_rate: float = 0.03
    retry_delays: tuple[float, ...] = (1.0, 2.0)
    latency: tuple[float, float] = (0.01, 0.08)
    seed: int | None = 7
    lease: float = 2.0
    callers: int = 10
    synchronous: Literal["FULL", "NORMAL"] = "FULL"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DurableSetup:
        raw = json.loads(text)
        raw["retry_delays"] = tuple(raw["retry_delays"])
        raw["latency"] = tuple(raw["latency"])
        return cls(**raw)


@dataclass
class DurableReport:
    """What the durable demo saw, before and after the kill."""

    setup: DurableSetup
    pid: int
    killed: bool
    accepted: dict[str, int]  # request ID -> upload number, answered 202 before the kill
    done_before: set[str]  # request IDs with an outcome written before the kill
    at_restart: dict[str, int]  # the file's rows at the restart, by state
    rows_left: int = 0  # rows in the file after the restart drained it
    outcomes: dict[str, list[str]] = field(default_factory=dict)  # request ID -> outcomes
    restart_seconds: float = 0.0

    @property
    def lost(self) -> list[str]:
        """Accepted request IDs that never reached an outcome."""
        return [rid for rid in self.accepted if not self.outcomes.get(rid)]

    @property
    def repeated(self) -> list[str]:
        """Request IDs that reached an outcome more than once (ran in both processes)."""
        return [rid for rid, seen in self.outcomes.items() if len(seen) > 1]

    @property
    def unanswered(self) -> list[str]:
        """Events stored and run whose 202 the killed process never printed."""
        return [rid for rid in self.outcomes if rid not in self.accepted]


def _failing(setup: DurableSetup) -> tuple[set[int], set[int]]:
    """The uploads that always fail and those that fail once: the same in both processes."""
    rng = random.Random(setup.seed)
    permanent = set(
        rng.sample(range(setup.events), int(setup.events * setup.permanent_failure_rate))
    )
    rest = [i for i in range(setup.events) if i not in permanent]
    transient = set(rng.sample(rest, int(setup.events * setup.transient_failure_rate)))
    return permanent, transient


def _append(path: str, line: str) -> None:
    # one write of one line: the kernel keeps it when the process is killed right after
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)


def build_app(setup: DurableSetup) -> App:
    """The demo's app on the queue file (the same in the child and after the restart)."""
    from .queues import SQLiteQueue

    permanent, transient = _failing(setup)
    rng = random.Random()

    async def process_upload(event: dict[str, Any], context: Context) -> dict[str, Any]:
        record = event["Records"][0]
        key = unquote_plus(record["s3"]["object"]["key"])  # S3 sends keys form-encoded
        index = int(key.rsplit(" ", 1)[-1].split(".")[0])
        await asyncio.sleep(rng.uniform(*setup.latency))  # the image service call
        if index in permanent:
            raise ValueError(f"cannot decode {key}: corrupt image data")
        if index in transient and context.attempt == 1:
            raise ConnectionError("thumbnail service timed out")
        line = json.dumps({"rid": context.aws_request_id, "n": index, "pid": os.getpid()})
        await anyio.to_thread.run_sync(_append, setup.effects, line + "\n")
        return {"key": key, "thumbnail": True}

    handler = Handler(
        process_upload,
        retry_delays=setup.retry_delays,
        dead_letter=JsonlSink(setup.dead_letters),
    )
    queue = SQLiteQueue(
        setup.queue_file, synchronous=setup.synchronous, lease=setup.lease, poll_interval=0.05
    )
    return App(name="demo", concurrency=setup.concurrency, handlers=[handler], queue=queue)


async def _child(setup: DurableSetup) -> None:
    """Invoke the uploads, printing ``request-id number`` once each 202 came back; then
    run the events until killed (or until the demo's end of the stdin pipe closes)."""
    app = build_app(setup)
    rng = random.Random(setup.seed)
    numbers = iter(range(setup.events))
    async with app:

        async def caller() -> None:
            for n in numbers:
                payload = s3_put_event(
                    "demo-uploads",
                    f"uploads/photo {n:04d}.jpg",
                    size=rng.randint(10_000, 5_000_000),
                )
                accepted = await app.invoke("process_upload", payload)
                os.write(1, f"{accepted.request_id} {n}\n".encode())

        async with anyio.create_task_group() as tg:
            for _ in range(setup.callers):
                tg.start_soon(caller)
        await app.drain()
        # the kill is the demo's: wait for it, whatever the machine's speed; if the demo
        # itself is gone, its end of the pipe closes and this ends
        await anyio.to_thread.run_sync(sys.stdin.buffer.read)


def _outcomes(setup: DurableSetup) -> dict[str, list[str]]:
    """Request ID -> its outcomes so far: ``succeeded`` lines and ``dead-lettered`` ones."""
    seen: dict[str, list[str]] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in Path(setup.effects).read_text(encoding="utf-8").splitlines():
            seen.setdefault(json.loads(line)["rid"], []).append("succeeded")
    if Path(setup.dead_letters).exists():
        for message in JsonlSink(setup.dead_letters).read():
            seen.setdefault(message.attributes["RequestID"], []).append("dead-lettered")
    return seen


def _file_states(path: str, now: float) -> dict[str, int]:
    """The queue file's rows by state, read as any SQLite client would."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        total, held, retrying = conn.execute(
            "SELECT count(*), coalesce(sum(owner IS NOT NULL AND due > ?1), 0), "
            "coalesce(sum(owner IS NULL AND due > ?1), 0) FROM eventflow_queue",
            (now,),
        ).fetchone()
    return {"rows": total, "held": held, "retrying": retrying, "ready": total - held - retrying}


def _remove(setup: DurableSetup) -> None:
    for name in (setup.queue_file, setup.queue_file + "-wal", setup.queue_file + "-shm"):
        Path(name).unlink(missing_ok=True)
    Path(setup.effects).unlink(missing_ok=True)
    Path(setup.dead_letters).unlink(missing_ok=True)


async def run_durable_demo(setup: DurableSetup, *, stream: TextIO | None = None) -> DurableReport:
    """Run the child, kill it midway, drain the file here; return what was seen."""
    out = stream if stream is not None else sys.stderr
    await anyio.to_thread.run_sync(_remove, setup)
    kill_at = max(1, setup.events // 2)
    accepted: dict[str, int] = {}
    killed = False
    command = [sys.executable, "-m", "eventflow._demo_durable", setup.to_json()]
    out.write(f"phase 1: a child process invokes {setup.events} uploads on {setup.queue_file}\n")
    async with await anyio.open_process(command, stdin=-1, stdout=-1, stderr=None) as child:
        assert child.stdout is not None
        bar = ProgressBar(
            kill_at, lambda: len(accepted), lambda: "accepted (202: the row is on disk)", stream=out
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(bar.run)
            buffer = ""
            async for text in TextReceiveStream(child.stdout):
                buffer += text
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    rid, n = line.split()
                    accepted[rid] = int(n)
                if not killed and len(accepted) >= kill_at and child.returncode is None:
                    child.kill()  # SIGKILL: no shutdown, no spill, no goodbye
                    killed = True
            tg.cancel_scope.cancel()
        code = await child.wait()
    if sys.platform != "win32":
        killed = code == -signal.SIGKILL  # else it had finished every invoke first
    pid = child.pid
    done_before = set(await anyio.to_thread.run_sync(_outcomes, setup))
    at_restart = await anyio.to_thread.run_sync(_file_states, setup.queue_file, time.time())
    out.write(
        f"phase 2: SIGKILL after {len(accepted)} accepted; this process opens the same file "
        f"and drains it ({at_restart['held']} rows wait for the dead process's "
        f"{setup.lease:g} s leases to lapse)\n"
    )
    app = build_app(setup)
    t0 = time.perf_counter()
    async with app:

        def describe() -> str:
            st = app.stats()
            return (
                f"ok {st.succeeded}  retries {st.requeued}  running {st.in_flight}  "
                f"dead-lettered {st.dead_lettered}"
            )

        bar = ProgressBar(at_restart["rows"], lambda: app.stats().finished, describe, stream=out)
        async with anyio.create_task_group() as tg:
            tg.start_soon(bar.run)
            await app.drain()
            tg.cancel_scope.cancel()
    outcomes = await anyio.to_thread.run_sync(_outcomes, setup)
    left = await anyio.to_thread.run_sync(_file_states, setup.queue_file, time.time())
    return DurableReport(
        setup=setup,
        pid=pid,
        killed=killed,
        accepted=accepted,
        done_before=done_before & set(accepted),
        at_restart=at_restart,
        outcomes=outcomes,
        restart_seconds=time.perf_counter() - t0,
        rows_left=left["rows"],
    )


def format_durable_report(r: DurableReport) -> str:
    """The summary the CLI prints."""
    s = r.setup
    finals = Counter(r.outcomes[rid][-1] for rid in r.accepted if r.outcomes.get(rid))
    f = r.at_restart
    bound = s.concurrency + 32  # the queue's default batch_size
    verdict = "nothing lost" if not r.lost else "LOST EVENTS"
    kill = (
        f"killed with SIGKILL (pid {r.pid}) after {len(r.accepted)} of {s.events} invokes"
        if r.killed
        else f"finished all {s.events} invokes before the kill (pid {r.pid})"
    )
    lines = [
        "",
        f"eventflow demo --durable: S3 uploads -> process_upload on SQLiteQueue({s.queue_file!r})",
        f"  child process   {kill}",
        f"  accepted        {len(r.accepted):>7}   events answered 202 before the kill "
        f"(each one's row committed{' and synced' if s.synchronous == 'FULL' else ''} first)",
        f"  done before     {len(r.done_before):>7}   of them had reached their outcome in "
        "the killed process",
        f"  in the file     {f['rows']:>7}   rows at the restart: {f['held']} held by the killed "
        f"process (leases of {s.lease:g} s), {f['retrying']} retries waiting, {f['ready']} ready",
        f"  restart         {r.restart_seconds:>7.2f} s to drain the file in a new process",
        f"  outcomes        {len(r.accepted) - len(r.lost):>7}   of {len(r.accepted)} accepted "
        f"events: {finals['succeeded']} succeeded, {finals['dead-lettered']} dead-lettered "
        f"to {s.dead_letters}",
        f"  repeated        {len(r.repeated):>7}   events ran in both processes: the killed "
        f"process held them (at most concurrency + batch = {bound})",
        f"  also stored     {len(r.unanswered):>7}   events committed whose 202 the killed "
        "process never printed; they ran too",
        f"  lost            {len(r.lost):>7}   ({verdict}; {r.rows_left} rows left in the file)",
    ]
    return "\n".join(lines)


def durable_all_accounted_for(r: DurableReport) -> bool:
    """Every accepted event reached an outcome, and the file is empty."""
    return not r.lost and r.rows_left == 0


def _main() -> None:
    setup = DurableSetup.from_json(sys.argv[1])
    from ._cli_common import configure_logging

    configure_logging("critical", "console", stream=sys.stderr)
    anyio.run(_child, setup)


if __name__ == "__main__":
    _main()

"""``eventflow demo``: the seed lecture's scenario, end to end, on embedded defaults.

S3 notifies a function of 1,000 uploads at once; the function processes them in
parallel; some fail once and succeed on the retry, some keep failing and end up in
the dead-letter queue (here a local JSONL file) after three attempts under one
request ID. Retry delays are shortened from Lambda's 60 s / 120 s so it takes seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote_plus, unquote_plus

import anyio

from ._app import App
from ._context import Context
from ._handler import Handler
from ._progress import ProgressBar
from ._results import Stats
from .sinks import JsonlSink, Message

__all__ = ("DemoReport", "all_accounted_for", "check_writable", "run_demo", "s3_put_event")


def s3_put_event(bucket: str, key: str, size: int, *, region: str = "us-east-1") -> dict[str, Any]:
    """An S3 ``ObjectCreated:Put`` notification for one object, as S3 sends it (spec §6.1)."""
    t = time.time()
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": now,
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLEDEMO"},
                "requestParameters": {"sourceIPAddress": "203.0.113.10"},
                "responseElements": {
                    "x-amz-request-id": f"{random.getrandbits(64):016X}",
                    "x-amz-id-2": "eventflow-demo",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "demo-on-upload",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": f"{random.getrandbits(128):032x}",
                        # S3's sequencers are 18 hex digits (compared after zero-padding)
                        "sequencer": f"{random.getrandbits(72):018X}",
                    },
                },
            }
        ]
    }


@dataclass
class DemoReport:
    """What the demo measured."""

    events: int
    stats: Stats
    makespan: float
    latencies: list[float]
    dead_letter_path: Path
    dead_letters: int
    first_dead_letter: Message | None = None
    first_try: int = 0
    story: list[str] = field(default_factory=list)


class _RecordingSink:
    """Wraps a sink and notes when each event reached it (for latency figures)."""

    def __init__(self, inner: Any, done_at: dict[str, float]) -> None:
        self.inner = inner
        self.done_at = done_at

    async def send(self, message: Message) -> None:
        if self.inner is not None:
            await self.inner.send(message)
        rid = message.attributes.get("RequestID") or message.json()["requestContext"]["requestId"]
        self.done_at[rid] = time.perf_counter()


async def run_demo(
    *,
    events: int = 1000,
    concurrency: int = 200,
    transient_failure_rate: float = 0.10,
    permanent_failure_rate: float = 0.03,
    retry_delays: tuple[float, ...] = (1.0, 2.0),
    latency: tuple[float, float] = (0.01, 0.08),
    dead_letters: Path = Path("eventflow-demo-dead-letters.jsonl"),
    seed: int | None = 7,
    stream: TextIO | None = None,
) -> DemoReport:
    """Run the scenario and return its figures (the CLI prints them)."""
    rng = random.Random(seed)
    out = stream if stream is not None else sys.stderr
    await anyio.Path(dead_letters).unlink(missing_ok=True)
    done_at: dict[str, float] = {}
    accepted_at: dict[str, float] = {}
    attempts_log: dict[str, list[str]] = {}
    succeeded_on: dict[int, int] = {}
    t_start = time.perf_counter()
    keys = [f"uploads/photo {i:04d}.jpg" for i in range(events)]
    permanent = set(rng.sample(range(events), int(events * permanent_failure_rate)))
    rest = [i for i in range(events) if i not in permanent]
    transient = set(rng.sample(rest, int(events * transient_failure_rate)))

    async def process_upload(event: dict[str, Any], context: Context) -> dict[str, Any]:
        record = event["Records"][0]
        key = unquote_plus(record["s3"]["object"]["key"])  # S3 sends keys form-encoded
        index = int(key.rsplit(" ", 1)[-1].split(".")[0])
        t = time.perf_counter() - t_start
        attempts_log.setdefault(context.aws_request_id, []).append(
            f"  t={t:6.2f}s  attempt {context.attempt}  request_id={context.aws_request_id}"
        )
        await asyncio.sleep(rng.uniform(*latency))  # the image service call
        if index in permanent:
            raise ValueError(f"cannot decode {key}: corrupt image data")
        if index in transient and context.attempt == 1:
            raise ConnectionError("thumbnail service timed out")
        succeeded_on[context.attempt] = succeeded_on.get(context.attempt, 0) + 1
        return {"bucket": record["s3"]["bucket"]["name"], "key": key, "thumbnail": True}

    dlq = _RecordingSink(JsonlSink(dead_letters), done_at)
    done_sink = _RecordingSink(None, done_at)
    handler = Handler(
        process_upload,
        retry_delays=retry_delays,
        dead_letter=dlq,
        on_success=done_sink,
    )
    app = App(name="demo", concurrency=concurrency, handlers=[handler], log_success=True)
    finished = 0

    def describe() -> str:
        s = app.stats()
        return (
            f"ok {s.succeeded}  retrying {s.scheduled}  running {s.in_flight}  "
            f"queued {s.queued}  dead-lettered {s.dead_lettered}"
        )

    def done() -> int:
        nonlocal finished
        finished = app.stats().finished
        return finished

    bar = ProgressBar(events, done, describe, stream=out)
    async with app:
        async with anyio.create_task_group() as tg:
            tg.start_soon(bar.run)
            t0 = time.perf_counter()
            for key in keys:
                payload = s3_put_event("demo-uploads", key, size=rng.randint(10_000, 5_000_000))
                accepted = await app.invoke(handler, payload)
                accepted_at[accepted.request_id] = time.perf_counter()
            await app.drain()
            makespan = time.perf_counter() - t0
            tg.cancel_scope.cancel()
        stats = app.stats()
    latencies = sorted(done_at[r] - accepted_at[r] for r in accepted_at if r in done_at)
    written = await anyio.to_thread.run_sync(JsonlSink(dead_letters).read)
    story: list[str] = []
    if written:
        story = [*attempts_log[written[0].attributes["RequestID"]]]
    return DemoReport(
        events=events,
        stats=stats,
        makespan=makespan,
        latencies=latencies,
        dead_letter_path=dead_letters,
        dead_letters=len(written),
        first_dead_letter=written[0] if written else None,
        first_try=succeeded_on.get(1, 0),
        story=story,
    )


def check_writable(path: Path) -> str | None:
    """Why dead letters could not be written to ``path``, or None when they can."""
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        return f"cannot write dead letters to {str(path)!r}: {exc.strerror or exc}"
    return None


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def all_accounted_for(r: DemoReport) -> bool:
    """Every event reached its outcome, and every dead letter was written."""
    s = r.stats
    return s.finished == s.received and s.dead_letter_errors == 0 and s.destination_errors == 0


def format_report(r: DemoReport) -> str:
    s = r.stats
    after_retry = s.succeeded - r.first_try
    lines = [
        "",
        "eventflow demo: S3 uploads -> process_upload (async invocation)",
        f"  received        {s.received:>7}   events (each answered 202 Accepted at once)",
        f"  succeeded       {s.succeeded:>7}   events "
        f"({r.first_try} on the first attempt, {after_retry} after a retry)",
        f"  failed          {s.failed:>7}   events (retries exhausted: {s.dead_lettered} "
        f"dead-lettered to {r.dead_letter_path}, {s.dead_letter_errors} dead letters not "
        "written)",
        f"  undelivered     {s.undelivered:>7}   events (not finished when the app stopped)",
        f"  attempts        {s.attempts:>7}   ({s.errors} failed attempts, {s.retries} retries)",
        f"  makespan        {r.makespan:>7.2f} s for {r.events} events",
        "  latency, accepted -> final outcome: "
        f"p50 {_pct(r.latencies, 0.5) * 1000:.0f} ms, "
        f"p99 {_pct(r.latencies, 0.99) * 1000:.0f} ms, "
        f"max {max(r.latencies, default=0.0) * 1000:.0f} ms",
    ]
    if r.latencies:
        lines.append(f"  mean latency    {statistics.fmean(r.latencies) * 1000:>7.0f} ms")
    verdict = (
        "every event reached exactly one outcome"
        if all_accounted_for(r)
        else "NOT ALL ACCOUNTED FOR"
    )
    lines.append(
        f"  accounted for   {s.finished} of {s.received} = {s.succeeded} succeeded + "
        f"{s.failed} failed + {s.undelivered} undelivered ({verdict})"
    )
    if s.dead_letter_errors or r.dead_letters != s.dead_lettered:
        lines.append(
            f"  ! {s.dead_letter_errors} dead letters could not be written and "
            f"{r.dead_letters} lines are in {r.dead_letter_path}: those events' payloads are "
            "only in the log (run with --log-level error to see them)."
        )
    if r.story and r.first_dead_letter is not None:
        lines += [
            "",
            "One dead-lettered event: every attempt ran under the same request ID",
            *r.story,
            "  then it went to the dead-letter file with Lambda's attributes:",
            "  " + json.dumps(dict(r.first_dead_letter.attributes)),
        ]
    return "\n".join(lines)

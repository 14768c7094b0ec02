"""Scale-out: one SQSEventQueue served by 1, 2 and 4 worker processes, on a moto server.

Every event's handler awaits 100 ms of I/O (``anyio.sleep``) and each worker process runs
an App with ``concurrency=4``, so one process can do at most 40 events/s and the moto
server is not the bottleneck. For each process count N, in one run against one moto
server (a child process) and a fresh queue (VisibilityTimeout 30 s) per configuration:

1. N worker processes start (this script with ``--worker``); each imports eventflow,
   builds its App and says "ready" on stdout, then waits for "go" on stdin, so that
   interpreter start-up is not measured and the workers start consuming together;
2. meanwhile a producer App (``SQSEventQueue(..., consume=False)``) in this process
   enqueues all N x --events-per-process events up front (not a continuous feed), every
   invoke concurrent, so its sends batch ten to a SendMessageBatch;
3. "go": the workers enter their Apps and drain the queue; this process polls the
   queue's counts (its own client: those calls are not counted) until no message is
   left, then sends SIGTERM; each worker stops gracefully (after the long poll in
   progress, up to --wait-time s) and prints its counters as JSON: app.stats(),
   SQSEventQueue.statistics(), when each event's handler finished and the queue's API
   call count then, and the SQS calls it made by operation, with their mean latency
   (botocore's before-call / after-call hooks on its session).

events/s is measured over the steady-state window: from the completion of the 10th
percentile event to that of the 90th (every worker's completions merged; one clock on
one machine), which leaves out the first receive and the tail, where fewer than N
processes still have work. Calls per event over the same window = the workers' SQS calls
in the window / the events completed in it, plus the producer's calls / events (every
send counts); "all calls/event" is every call of the run, start-up checks and the empty
long polls at the end included, / events. Speed-up is events/s over that of 1 process in
the same run. Also printed: moto's and the whole machine's CPU use in the window (Linux).
Checked: every event ran exactly once across the workers (sum of succeeded == events and
every payload id seen once) and the queue is empty at the end; a warning, with where and
when each duplicate ran, is printed otherwise. Exits 0 either way.

moto 5.2 is patched in its child process (``--stock-moto`` leaves it alone): its clock,
whose cost per call grows with the queue's depth and made moto the bottleneck (4
processes ran slower than 1), and the atomicity of its receive and delete, whose races
ran events twice and lost deletes; see _moto_server.py.

    python benchmarks/scale_out.py [--events-per-process 150] [--processes 1,2,4]
        [--handler-ms 100] [--concurrency 4] [--wait-time 5] [--stock-moto]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import structlog
from aiobotocore.session import AioSession
from anyio.streams.buffered import BufferedByteReceiveStream

import eventflow
from _moto_server import start_moto
from eventflow.aws import SQSEventQueue

REGION = "us-east-1"
VISIBILITY_TIMEOUT = 30
WINDOW = (0.1, 0.9)  # the steady-state window, as fractions of the events completed
TARGET_2, TARGET_4, TARGET_CALLS = 1.7, 3.0, 0.4

_handler_seconds = 0.1
_queue: SQSEventQueue | None = None
_done: list[tuple[float, int, int]] = []  # (wall time, payload id, queue api_calls then)


@eventflow.handler
async def work(event: Any, context: eventflow.Context) -> None:
    """The benchmark's handler: 100 ms of I/O (by default)."""
    await anyio.sleep(_handler_seconds)
    calls = _queue.statistics().api_calls if _queue is not None else 0
    _done.append((time.time(), int(event["i"]), calls))


def quiet_logs() -> None:
    # warnings and errors only, to stderr: a worker's stdout carries its report
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


# -- the worker process -------------------------------------------------------------------


async def worker(url: str, endpoint: str, concurrency: int, wait_time: int) -> None:
    """One worker process: wait for "go", run the App until SIGTERM, print a JSON report."""
    global _queue
    operations: Counter[str] = Counter()
    seconds: Counter[str] = Counter()  # time in each operation's calls, empty receives not
    received_per_call: list[int] = []

    def start(context: dict[str, Any], **_: Any) -> None:
        context["benchmark_t0"] = time.perf_counter()

    def count(model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        operations[model.name] += 1
        if model.name == "ReceiveMessage":
            received_per_call.append(len(parsed.get("Messages", [])))
            if not received_per_call[-1]:
                return  # an empty long poll's time is its wait
        seconds[model.name] += time.perf_counter() - context.get("benchmark_t0", math.nan)

    session = AioSession()
    session.register("before-call.sqs", start)
    session.register("after-call.sqs", count)
    queue = _queue = SQSEventQueue(
        url,
        endpoint_url=endpoint,
        region_name=REGION,
        session=session,
        wait_time_seconds=wait_time,
    )
    app = eventflow.App(name=f"worker-{os.getpid()}", queue=queue, concurrency=concurrency)
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        go = time.time()
        async with app:
            async for _ in signals:
                break
            stop = time.time()
    report = {
        "pid": os.getpid(),
        "go": go,
        "stop": stop,
        "exited": time.time(),
        "stats": dataclasses.asdict(app.stats()),
        "queue": dataclasses.asdict(queue.statistics()),
        "done": _done,
        "operations": dict(operations),
        "seconds": dict(seconds),
        "received_per_call": received_per_call,
    }
    print(json.dumps(report), flush=True)


# -- the parent -----------------------------------------------------------------------------


@dataclass
class Result:
    processes: int
    events: int
    wall: float  # go -> last completion
    window: float  # the steady-state window's duration
    window_events: int
    rate: float  # events/s in the window
    calls_per_event: float  # steady state: window calls / window events + producer's
    all_calls_per_event: float
    producer_calls: int
    enqueue_seconds: float
    moto_busy: float | None  # moto's CPU in the window, in cores
    machine_busy: float | None  # the whole machine's CPU in the window, in cores
    load: float  # 1-minute load average when the configuration started
    reports: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def process_cpu(pid: int) -> float | None:
    """CPU seconds used by process `pid` so far (Linux; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float | None:
    """CPU seconds the whole machine spent busy so far, all cores (Linux; None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            jiffies = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")


Sample = tuple[float, float | None, float | None]  # (wall time, moto CPU, machine CPU)


def busy_between(samples: list[Sample], t0: float, t1: float, which: int) -> float | None:
    """CPU cores used between the first sample at or after t0 and the last at or before t1."""
    inside = [s for s in samples if t0 <= s[0] <= t1 and s[which] is not None]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < 0.5:
        return None
    first, last = inside[0], inside[-1]
    return (last[which] - first[which]) / (last[0] - first[0])  # type: ignore[operator]


async def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    result = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return {n: int(result.get("Attributes", {}).get(n, "0")) for n in names}


async def produce(endpoint: str, url: str, events: int) -> tuple[int, float]:
    """Enqueue `events` events, all invokes concurrent; (producer's API calls, seconds)."""
    queue = SQSEventQueue(url, endpoint_url=endpoint, region_name=REGION, consume=False)
    async with eventflow.App(name="producer", queue=queue, concurrency=1) as app:
        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(events):
                tg.start_soon(app.invoke, work, {"i": i})
        elapsed = time.perf_counter() - t0
        stats = queue.statistics()
    if stats.sent != events:
        raise RuntimeError(f"the producer stored {stats.sent} of {events} events: {stats}")
    return stats.api_calls, elapsed


async def start_worker(
    endpoint: str, url: str, args: argparse.Namespace
) -> tuple[anyio.abc.Process, BufferedByteReceiveStream]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        url,
        "--endpoint",
        endpoint,
        "--concurrency",
        str(args.concurrency),
        "--handler-ms",
        str(args.handler_ms),
        "--wait-time",
        str(args.wait_time),
    ]
    proc = await anyio.open_process(command, stderr=None)  # its warnings show on our stderr
    assert proc.stdout is not None
    return proc, BufferedByteReceiveStream(proc.stdout)


async def read_line(stream: BufferedByteReceiveStream) -> bytes:
    return await stream.receive_until(b"\n", 64 * 1024 * 1024)


def calls_at(done: list[list[float]], when: float) -> int:
    """A worker's API-call count at `when`: the count at its last completion by then."""
    calls = 0
    for t, _, c in done:
        if t > when:
            break
        calls = int(c)
    return calls


async def run_config(
    sqs: Any, endpoint: str, moto_pid: int, processes: int, args: argparse.Namespace
) -> Result:
    events = processes * args.events_per_process
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    name = f"scale-{processes}-{time.time_ns()}"
    url = (
        await sqs.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT)}
        )
    )["QueueUrl"]
    workers: list[tuple[anyio.abc.Process, BufferedByteReceiveStream]] = []
    samples: list[Sample] = []
    try:
        for _ in range(processes):
            workers.append(await start_worker(endpoint, url, args))
        producer_calls, enqueue_seconds = await produce(endpoint, url, events)
        for proc, out in workers:
            line = await read_line(out)
            if line.strip() != b"ready":
                raise RuntimeError(f"worker {proc.pid} said {line!r} instead of ready")
        for proc, _ in workers:
            assert proc.stdin is not None
            await proc.stdin.send(b"go\n")
        # poll the queue (calls not counted) until every message is deleted, sampling CPU
        deadline = time.monotonic() + 60 + 5 * events * args.handler_ms / 1000 / processes
        while True:
            samples.append((time.time(), process_cpu(moto_pid), machine_cpu()))
            if not any((await queue_counts(sqs, url)).values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the queue did not empty: {await queue_counts(sqs, url)}")
            for proc, _ in workers:
                if proc.returncode is not None:
                    raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode}")
            await anyio.sleep(0.25)
        reports = []
        for proc, _ in workers:
            proc.send_signal(signal.SIGTERM)
        for proc, out in workers:
            reports.append(json.loads(await read_line(out)))
            await proc.wait()
        leftover = await queue_counts(sqs, url)
    finally:
        for proc, _ in workers:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    result = summarise(processes, events, producer_calls, reports, leftover, samples)
    result.enqueue_seconds = enqueue_seconds
    result.load = load
    return result


def summarise(
    processes: int,
    events: int,
    producer_calls: int,
    reports: list[dict[str, Any]],
    leftover: dict[str, int],
    samples: list[Sample],
) -> Result:
    warnings = []
    done = sorted(t for r in reports for t, _, _ in r["done"])
    ids = Counter(i for r in reports for _, i, _ in r["done"])
    succeeded = sum(r["stats"]["succeeded"] for r in reports)
    if succeeded != events:
        warnings.append(f"sum of succeeded is {succeeded}, not {events}")
    twice = sorted(i for i, n in ids.items() if n > 1)
    missing = events - len(ids)
    if twice or missing:
        warnings.append(
            f"{len(twice)} events ran more than once (payload ids {twice[:10]}), "
            f"{missing} never ran"
        )
    go = min(r["go"] for r in reports)
    for i in twice[:3]:
        runs = sorted((t - go, r["pid"]) for r in reports for t, j, _ in r["done"] if j == i)
        where = ", ".join(f"worker {pid} at {t:.2f} s" for t, pid in runs)
        warnings.append(f"payload id {i} finished in {where} (after go)")
    if any(leftover.values()):
        warnings.append(f"the queue is not empty at the end: {leftover}")
    for r in reports:
        odd = {
            k: r["queue"][k]
            for k in ("duplicates", "malformed", "undeliverable", "released", "send_failed")
            if r["queue"][k]
        }
        odd.update(
            (k, r["stats"][k]) for k in ("failed", "undelivered", "retries") if r["stats"][k]
        )
        if odd:
            warnings.append(f"worker {r['pid']}: {odd}")
    lo = max(0, math.ceil(WINDOW[0] * events) - 1)
    hi = max(lo + 1, math.ceil(WINDOW[1] * events) - 1)
    t_lo, t_hi = done[lo], done[hi]
    window_events = hi - lo
    window_calls = sum(calls_at(r["done"], t_hi) - calls_at(r["done"], t_lo) for r in reports)
    all_calls = producer_calls + sum(r["queue"]["api_calls"] for r in reports)
    return Result(
        processes=processes,
        events=events,
        wall=done[-1] - go,
        window=t_hi - t_lo,
        window_events=window_events,
        rate=window_events / (t_hi - t_lo),
        calls_per_event=window_calls / window_events + producer_calls / events,
        all_calls_per_event=all_calls / events,
        producer_calls=producer_calls,
        enqueue_seconds=math.nan,
        moto_busy=busy_between(samples, t_lo, t_hi, 1),
        machine_busy=busy_between(samples, t_lo, t_hi, 2),
        load=math.nan,
        reports=reports,
        warnings=warnings,
    )


def cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def print_details(result: Result, concurrency: int, handler_ms: int) -> None:
    ideal = concurrency * 1000 / handler_ms
    print(
        f"  {result.events} events enqueued in {result.enqueue_seconds:.2f} s with "
        f"{result.producer_calls} producer calls; {result.rate / result.processes:.1f} "
        f"events/s per process ({result.rate / result.processes / ideal:.0%} of the "
        f"{ideal:.0f} a process can do); in the window moto used {cores(result.moto_busy)} "
        f"CPU cores, the machine {cores(result.machine_busy)} of {os.cpu_count()} "
        f"(load average {result.load:.1f} at the start)"
    )
    for r in result.reports:
        per_call = r["received_per_call"]
        full = [n for n in per_call if n]
        mean = sum(full) / len(full) if full else 0.0
        calls = dict(r["operations"])
        calls["ReceiveMessage"] = len(full)  # the mean latency of non-empty receives
        ops = ", ".join(
            f"{k} {v} ({1000 * r['seconds'].get(k, 0.0) / max(1, calls[k]):.0f} ms)"
            for k, v in sorted(r["operations"].items())
        )
        print(
            f"    worker {r['pid']}: succeeded {r['stats']['succeeded']}, received "
            f"{r['queue']['received']}, deleted {r['queue']['deleted']}, api_calls "
            f"{r['queue']['api_calls']}: {ops}; {mean:.1f} messages per non-empty receive, "
            f"{per_call.count(0)} empty; stopped {r['exited'] - r['stop']:.1f} s after SIGTERM"
        )
    for warning in result.warnings:
        print(f"  WARNING: {warning}", flush=True)


def print_table(results: list[Result]) -> None:
    base = next((r.rate for r in results if r.processes == 1), None)
    print()
    print("processes  events  wall s  window s  events/s  speed-up  calls/event  all calls/event")
    for r in results:
        speed = f"{r.rate / base:7.2f}x" if base else "      - "
        print(
            f"{r.processes:9d}  {r.events:6d}  {r.wall:6.2f}  {r.window:8.2f}  {r.rate:8.1f}  "
            f"{speed}  {r.calls_per_event:11.3f}  {r.all_calls_per_event:15.3f}"
        )
    print()
    by = {r.processes: r for r in results}
    if base:
        for n, target in ((2, TARGET_2), (4, TARGET_4)):
            if n in by:
                gain = by[n].rate / base
                mark = "✓" if gain >= target else "✗"
                print(f"{mark} {n} processes: {gain:.2f}x one process (target >= {target}x)")
    worst = max(r.calls_per_event for r in results)
    mark = "✓" if worst <= TARGET_CALLS else "✗"
    print(f"{mark} SQS API calls per event at steady state: at most {worst:.3f} (target <= 0.4)")
    if any(r.warnings for r in results):
        print("WARNING: correctness checks failed, see above")
    else:
        print("✓ every event succeeded exactly once across workers; every queue ended empty")


async def run(endpoint: str, moto_pid: int, args: argparse.Namespace) -> None:
    results = []
    session = AioSession()
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        for processes in args.processes:
            events = processes * args.events_per_process
            print(f"{processes} worker process(es), {events} events...", flush=True)
            result = await run_config(sqs, endpoint, moto_pid, processes, args)
            print_details(result, args.concurrency, args.handler_ms)
            results.append(result)
    print_table(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-process", type=int, default=150)
    parser.add_argument(
        "--processes",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1, 2, 4],
        help="process counts to run, comma-separated (1,2,4)",
    )
    parser.add_argument("--handler-ms", type=int, default=100, help="handler's sleep (100)")
    parser.add_argument("--concurrency", type=int, default=4, help="App concurrency (4)")
    parser.add_argument(
        "--wait-time", type=int, default=5, help="workers' wait_time_seconds (5, the default)"
    )
    parser.add_argument(
        "--stock-moto",
        action="store_true",
        help="run moto unpatched: slow with a deep queue, and not atomic (see above)",
    )
    parser.add_argument("--worker", metavar="QUEUE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global _handler_seconds
    _handler_seconds = args.handler_ms / 1000
    quiet_logs()
    if args.worker:  # a worker process; its parent set up the environment
        anyio.run(worker, args.worker, args.endpoint, args.concurrency, args.wait_time)
        return
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION
    )
    proc, endpoint = start_moto(not args.stock_moto)
    try:
        anyio.run(run, endpoint, proc.pid, args)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()

"""SQS pipeline: 5,000 messages through SQSSource -> no-op handler -> delete, on a moto server.

The baseline, measured in the same run against the same server, is the naive aiobotocore
loop: receive one message, handle it, delete it. Both consume the same 5,000 messages, fed
in batches by a feeder that keeps about 30 in the queue while the consumer runs (moto's
cost for each message it receives or sends grows with the number of messages in the
queue, in flight included; a shallow queue measures the consumer, not that). moto runs in
a child process, so the server and the consumer do not share one GIL. The two sides run
in alternating rounds (1,000 messages each, a fresh queue per round), so both see the
same background load. Prints events/s of both, the ratio, and SQS API calls per event
(the feeder's sends are not counted).

The moto server is patched in its process (its clock and its queue locking, see
_moto_server.py), as for scale_out.py: stock moto spends most of its CPU reading a slow
clock once per message of the queue per call, which makes its per-message cost dominate
both sides. ``--stock-moto`` measures it unpatched.

    python benchmarks/sqs_pipeline.py [--messages 5000] [--rounds 5] [--stock-moto]
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import anyio
from aiobotocore.session import AioSession

import eventflow
from _moto_server import REGION, sqs_arguments, sqs_benchmark
from _moto_server import rounds as each_round
from eventflow.aws import SQSSource


async def feed(sqs: Any, url: str, n: int, consumed: Callable[[], int], depth: int) -> None:
    """Send n messages in batches of 10, keeping about `depth` of them in the queue."""
    sent = 0
    while sent < n:
        if sent - consumed() >= depth:
            await asyncio.sleep(0.001)  # a benchmark's feeder may poll
            continue
        count = min(10, n - sent)
        entries = [{"Id": str(i), "MessageBody": json.dumps({"n": sent + i})} for i in range(count)]
        await sqs.send_message_batch(QueueUrl=url, Entries=entries)
        sent += count


async def naive(sqs: Any, url: str, n: int, depth: int) -> tuple[float, int]:
    """Seconds to consume n messages, and the SQS calls made."""
    calls = handled = 0

    async def consume() -> None:
        nonlocal calls, handled
        while handled < n:
            calls += 1
            resp = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
            for m in resp.get("Messages", []):
                json.loads(m["Body"])  # the no-op handler's work
                calls += 1
                await sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                handled += 1

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(feed, sqs, url, n, lambda: handled, depth)
        tg.start_soon(consume)
    return time.perf_counter() - t0, calls


async def through_source(
    sqs: Any, endpoint: str, url: str, n: int, depth: int, pollers: int, linger: float
) -> tuple[float, int]:
    """Seconds to consume n messages, and the SQS calls made."""
    eventflow.reset_default_registry()
    seen: set[int] = set()

    @eventflow.handler
    async def noop(event: Any, context: eventflow.Context) -> None:
        seen.add(event["n"])  # moto may deliver one message to two concurrent receives

    source = SQSSource(
        url,
        noop,
        endpoint_url=endpoint,
        region_name=REGION,
        wait_time_seconds=1,
        pollers=pollers,
        delete_linger=linger,
    )

    def finished() -> bool:
        # the figure is when every message was handled and deleted
        st = source.statistics()
        return len(seen) >= n and st.deleted + st.duplicates >= st.received

    async with eventflow.App(sources=[source]):
        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed, sqs, url, n, lambda: source.statistics().deleted, depth)
            while not finished():  # noqa: ASYNC110 - a benchmark may poll
                await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - t0
        calls = source.statistics().api_calls
    return elapsed, calls


async def run(endpoint: str, n: int, rounds: int, depth: int, pollers: int, linger: float) -> None:
    session = AioSession()
    # each side's seconds and SQS calls, summed over the rounds
    seconds = {"naive": 0.0, "source": 0.0}
    calls = {"naive": 0, "source": 0}
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        stamp = int(time.time())
        for r, count, sides in each_round(n, rounds, ("naive", "source")):
            rates = {}
            for side in sides:
                name = f"bench-{side}-{stamp}-{r}"
                url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
                if side == "naive":
                    elapsed, made = await naive(sqs, url, count, depth)
                else:
                    elapsed, made = await through_source(
                        sqs, endpoint, url, count, depth, pollers, linger
                    )
                seconds[side] += elapsed
                calls[side] += made
                rates[side] = count / elapsed
            print(
                f"round {r + 1}/{rounds}, {count} messages: naive {rates['naive']:6.0f}/s, "
                f"SQSSource {rates['source']:6.0f}/s ({rates['source'] / rates['naive']:.1f}x)",
                flush=True,
            )
    naive_rate, naive_calls = n / seconds["naive"], calls["naive"] / n
    source_rate, source_calls = n / seconds["source"], calls["source"] / n
    ratio = source_rate / naive_rate
    print(
        f"naive loop (receive 1, handle, delete 1): {naive_rate:8.0f} events/s, "
        f"{naive_calls:.2f} SQS API calls/event (sends not counted)"
    )
    print(
        f"SQSSource -> App -> batched delete      : {source_rate:8.0f} events/s, "
        f"{source_calls:.3f} SQS API calls/event (sends not counted)"
    )
    print(f"ratio: {ratio:.1f}x the naive loop (target >= 4x) {'PASS' if ratio >= 4 else 'FAIL'}")
    verdict = "PASS" if source_calls <= 0.25 else "FAIL"
    print(f"API calls per event: {source_calls:.3f} (target <= 0.25) {verdict}")


def main() -> None:
    parser = sqs_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--delete-linger", type=float, default=0.05, help="SQSSource delete_linger (0.05 s)"
    )
    args = parser.parse_args()
    with sqs_benchmark(patched=not args.stock_moto) as endpoint:
        asyncio.run(
            run(endpoint, args.messages, args.rounds, args.depth, args.pollers, args.delete_linger)
        )


if __name__ == "__main__":
    main()

"""SQS batches: messages/s through SQSBatchSource (no-op batch handler) vs SQSSource.

Both sides consume the same number of messages from the same moto server in the same
run: SQSSource submits one asynchronous invocation per message (deleted in batches once
each event succeeded), SQSBatchSource hands the handler one Lambda SQS event per batch of
up to ten and deletes the batch when it returns. The feeder and the moto server are
sqs_pipeline.py's (a feeder that keeps about ``--depth`` messages queued; moto in a child
process, patched, see _moto_server.py). The two sides run in alternating rounds, a fresh
queue per round, so both see the same background load. Prints messages/s of both, the
ratio, and SQS API calls per message (the feeder's sends are not counted).

    python benchmarks/sqs_batch.py [--messages 5000] [--rounds 5] [--depth 30] [--stock-moto]
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import anyio
from aiobotocore.session import AioSession

import eventflow
from _moto_server import REGION, sqs_arguments, sqs_benchmark
from _moto_server import rounds as each_round
from eventflow.aws import SQSBatchSource, SQSSource
from sqs_pipeline import feed


async def through_source(
    sqs: Any, endpoint: str, url: str, n: int, depth: int, pollers: int
) -> tuple[float, int]:
    """SQSSource: seconds to consume n messages, and the SQS calls made."""
    eventflow.reset_default_registry()
    seen: set[int] = set()

    @eventflow.handler
    async def noop(event: Any, context: eventflow.Context) -> None:
        seen.add(event["n"])

    source = SQSSource(
        url, noop, endpoint_url=endpoint, region_name=REGION, wait_time_seconds=1, pollers=pollers
    )

    def finished() -> bool:
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


async def through_batches(
    sqs: Any, endpoint: str, url: str, n: int, depth: int, concurrency: int, pollers: int
) -> tuple[float, int, float]:
    """SQSBatchSource: seconds to consume n messages, the SQS calls made, the mean batch."""
    eventflow.reset_default_registry()
    seen: set[int] = set()

    @eventflow.handler
    async def noop_batch(event: Any, context: eventflow.Context) -> None:
        for record in event["Records"]:
            seen.add(json.loads(record["body"])["n"])

    source = SQSBatchSource(
        url,
        noop_batch,
        endpoint_url=endpoint,
        region_name=REGION,
        wait_time_seconds=1,
        max_concurrency=concurrency,
        pollers=pollers,
    )

    def finished() -> bool:
        st = source.statistics()
        return len(seen) >= n and st.held == 0 and st.deleted >= n

    async with eventflow.App(sources=[source]):
        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed, sqs, url, n, lambda: source.statistics().deleted, depth)
            while not finished():  # noqa: ASYNC110 - a benchmark may poll
                await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - t0
        st = source.statistics()
    return elapsed, st.api_calls, st.received / max(1, st.batches)


async def run(
    endpoint: str,
    n: int,
    rounds: int,
    depth: int,
    pollers: int,
    concurrency: int,
    batch_pollers: int,
) -> None:
    session = AioSession()
    seconds = {"source": 0.0, "batch": 0.0}
    calls = {"source": 0, "batch": 0}
    mean_batches: list[float] = []
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        stamp = int(time.time())
        for r, count, sides in each_round(n, rounds, ("source", "batch")):
            rates = {}
            for side in sides:
                url = (await sqs.create_queue(QueueName=f"bench-{side}-{stamp}-{r}"))["QueueUrl"]
                if side == "source":
                    elapsed, made = await through_source(sqs, endpoint, url, count, depth, pollers)
                else:
                    elapsed, made, mean = await through_batches(
                        sqs, endpoint, url, count, depth, concurrency, batch_pollers
                    )
                    mean_batches.append(mean)
                seconds[side] += elapsed
                calls[side] += made
                rates[side] = count / elapsed
            print(
                f"round {r + 1}/{rounds}, {count} messages: SQSSource {rates['source']:6.0f}/s, "
                f"SQSBatchSource {rates['batch']:6.0f}/s "
                f"({rates['batch'] / rates['source']:.2f}x)",
                flush=True,
            )
    source_rate, source_calls = n / seconds["source"], calls["source"] / n
    batch_rate, batch_calls = n / seconds["batch"], calls["batch"] / n
    print(
        f"SQSSource (one async invoke per message): {source_rate:8.0f} messages/s, "
        f"{source_calls:.3f} SQS API calls/message (sends not counted)"
    )
    print(
        f"SQSBatchSource (one call per batch)     : {batch_rate:8.0f} messages/s, "
        f"{batch_calls:.3f} SQS API calls/message, "
        f"{sum(mean_batches) / len(mean_batches):.1f} messages/batch on average"
    )
    print(f"ratio: SQSBatchSource {batch_rate / source_rate:.2f}x SQSSource")


def main() -> None:
    parser = sqs_arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrency", type=int, default=5, help="SQSBatchSource max_concurrency (5)"
    )
    parser.add_argument("--batch-pollers", type=int, default=2, help="SQSBatchSource pollers (2)")
    args = parser.parse_args()
    with sqs_benchmark(patched=not args.stock_moto) as endpoint:
        asyncio.run(
            run(
                endpoint,
                args.messages,
                args.rounds,
                args.depth,
                args.pollers,
                args.concurrency,
                args.batch_pollers,
            )
        )


if __name__ == "__main__":
    main()

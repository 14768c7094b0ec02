"""SQS pipeline: 5,000 messages through SQSSource -> no-op handler -> delete, on a moto server.

The baseline, measured in the same run against the same server, is the naive aiobotocore
loop: receive one message, handle it, delete it. Both consume their own queue of the same
5,000 messages. moto runs in a child process (``moto_server``), so the server and the
consumer do not share one GIL. Prints events/s of both, the ratio, and SQS API calls per
event.

    python benchmarks/sqs_pipeline.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from typing import Any

import structlog
from aiobotocore.session import AioSession

import eventflow
from eventflow.aws import SQSSource

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start within 30 s")


async def fill(sqs: Any, name: str, n: int) -> str:
    url: str = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    for start in range(0, n, 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({"n": start + i})}
            for i in range(min(10, n - start))
        ]
        await sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return url


async def naive(sqs: Any, url: str, n: int) -> tuple[float, float]:
    calls = handled = 0
    t0 = time.perf_counter()
    while handled < n:
        calls += 1
        resp = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        for m in resp.get("Messages", []):
            json.loads(m["Body"])  # the no-op handler's work
            calls += 1
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            handled += 1
    return n / (time.perf_counter() - t0), calls / n


async def through_source(endpoint: str, url: str, n: int) -> tuple[float, float]:
    eventflow.reset_default_registry()

    @eventflow.handler
    async def noop(event: Any, context: eventflow.Context) -> None:
        return None

    source = SQSSource(url, noop, endpoint_url=endpoint, region_name=REGION, wait_time_seconds=1)
    async with eventflow.App(sources=[source]) as app:
        t0 = time.perf_counter()
        # a benchmark may poll: the figure is when the last delete went through
        while source.statistics().deleted < n:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t0
        assert app.stats().succeeded >= n
        calls = source.statistics().api_calls
    return n / elapsed, calls / n


async def run(endpoint: str, n: int) -> None:
    session = AioSession()
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        stamp = int(time.time())
        url_naive = await fill(sqs, f"bench-naive-{stamp}", n)
        url_source = await fill(sqs, f"bench-source-{stamp}", n)
        naive_rate, naive_calls = await naive(sqs, url_naive, n)
    source_rate, source_calls = await through_source(endpoint, url_source, n)
    ratio = source_rate / naive_rate
    print(f"naive loop (receive 1, handle, delete 1): {naive_rate:8.0f} events/s, "
          f"{naive_calls:.2f} API calls/event")
    print(f"SQSSource -> App -> batched delete      : {source_rate:8.0f} events/s, "
          f"{source_calls:.3f} API calls/event")
    print(f"ratio: {ratio:.1f}x the naive loop (target >= 4x) {'PASS' if ratio >= 4 else 'FAIL'}")
    verdict = "PASS" if source_calls <= 0.25 else "FAIL"
    print(f"API calls per event: {source_calls:.3f} (target <= 0.25) {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION
    )
    proc, endpoint = start_moto()
    try:
        asyncio.run(run(endpoint, args.messages))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()

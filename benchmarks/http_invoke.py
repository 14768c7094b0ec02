"""Async invokes per second through LambdaAPI, against a bare ASGI app, same server settings.

Each server runs in a child process: uvicorn, h11 parser, one worker, access log off,
log level warning, lifespan on. The ``lambda`` child serves ``LambdaAPI`` over an App with
one no-op async handler (structlog's filtering bound logger at WARNING, so the App's info
logs cost nothing); the ``bare`` child serves an ASGI app that answers 202 with an empty
body without reading the request. This process is the client: aiohttp with 64 connections
(64 coroutines, each sending its next request when the last one is answered), posting
``{"key1": "value1"}`` with ``X-Amz-Invocation-Type: Event`` to
``/2015-03-31/functions/noop/invocations``; every answer must be a 202.

Server CPU per request: the child's utime + stime from ``/proc/<pid>/stat`` (fields 14
and 15, in clock ticks of ``SC_CLK_TCK``, usually 10 ms) read just before and just after
the measured requests, divided by their number. The ticks are coarse, but a run takes
seconds, so the error is below 1%. Linux only.

Usage: ``python benchmarks/http_invoke.py [--requests 20000] [--connections 64] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from typing import Any

URL_PATH = "/2015-03-31/functions/noop/invocations"
BODY = b'{"key1": "value1"}'
HEADERS = {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}


# --------------------------------------------------------------------------- child: servers


async def _bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(
        {"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})


async def _serve(kind: str) -> None:
    import logging

    import structlog
    import uvicorn

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    import eventflow
    from eventflow.http import LambdaAPI

    async def noop(event: Any, context: Any) -> None:
        return None

    app = eventflow.App(handlers=[eventflow.Handler(noop, name="noop")])
    asgi: Any = LambdaAPI(app) if kind == "lambda" else _bare
    config = uvicorn.Config(
        asgi,
        host="127.0.0.1",
        port=0,
        http="h11",
        workers=1,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    async with app:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(port, flush=True)
        # the parent closes our stdin to stop us (a signal would make uvicorn re-raise it)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        server.should_exit = True
        await task
    stats = app.stats()
    if kind == "lambda":
        print(f"        (App: received {stats.received}, succeeded {stats.succeeded})", flush=True)


# --------------------------------------------------------------------------- parent: load


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of the whole line
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


async def _load(url: str, requests: int, connections: int) -> tuple[float, int]:
    import aiohttp

    remaining = requests
    bad = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, bad
        while remaining > 0:
            remaining -= 1
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
                if response.status != 202:
                    bad += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return elapsed, bad


def _measure(kind: str, requests: int, connections: int) -> tuple[float, float]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        url = f"http://127.0.0.1:{port}{URL_PATH}"
        asyncio.run(_load(url, min(2000, requests), connections))  # warm-up
        cpu_before = _cpu_seconds(child.pid)
        elapsed, bad = asyncio.run(_load(url, requests, connections))
        cpu = _cpu_seconds(child.pid) - cpu_before
    finally:
        out, _ = child.communicate(timeout=60)  # closes stdin: the child stops
    if bad:
        raise SystemExit(f"{kind}: {bad} of {requests} answers were not 202.")
    rate = requests / elapsed
    cpu_us = cpu / requests * 1e6
    print(f"{kind:>6}: {rate:8.0f} req/s   server CPU {cpu_us:6.1f} µs/request")
    if out.strip():
        print(out.rstrip())
    return rate, cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=["bare", "lambda"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_serve(args.child))
        return
    print(
        f"{args.requests:,} async invokes per run, {args.connections} aiohttp connections, "
        f"uvicorn h11, one worker, {os.cpu_count()} CPUs"
    )
    best: dict[str, tuple[float, float]] = {}
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_}")
        for kind in ("bare", "lambda"):
            rate, cpu_us = _measure(kind, args.requests, args.connections)
            if kind not in best or rate > best[kind][0]:
                best[kind] = (rate, cpu_us)
    bare, lam = best["bare"], best["lambda"]
    print(
        f"best: bare {bare[0]:.0f} req/s ({bare[1]:.1f} µs CPU/req), LambdaAPI {lam[0]:.0f} "
        f"req/s ({lam[1]:.1f} µs CPU/req); ratio {lam[0] / bare[0]:.2f} (target >= 0.60), "
        f"CPU ratio {lam[1] / bare[1]:.2f}"
    )


if __name__ == "__main__":
    main()

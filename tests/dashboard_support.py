"""What the dashboard's serve tests share: the App they serve, starting ``eventflow serve``
on a free port, invoking over the Lambda API, and bounded polling."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

# resize dead-letters at once; notify keeps its failed events waiting for a retry
APP = """
import structlog

import eventflow
from eventflow.sinks import JsonlSink

app = eventflow.App(name="shop", shutdown_timeout=1)


@app.handler(max_retries=0, dead_letter=JsonlSink("dead.jsonl"))
async def resize(event, context):
    context.log.info("resizing", key=event["key"])
    if event.get("fail"):
        raise ValueError(f"cannot resize {event['key']}")
    return {"ok": True}


@app.handler
async def notify(event, context):
    structlog.get_logger().info("notifying", to=event["to"])
    if event.get("fail"):
        raise ConnectionError(f"SMTP refused {event['to']}")
    return "sent"
"""
# a start of the server, a scrape or a page update may take long on a loaded 2-core machine
WAIT = 30.0


def poll(condition: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """``condition()``'s first true value, polled until ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)  # polling, bounded by the deadline
    return result


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


@contextmanager
def serving(tmp_path: Path, port: int, *options: str) -> Iterator[str]:
    """``eventflow serve shop:app`` on ``port`` (retries due in 90 s, then 150 s), its base URL."""
    (tmp_path / "shop.py").write_text(APP)
    command = [sys.executable, "-m", "eventflow", "serve", "shop:app", "--port", str(port)]
    command += ["--retry-delays", "90,150", "--log-format", "json", *options]
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            poll(lambda: proc.poll() is None and get(f"{base}/healthz"), "the server's start")
            yield base
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=WAIT)
                except subprocess.TimeoutExpired:
                    proc.kill()
            assert proc.stderr is not None
            proc.stderr.read()


def invoke(base: str, handler: str, payload: dict[str, Any]) -> str:
    """An ``Event`` invoke over the Lambda API; its request ID."""
    answer = httpx.post(
        f"{base}/2015-03-31/functions/{handler}/invocations",
        json=payload,
        headers={"X-Amz-Invocation-Type": "Event"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    return answer.headers["x-amzn-requestid"]


def stats(base: str) -> dict[str, Any]:
    answer = httpx.get(f"{base}/_eventflow/api/stats", timeout=5)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    return body


def settled(base: str, received: int) -> dict[str, Any] | None:
    """The stats once ``received`` events were accepted and none is queued or running."""
    s = stats(base)
    t = s["totals"]
    return s if t["received"] == received and t["queued"] == t["in_flight"] == 0 else None

"""``eventflow serve --log-format lambda``: each attempt as a CloudWatch log stream shows it."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

APP = """
import logging

import structlog

import eventflow

app = eventflow.App()
log = structlog.get_logger("flaky")
attempts = {}


@app.handler(max_retries=2)
async def flaky(event, context):
    n = attempts[context.aws_request_id] = attempts.get(context.aws_request_id, 0) + 1
    context.log.info("context line", n=n)
    log.info("structlog line", n=n)
    logging.getLogger("flaky").warning("stdlib line %d", n)
    if n < 3:
        raise RuntimeError(f"failure {n}")
    return "ok"
"""

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _serving(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _poll(condition: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)  # polling, bounded by the deadline


def _drain(lines: queue.Queue[str | None], seen: list[str]) -> bool:
    """Move what the reader has so far into ``seen``; False once the stream ended."""
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return True
        if line is None:
            return False
        seen.append(line)


def test_three_attempts_show_as_three_start_end_report_groups(
    tmp_path: Path, free_port: int
) -> None:
    (tmp_path / "flaky_app.py").write_text(APP)
    base = f"http://127.0.0.1:{free_port}"
    command = [sys.executable, "-m", "eventflow", "serve", "flaky_app:app"]
    command += ["--port", str(free_port), "--log-format", "lambda", "--retry-delays", "0.05,0.05"]
    seen: list[str] = []
    lines: queue.Queue[str | None] = queue.Queue()
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            _poll(lambda: proc.poll() is None and _serving(base), "serving")
            # Given an event whose handler fails twice, then succeeds
            answer = httpx.post(
                f"{base}/2015-03-31/functions/flaky/invocations",
                headers={"X-Amz-Invocation-Type": "Event"},
                json={"n": 1},
            )
            assert answer.status_code == 202
            rid = answer.headers["x-amzn-RequestId"]
            _poll(
                lambda: (
                    _drain(lines, seen)
                    and sum(line.startswith(f"REPORT RequestId: {rid}") for line in seen) == 3
                ),
                "three REPORT lines",
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=10)
    _drain(lines, seen)
    # Then the stream shows three START / END / REPORT groups under the one request ID
    start_line = f"START RequestId: {rid} Version: $LATEST"
    starts = [i for i, line in enumerate(seen) if line == start_line]
    ends = [i for i, line in enumerate(seen) if line == f"END RequestId: {rid}"]
    assert len(starts) == len(ends) == 3, seen
    report = re.compile(
        rf"REPORT RequestId: {rid}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t$"
    )
    for attempt, (start, end) in enumerate(zip(starts, ends, strict=True), 1):
        assert start < end and report.fullmatch(seen[end + 1]), seen[end + 1]
        group = seen[start + 1 : end]
        # with the handler's own lines inside each, in the runtime's format
        for level, text in (
            ("INFO", f"context line n={attempt}"),
            ("INFO", f"structlog line n={attempt}"),
            ("WARNING", f"stdlib line {attempt}"),
        ):
            line = rf"\[{level}\]\t{TIMESTAMP}\t{rid}\t{re.escape(text)}"
            assert any(re.fullmatch(line, g) for g in group), (line, group)
        failure = [g for g in group if g.startswith("[ERROR] RuntimeError:")]
        if attempt < 3:
            assert failure == [f"[ERROR] RuntimeError: failure {attempt}"], group
            assert "Traceback (most recent call last):" in group
        else:
            assert failure == [], group
    assert starts[0] < ends[0] < starts[1] < ends[1] < starts[2] < ends[2]


WORKER_APP = """
import anyio

import eventflow


class Once:
    async def run(self, app, *, task_status):
        task_status.started()
        await app.submit("greet", {"name": "worker"})
        await anyio.sleep_forever()


app = eventflow.App(sources=[Once()])


@app.handler
async def greet(event, context):
    context.log.info("hello", name=event["name"])
"""


def test_worker_writes_the_same_groups(tmp_path: Path) -> None:
    (tmp_path / "once_app.py").write_text(WORKER_APP)
    command = [sys.executable, "-m", "eventflow", "worker", "once_app:app"]
    command += ["--log-format", "lambda"]
    seen: list[str] = []
    lines: queue.Queue[str | None] = queue.Queue()
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            _poll(
                lambda: _drain(lines, seen) and any(g.startswith("REPORT ") for g in seen),
                "a REPORT line",
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=10)
    start = next(i for i, line in enumerate(seen) if line.startswith("START RequestId: "))
    rid = seen[start].split()[2]
    assert seen[start + 1].endswith(f"\t{rid}\thello name='worker'"), seen
    assert seen[start + 2] == f"END RequestId: {rid}"
    assert seen[start + 3].startswith(f"REPORT RequestId: {rid}\tDuration: ")

"""``eventflow serve``: a SIGTERM lets the events in flight finish before the process exits."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

import httpx

from cli_support import ROOT


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _wait_for_line(lines: queue.Queue[str | None], seen: list[str], needle: str) -> None:
    deadline = time.monotonic() + 15
    while not any(needle in line for line in seen):
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        assert line is not None, f"the server exited before logging {needle!r}: {seen}"
        seen.append(line)


def _wait_until_serving(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 15
    while True:
        assert proc.poll() is None, "eventflow serve exited before it was serving"
        try:
            httpx.get(f"{base}/2015-03-31/functions/", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "eventflow serve did not start within 15 s"
            time.sleep(0.05)  # polling the port, bounded by the deadline


def test_sigterm_drains_events_in_flight_then_exits_0(free_port: int) -> None:
    command = [sys.executable, "-m", "eventflow", "serve", "examples.demo_lambda:app"]
    with subprocess.Popen(
        [*command, "--port", str(free_port), "--log-format", "json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        lines: queue.Queue[str | None] = queue.Queue()
        seen: list[str] = []
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            base = f"http://127.0.0.1:{free_port}"
            _wait_until_serving(base, proc)
            # Given an event whose attempt takes a second, running
            response = httpx.post(
                f"{base}/2015-03-31/functions/demo-lambda/invocations",
                headers={"X-Amz-Invocation-Type": "Event"},
                json={"key1": "v", "sleep": 1.0},
            )
            assert response.status_code == 202
            request_id = response.headers["x-amzn-RequestId"]
            _wait_for_line(lines, seen, '"attempt.started"')
            # When the server is told to stop
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=10)  # the pipe ends when the process does
    # Then the attempt finished after the signal, before the process exited
    while (line := lines.get_nowait()) is not None:
        seen.append(line)
    log = [json.loads(line) for line in seen]
    events = [entry["event"] for entry in log]
    draining = events.index("serve.draining")
    assert log[draining]["signals"] == ["SIGTERM"] and log[draining]["in_flight"] == 1
    succeeded = [
        i
        for i, entry in enumerate(log)
        if entry["event"] == "attempt.succeeded" and entry["request_id"] == request_id
    ]
    assert succeeded and succeeded[0] > draining
    stopped: dict[str, Any] = log[events.index("serve.stopped")]
    assert (stopped["succeeded"], stopped["undelivered"]) == (1, 0)

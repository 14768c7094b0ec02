"""``eventflow serve``'s ``/healthz``: 200 while the App runs, 503 while it drains."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

APP = """
from pathlib import Path

import anyio

import eventflow

app = eventflow.App(shutdown_timeout=20)


@app.handler
async def hold(event, context):
    Path(event["started"]).touch()
    while not Path(event["release"]).exists():
        await anyio.sleep(0.02)  # the handler waits for the test's release file
    return "done"
"""


def _poll(condition: Any, what: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)  # polling, bounded by the deadline
    return result


def _health(base: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{base}/healthz", timeout=2)
    except httpx.TransportError:
        return None


def test_healthz_answers_503_while_requests_in_flight_finish(
    tmp_path: Path, free_port: int
) -> None:
    (tmp_path / "held.py").write_text(APP)
    started, release = tmp_path / "started", tmp_path / "release"
    base = f"http://127.0.0.1:{free_port}"
    command = [sys.executable, "-m", "eventflow", "serve", "held:app", "--port", str(free_port)]
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            # Given a running server
            running = _poll(lambda: proc.poll() is None and _health(base), "serving")
            assert (running.status_code, running.json()) == (200, {"status": "running"})
            assert httpx.head(f"{base}/healthz").status_code == 200
            assert httpx.post(f"{base}/healthz").status_code == 405
            # and a RequestResponse invoke in flight
            answers: list[httpx.Response] = []
            payload = {"started": str(started), "release": str(release)}
            invoke = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(
                        f"{base}/2015-03-31/functions/hold/invocations", json=payload, timeout=30
                    )
                )
            )
            invoke.start()
            _poll(started.exists, "the handler's start")
            # When the server is told to stop
            proc.send_signal(signal.SIGTERM)
            # Then /healthz says it drains, while the request is still open
            draining = _poll(
                lambda: (r := _health(base)) is not None and r.status_code == 503 and r,
                "a 503 from /healthz",
            )
            assert draining.json() == {"status": "draining"}
            assert invoke.is_alive() and proc.poll() is None
            # and once the request finishes, it is answered and the server stops
            release.touch()
            invoke.join(timeout=15)
            assert answers and answers[0].status_code == 200 and answers[0].json() == "done"
            assert proc.wait(timeout=20) == 0
            assert _health(base) is None
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.stderr is not None


def test_a_second_signal_stops_without_waiting(tmp_path: Path, free_port: int) -> None:
    (tmp_path / "held.py").write_text(APP)
    started = tmp_path / "started"
    base = f"http://127.0.0.1:{free_port}"
    command = [sys.executable, "-m", "eventflow", "serve", "held:app", "--port", str(free_port)]
    command += ["--graceful-timeout", "1"]
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        try:
            _poll(lambda: proc.poll() is None and _health(base), "serving")
            payload = {"started": str(started), "release": str(tmp_path / "never")}
            invoke = threading.Thread(
                target=lambda: httpx.post(
                    f"{base}/2015-03-31/functions/hold/invocations", json=payload, timeout=30
                ),
                daemon=True,
            )
            invoke.start()
            _poll(started.exists, "the handler's start")
            proc.send_signal(signal.SIGTERM)
            _poll(lambda: (r := _health(base)) is not None and r.status_code == 503, "a 503")
            # the held request would keep the first drain waiting 20 s; a second signal does not
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            assert time.monotonic() - began < 10
        finally:
            if proc.poll() is None:
                proc.kill()


FAILING = """
import eventflow
from eventflow.sinks import JsonlSink

app = eventflow.App()


@app.handler(dead_letter=JsonlSink("dead.jsonl"))  # Lambda's delays: 60 s, then 120 s
def always_fails(event, context):
    raise RuntimeError("no")
"""


def test_retry_delays_overrides_every_handlers_delays(tmp_path: Path, free_port: int) -> None:
    (tmp_path / "failing.py").write_text(FAILING)
    base = f"http://127.0.0.1:{free_port}"
    command = [sys.executable, "-m", "eventflow", "serve", "failing:app", "--port", str(free_port)]
    command += ["--retry-delays", "0.1,0.2"]
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        try:
            _poll(lambda: proc.poll() is None and _health(base), "serving")
            answer = httpx.post(
                f"{base}/2015-03-31/functions/always_fails/invocations",
                headers={"X-Amz-Invocation-Type": "Event"},
                json={"n": 1},
            )
            assert answer.status_code == 202
            # three attempts end in the dead letter within seconds, not three minutes
            dead = tmp_path / "dead.jsonl"
            _poll(lambda: dead.exists() and dead.read_text().strip(), "the dead letter", 20)
            letter = json.loads(dead.read_text().splitlines()[0])
            assert letter["attributes"]["RequestID"] == answer.headers["x-amzn-RequestId"]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()

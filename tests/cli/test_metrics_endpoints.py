"""``/metrics`` over a real socket: from ``eventflow serve``, and one scrape for all the
processes of ``eventflow worker --processes 2``."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cli_support import ROOT

SERVE_APP = """
import eventflow
from eventflow.metrics import PrometheusMetrics
from eventflow.sinks import MemorySink

dlq = MemorySink()
app = eventflow.App(name="metrics-test", middleware=[PrometheusMetrics()])


@app.handler(max_retries=1, retry_delays=(0.05,), dead_letter=dlq)
async def odd_fails(event, context):
    if event["n"] % 2:
        raise ValueError("odd events fail")


plain = eventflow.App(name="plain")


@plain.handler
async def nothing(event, context):
    pass
"""

WORKER_APP = """
import os

import eventflow
from eventflow.metrics import PrometheusMetrics
from eventflow.queues import SQLiteQueue

app = eventflow.App(
    name="metrics-worker",
    concurrency=4,
    shutdown_timeout=5,
    queue=SQLiteQueue(os.environ["METRICS_TEST_DB"]),
    middleware=[PrometheusMetrics()],
)


@app.handler(max_retries=1, retry_delays=(0.05,))
async def work(event, context):
    if event["n"] % 3 == 0 and context.attempt == 1:
        raise ValueError("every third event fails once")
"""


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _until(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a condition, bounded by the deadline


def scrape(url: str) -> dict[str, float]:
    """Sample name -> value summed over its labels, from a real GET of the scrape."""
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_serve_answers_metrics_that_match_its_stats(tmp_path: Path, free_port: int) -> None:
    (tmp_path / "metricsmod.py").write_text(textwrap.dedent(SERVE_APP))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "eventflow", "serve", "metricsmod:app"]
    lines: queue.Queue[str | None] = queue.Queue()
    with _start([*command, "--port", str(free_port), "--log-format", "json"], env) as proc:
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        base = f"http://127.0.0.1:{free_port}"
        try:

            def serving() -> bool:
                assert proc.poll() is None, "eventflow serve exited early"
                try:
                    return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
                except httpx.TransportError:
                    return False

            _until(serving, "eventflow serve to answer")
            # Given ten events through the Lambda API, half of which fail for good
            for n in range(10):
                response = httpx.post(
                    f"{base}/2015-03-31/functions/odd_fails/invocations",
                    headers={"X-Amz-Invocation-Type": "Event"},
                    json={"n": n},
                )
                assert response.status_code == 202
            # Then the scrape counts them, once they have run
            _until(
                lambda: scrape(f"{base}/metrics").get("eventflow_async_events_dropped_total") == 5,
                "five dropped events in the scrape",
            )
            s = scrape(f"{base}/metrics")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=10)
    log = []
    while (line := lines.get_nowait()) is not None:
        if line.startswith("{"):
            log.append(json.loads(line))
    [stopped] = [e for e in log if e["event"] == "serve.stopped"]
    assert s["eventflow_async_events_received_total"] == stopped["received"] == 10
    assert s["eventflow_async_events_dropped_total"] == stopped["failed"] == 5
    assert stopped["succeeded"] == 5 and stopped["undelivered"] == 0
    # (serve.stopped logs the outcomes only): 5 + 2 * 5 attempts, of which 10 failed
    assert s["eventflow_invocations_total"] == 15
    assert s["eventflow_errors_total"] == 10
    assert s["eventflow_retries_total"] == 5
    assert s["eventflow_queue_depth"] == s["eventflow_scheduled_retries"] == 0


def test_serve_says_how_to_get_metrics_for_an_app_without_the_middleware(
    tmp_path: Path, free_port: int
) -> None:
    (tmp_path / "metricsmod.py").write_text(textwrap.dedent(SERVE_APP))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "eventflow", "serve", "metricsmod:plain"]
    with _start([*command, "--port", str(free_port)], env) as proc:
        try:
            base = f"http://127.0.0.1:{free_port}"

            def answer() -> httpx.Response | None:
                assert proc.poll() is None, "eventflow serve exited early"
                try:
                    return httpx.get(f"{base}/metrics", timeout=1)
                except httpx.TransportError:
                    return None

            _until(lambda: answer() is not None, "eventflow serve to answer")
            response = answer()
            assert response is not None and response.status_code == 404
            assert "has no PrometheusMetrics middleware" in response.text
            assert "App(middleware=[PrometheusMetrics()])" in response.text
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_worker_with_two_processes_serves_one_scrape_for_both(
    tmp_path: Path, free_port: int
) -> None:
    # Given 30 events stored in a SQLite queue (a third of them fail once)
    (tmp_path / "workermod.py").write_text(textwrap.dedent(WORKER_APP))
    db = tmp_path / "queue.db"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "METRICS_TEST_DB": str(db)}
    fill = (
        "import asyncio, eventflow\n"
        "from eventflow.queues import SQLiteQueue\n"
        f"app = eventflow.App(queue=SQLiteQueue({str(db)!r}, consume=False))\n"
        "@app.handler\nasync def work(event, context): pass\n"
        "async def main():\n"
        "    async with app:\n"
        "        for n in range(30): await app.invoke(work, {'n': n})\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", fill], cwd=ROOT, env=env, check=True, timeout=60)
    # When two worker processes run them, with one metrics port
    command = [sys.executable, "-m", "eventflow", "worker", "workermod:app"]
    options = ["--processes", "2", "--metrics-port", str(free_port), "--log-format", "json"]
    lines: queue.Queue[str | None] = queue.Queue()
    url = f"http://127.0.0.1:{free_port}/metrics"
    with _start([*command, *options, "--stats-interval", "0.2"], env) as proc:
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:

            def done() -> bool:
                assert proc.poll() is None, "eventflow worker exited early"
                try:
                    s = scrape(url)
                except httpx.TransportError:
                    return False
                return s.get("eventflow_invocations_total") == 40

            _until(done, "40 attempts in the scrape", 60)
            s = scrape(url)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.join(timeout=10)
    log: list[dict[str, Any]] = []
    while (line := lines.get_nowait()) is not None:
        if line.startswith("{"):
            log.append(json.loads(line))
    # Then the one scrape is the sum of both children's counters
    [children] = [e["children"] for e in log if e["event"] == "worker.children"]
    stopped = [e for e in log if e["event"] == "worker.stopped"]
    assert {e["pid"] for e in stopped} == set(children) and len(children) == 2
    assert s["eventflow_async_events_received_total"] == sum(e["received"] for e in stopped)
    assert s["eventflow_invocations_total"] == sum(e["attempts"] for e in stopped) == 40
    assert s["eventflow_errors_total"] == sum(e["errors"] for e in stopped) == 10
    assert s["eventflow_retries_total"] == sum(e["retries"] for e in stopped) == 10
    assert s["eventflow_concurrent_executions"] == 0
    assert [e["url"] for e in log if e["event"] == "worker.metrics"] == [url]

"""SQLiteQueue under SIGKILL: a 202 is on disk, and a killed process loses nothing.

The processes are real (``python durable_app.py ...`` and ``python -m eventflow worker
durable_app:app``, see durable_app/durable_app.py); the test reads the outcome back from
the files they wrote (fsynced JSON lines) and from the queue's file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

APP_DIR = Path(__file__).parent / "durable_app"
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.timeout(180),
]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def accepted(path: Path) -> dict[str, int]:
    """Request ID -> event number of every invoke answered 202 (whole lines only)."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            rid, n = line.split()
            out[rid] = int(n)
    return out


def jsonl(out: Path, prefix: str) -> list[dict[str, object]]:
    lines = []
    for path in sorted(out.glob(f"{prefix}-*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line]
    return lines


def query(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    out = tmp_path / "out"
    out.mkdir()
    yield {
        **os.environ,
        "DURABLE_DB": str(tmp_path / "queue.db"),
        "DURABLE_OUT": str(out),
        "DURABLE_ACCEPTED": str(tmp_path / "accepted.txt"),
        "PYTHONPATH": os.pathsep.join([str(APP_DIR), os.environ.get("PYTHONPATH", "")]),
    }


def start(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=APP_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_every_202_answered_before_a_kill_is_in_the_file(
    env: dict[str, str], tmp_path: Path, synchronous: str
) -> None:
    env = {**env, "DURABLE_CONSUME": "0", "DURABLE_SYNCHRONOUS": synchronous}
    db, answered = Path(env["DURABLE_DB"]), Path(env["DURABLE_ACCEPTED"])
    # 100 callers invoke without pause: a group commit is in flight nearly all the time
    proc = start(env, "durable_app.py", "flood", log=tmp_path / "flood.log")
    try:
        wait_for(lambda: len(accepted(answered)) >= 3_000, 60, "3,000 accepted invokes")
    finally:
        kill(proc)
    answers = accepted(answered)
    stored = {rid for (rid,) in query(db, "SELECT request_id FROM eventflow_queue")}
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    missing = set(answers) - stored
    assert not missing, f"{len(missing)} of {len(answers)} accepted events are not in the file"
    # the invokes in flight at the kill may be stored too, without their answer
    assert len(stored) >= len(answers)


def test_a_killed_process_loses_no_accepted_event(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "DURABLE_RETRY_DELAY": "1"}
    db, answered, out = (
        Path(env["DURABLE_DB"]),
        Path(env["DURABLE_ACCEPTED"]),
        Path(env["DURABLE_OUT"]),
    )
    first = start(env, "durable_app.py", "invoke", "2000", log=tmp_path / "first.log")
    try:
        # midway: half the invokes answered, events running, retries waiting
        wait_for(lambda: len(accepted(answered)) >= 1_000, 60, "1,000 accepted invokes")
    finally:
        kill(first)
    killed_at = time.time()
    answers = accepted(answered)
    assert 1_000 <= len(answers) < 2_000
    held = {
        rid
        for (rid,) in query(
            db,
            "SELECT request_id FROM eventflow_queue WHERE owner IS NOT NULL AND due > ?",
            killed_at,
        )
    }
    scheduled = {
        rid
        for (rid,) in query(
            db,
            "SELECT request_id FROM eventflow_queue WHERE owner IS NULL AND attempts > 0 "
            "AND due > ?",
            killed_at,
        )
    }
    before = len(jsonl(out, "effects")) + len(jsonl(out, "dead"))
    assert scheduled, "no retry was waiting at the kill: the test would not test them"
    assert before > 0, "nothing had run at the kill: the test would not test a restart"

    worker = start(
        env,
        *("-m", "eventflow", "worker", "durable_app:app", "--processes", "2"),
        *("--log-level", "warning"),
        log=tmp_path / "worker.log",
    )
    try:

        def finished() -> bool:
            done = {str(e["rid"]) for e in jsonl(out, "effects")}
            done |= {str(d["attributes"]["RequestID"]) for d in jsonl(out, "dead")}  # type: ignore[index]
            return set(answers) <= done and not query(db, "SELECT 1 FROM eventflow_queue")

        wait_for(finished, 90, "every accepted event's outcome")
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]

    outcomes: dict[str, list[str]] = defaultdict(list)
    for effect in jsonl(out, "effects"):
        outcomes[str(effect["rid"])].append("effect")
        if int(effect["n"]) % 10 == 1:  # type: ignore[call-overload]
            assert int(effect["attempt"]) >= 2, effect  # type: ignore[call-overload]
    for letter in jsonl(out, "dead"):
        outcomes[str(letter["attributes"]["RequestID"])].append("dead letter")  # type: ignore[index]
    for rid, n in answers.items():
        kinds = set(outcomes[rid])
        assert kinds == ({"dead letter"} if n % 10 == 0 else {"effect"}), (rid, n, outcomes[rid])
        if rid not in held:
            assert len(outcomes[rid]) == 1, (rid, n, outcomes[rid])  # nothing else repeats
    assert scheduled <= set(outcomes)
    # a process holds at most its concurrency (20) plus one batch (32): all a kill repeats
    assert len(held) <= 20 + 32
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


def test_eventflow_serve_answers_202_once_the_row_is_in_the_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**env, "DURABLE_CONSUME": "0"}
    db = Path(env["DURABLE_DB"])
    base = f"http://127.0.0.1:{port}"
    server = start(
        env,
        *("-m", "eventflow", "serve", "durable_app:app", "--port", str(port)),
        log=tmp_path / "serve.log",
    )
    try:

        def serving() -> bool:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                httpx.get(f"{base}/2015-03-31/functions/", timeout=1)
            except httpx.TransportError:
                return False
            return True

        wait_for(serving, 30, "eventflow serve answering")
        answered = []
        for n in range(20):
            response = httpx.post(
                f"{base}/2015-03-31/functions/work/invocations",
                headers={"X-Amz-Invocation-Type": "Event"},
                json={"n": n},
            )
            assert response.status_code == 202, response.text
            answered.append(response.headers["x-amzn-RequestId"])
    finally:
        kill(server)
    stored = [rid for (rid,) in query(db, "SELECT request_id FROM eventflow_queue ORDER BY id")]
    assert stored == answered

"""A redrive rewrites a dead-letter file that apps keep appending to: no line is lost.

``JsonlSink`` appends under an exclusive ``flock``; ``eventflow redrive`` rewrites the file
(a new file renamed over the path) under the same lock, and an appender that finds the path
naming a new file once it holds the lock appends to that one. Each test makes one side wait
for the other's lock (seen in ``/proc/locks``), then does the other side's work.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import anyio
import pytest

from eventflow import Message
from eventflow._cli_redrive import JsonlSource
from eventflow._file_lock import locked
from eventflow.sinks import JsonlSink

pytestmark = pytest.mark.skipif(
    not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks to see a waiter"
)


def _line(body: str) -> str:
    return json.dumps({"body": body, "attributes": {"RequestID": f"req-{body}"}}) + "\n"


def _wait_until_the_lock_is_awaited(path: Path) -> None:
    """Return once some lock request on ``path``'s file waits (a ``->`` line in /proc/locks)."""
    inode = os.stat(path).st_ino
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in Path("/proc/locks").read_text().splitlines():
            fields = entry.split()
            if "->" in fields and any(f.endswith(f":{inode}") for f in fields):
                return
        time.sleep(0.002)  # polled: the waiter is another thread, blocked in flock()
    pytest.fail(f"nothing waited for the lock on {path} within 60 s")


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_a_line_sent_while_the_file_is_being_replaced_lands_in_the_new_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dead-letters.jsonl"
    path.write_text(_line("redriven") + _line("kept"))
    sink = JsonlSink(path, fsync=False)
    message = Message("appended", MappingProxyType({"RequestID": "req-appended"}))
    with locked(path, "rb"):  # as a redrive holds it while it rewrites the file
        thread, errors = _in_thread(lambda: anyio.run(sink.send, message))
        _wait_until_the_lock_is_awaited(path)
        rewritten = tmp_path / "rewritten"
        rewritten.write_text(_line("kept"))
        os.replace(rewritten, path)
    thread.join()
    assert errors == []
    assert [m.body for m in sink.read()] == ["kept", "appended"]


def test_a_redrive_keeps_a_line_appended_while_it_waits_for_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "dead-letters.jsonl"
    path.write_text(_line("redriven") + _line("kept"))
    source = JsonlSource(path)

    async def redrive_the_first() -> None:
        assert await source.count() == 2
        async for letter in source.letters(lambda: 10):
            if letter.body == "redriven":
                await source.remove(letter)

    anyio.run(redrive_the_first)
    with locked(path, "a", encoding="utf-8") as appender:  # as a JsonlSink holds it
        thread, errors = _in_thread(lambda: anyio.run(source.finish))
        _wait_until_the_lock_is_awaited(path)
        appender.write(_line("appended"))
    thread.join()
    assert errors == []
    bodies = [json.loads(line)["body"] for line in path.read_text().splitlines()]
    assert bodies == ["kept", "appended"]


def test_a_file_renamed_away_under_an_appender_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "dead-letters.jsonl"
    path.write_text(_line("old"))
    sink = JsonlSink(path, fsync=False)
    message = Message("appended", MappingProxyType({"RequestID": "req-appended"}))
    with locked(path, "rb"):
        thread, errors = _in_thread(lambda: anyio.run(sink.send, message))
        _wait_until_the_lock_is_awaited(path)
        os.replace(path, tmp_path / "archived.jsonl")
    thread.join()
    assert errors == []
    assert [m.body for m in sink.read()] == ["appended"]

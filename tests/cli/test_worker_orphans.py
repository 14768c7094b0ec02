"""``eventflow worker --processes N``: children do not outlive a parent that was killed.

SIGKILL gives the parent no chance to forward a stop, so each child must notice by itself
(on Linux the kernel's parent-death signal; everywhere a pipe from the parent that closes)
and stop as it does on SIGTERM.
"""

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
from pathlib import Path
from typing import IO, Any

from cli_support import ROOT

APP_MODULE = """
import eventflow
from eventflow.sources import MemorySource


@eventflow.handler(name="idle")
async def idle(event, context):
    return None


# a source with nothing in it: the worker has something to consume, and waits
app = eventflow.App(name="orphan-test", shutdown_timeout=2, sources=[MemorySource("idle")])
"""

STOP_BOUND = 30.0  # seconds for a child to notice and drain an idle app, on a loaded machine


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # end of file: every process writing the pipe has exited


def _wait_for_entries(
    lines: queue.Queue[str | None], log: list[dict[str, Any]], done: Any, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out; log so far: {log}"
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        assert line is not None, f"the output ended early; log so far: {log}"
        try:
            log.append(json.loads(line))
        except json.JSONDecodeError:
            log.append({"event": "<text>", "text": line})


def _read_the_rest(lines: queue.Queue[str | None], log: list[dict[str, Any]]) -> None:
    """Parse what the ended output left in ``lines``."""
    while (line := lines.get_nowait()) is not None:
        try:
            log.append(json.loads(line))
        except json.JSONDecodeError:
            log.append({"event": "<text>", "text": line})


def _running(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not reaped by its new parent) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _start(tmp_path: Path, *options: str) -> subprocess.Popen[str]:
    (tmp_path / "orphanmod.py").write_text(textwrap.dedent(APP_MODULE))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "eventflow", "worker", "orphanmod:app", *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        pass_fds=tuple(int(o) for o in options[options.index("--parent-pipe") + 1 :][:1])
        if "--parent-pipe" in options
        else (),
    )


def test_children_stop_when_the_parent_is_sigkilled(tmp_path: Path) -> None:
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[dict[str, Any]] = []
    proc = _start(tmp_path, "--processes", "2", "--log-format", "json")
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    children: list[int] = []
    try:
        # Given two children that are up and consuming
        def both_started() -> bool:
            return sum(e["event"] == "worker.started" for e in log) == 2

        _wait_for_entries(lines, log, both_started, 60)
        (started,) = [e for e in log if e["event"] == "worker.children"]
        children = list(started["children"])
        # When the parent is killed, with no chance to stop them
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # Then both stop by themselves, as on SIGTERM, within the bound
        deadline = time.monotonic() + STOP_BOUND
        while any(_running(pid) for pid in children):
            assert time.monotonic() < deadline, f"orphaned children still run: {children}"
            time.sleep(0.05)  # bounded polling of a condition
        reader.join(timeout=STOP_BOUND)  # the output ends once no child holds it
        assert not reader.is_alive()
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in children:  # only if the test failed: do not leave orphans behind
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    _read_the_rest(lines, log)
    stopped = {e["pid"] for e in log if e["event"] == "worker.stopped"}
    assert stopped == set(children)  # each drained and stopped, not killed


def test_a_child_stops_when_its_parent_pipe_closes(tmp_path: Path) -> None:
    # the portable path alone: this test process is the parent, and stays alive
    read_end, write_end = os.pipe()
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[dict[str, Any]] = []
    try:
        proc = _start(
            tmp_path, "--child", "1", "--parent-pipe", str(read_end), "--log-format", "json"
        )
    finally:
        os.close(read_end)
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        _wait_for_entries(lines, log, lambda: any(e["event"] == "worker.started" for e in log), 60)
        os.close(write_end)
        write_end = -1
        assert proc.wait(timeout=STOP_BOUND) == 0
    finally:
        if write_end >= 0:
            os.close(write_end)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        proc.stdout.close()
    assert not reader.is_alive()
    _read_the_rest(lines, log)
    events = [e["event"] for e in log]
    assert "worker.parent_exited" in events and "worker.stopped" in events

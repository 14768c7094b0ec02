"""Instruction counts under valgrind's callgrind: the benchmarks' ``--instructions`` mode.

Wall time on a shared 2-core machine moves by a factor of 2 between runs; the number of instructions
a workload executes does not (callgrind counts them on a simulated CPU). Each workload runs
in a child process under ``valgrind --tool=callgrind`` twice, with ``events`` and with
``2 * events``; the difference divided by ``events`` is the instructions per event, without
the interpreter's start-up, the imports and the app's start and stop, which both runs share.
``PYTHONHASHSEED=0`` makes the two runs hash alike.

A benchmark script that offers the mode runs one workload alone, once, when called as
``script --workload NAME --events N``; that is what runs under valgrind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ("count_per_event", "require_valgrind")


def require_valgrind() -> str:
    """Return valgrind's path, or exit with a message that says how to install it."""
    path = shutil.which("valgrind")
    if path is None:
        sys.exit(
            "--instructions counts instructions with valgrind's callgrind, and valgrind is not "
            "installed (not found on PATH). Install it (Debian/Ubuntu: 'apt-get install -y "
            "valgrind'; macOS: not supported by valgrind, use a Linux machine) and run again."
        )
    return path


def _instructions(valgrind: str, script: Path, workload: str, events: int) -> int:
    """Instructions of one child run of ``script``'s ``workload`` over ``events`` events."""
    with tempfile.TemporaryDirectory(prefix="eventflow-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0")
        done = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(script),
                "--workload",
                workload,
                "--events",
                str(events),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(
                f"The {workload!r} workload failed under valgrind (exit status "
                f"{done.returncode}); its output ends with:\n{done.stderr[-2000:]}"
            )
        for line in out.read_text().splitlines():
            # callgrind writes the total of the event it counts (Ir) on these lines
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    sys.exit(f"valgrind wrote no instruction total for the {workload!r} workload.")


def count_per_event(script: Path, workload: str, events: int) -> float:
    """Instructions per event of ``script``'s ``workload``: runs of N and 2N, differenced."""
    valgrind = require_valgrind()
    once = _instructions(valgrind, script, workload, events)
    twice = _instructions(valgrind, script, workload, 2 * events)
    return (twice - once) / events

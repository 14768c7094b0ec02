"""A dependency-free progress line for the command line (a bar on a terminal, lines elsewhere)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import anyio

__all__ = ("ProgressBar",)


class ProgressBar:
    """Redraws ``describe()`` every ``interval`` seconds while :meth:`run` runs.

    On a terminal it redraws one line in place; otherwise (CI logs, pipes) it prints a
    line every ``plain_interval`` seconds so long runs still show progress.
    """

    def __init__(
        self,
        total: int,
        done: Callable[[], int],
        describe: Callable[[], str],
        *,
        stream: TextIO | None = None,
        interval: float = 0.1,
        plain_interval: float = 1.0,
        width: int = 30,
    ) -> None:
        self.total = max(total, 1)
        self._done = done
        self._describe = describe
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._interval = interval if self._tty else plain_interval
        self._width = width
        self._t0 = time.perf_counter()

    def line(self) -> str:
        done = min(self._done(), self.total)
        filled = int(self._width * done / self.total)
        bar = "#" * filled + "-" * (self._width - filled)
        elapsed = time.perf_counter() - self._t0
        count = f"{done:>{len(str(self.total))}}/{self.total}"
        return f"[{bar}] {count} {elapsed:5.1f}s {self._describe()}"

    def draw(self, final: bool = False) -> None:
        if self._tty:
            end = "\n" if final else ""
            self._stream.write("\r\x1b[2K" + self.line() + end)
        else:
            self._stream.write(self.line() + "\n")
        self._stream.flush()

    async def run(self) -> None:
        """Redraw until cancelled, then draw the final state once."""
        try:
            while True:
                await anyio.sleep(self._interval)
                self.draw()
        finally:
            self.draw(final=True)

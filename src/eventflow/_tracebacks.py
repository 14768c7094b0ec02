"""Tracebacks formatted as the standard library formats them, each failure site's stack once.

In a downstream outage every event fails at the same few places, and each failure's log line
carries its traceback: formatting it (``traceback.print_exception``) is most of what a failed
attempt costs, because CPython finds each frame's position, stats its source file and parses
the line for the caret anchors, every time. The frames' text depends only on where the frames
stopped (their code objects and instruction offsets), so :class:`TracebackFormatter` formats a
stack once and reuses the text; each exception's own lines (type, message, notes) are
formatted every time, as are the chain's headers. The result is the standard library's text
byte for byte, with one difference: a source file edited while the process runs keeps
showing the line that ran, where the standard library would show the new one.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, TracebackType
from typing import Any, TextIO

__all__ = ("StackTexts", "TracebackFormatter", "TracebackStats")

# the standard library's chain headers (``traceback._cause_message``, ``_context_message``)
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
_HEADER = "Traceback (most recent call last):\n"


@dataclass(frozen=True, slots=True)
class TracebackStats:
    """What a :class:`TracebackFormatter` holds and how often its stacks were reused."""

    hits: int  # stacks whose text was already formatted
    misses: int  # stacks formatted (and kept) now
    fallbacks: int  # exceptions formatted by the standard library alone (groups, a limit)
    size: int  # stacks kept
    maxsize: int  # at most this many stacks kept; the oldest goes first


class StackTexts:
    """The text of a traceback's frames, made by ``make`` once per stack: keyed by where the
    frames stopped (each frame's code object and instruction offset), which decides the
    text but for a source file edited since. Keeps at most ``maxsize`` stacks (1 or more;
    the oldest is dropped first); safe to share between threads."""

    def __init__(self, maxsize: int, make: Callable[[TracebackType], list[str]]) -> None:
        self._maxsize = maxsize
        self._make = make
        self._texts: dict[tuple[CodeType | int, ...], list[str]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return len(self._texts)

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def __call__(self, tb: TracebackType) -> list[str]:
        """The text of ``tb``'s frames (shared: not to be changed)."""
        key: list[CodeType | int] = []
        t: TracebackType | None = tb
        while t is not None:
            key.append(t.tb_frame.f_code)
            key.append(t.tb_lasti)
            t = t.tb_next
        k = tuple(key)
        text = self._texts.get(k)
        if text is not None:
            self.hits += 1
            return text
        text = self._make(tb)
        with self._lock:
            self.misses += 1
            if k not in self._texts and len(self._texts) >= self._maxsize:
                del self._texts[next(iter(self._texts))]
            self._texts[k] = text
        return text


class TracebackFormatter:
    """Formats exceptions exactly as ``traceback.format_exception`` does, reusing the text
    of stacks it has formatted before.

    Keeps at most ``maxsize`` stacks (the oldest is dropped first); exception groups, and
    a process that sets ``sys.tracebacklimit``, are formatted by the standard library
    alone. Safe to share between threads.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ValueError(
                f"TracebackFormatter(maxsize={maxsize!r}) keeps no stack: give 1 or more."
            )
        self._stacks = StackTexts(maxsize, traceback.format_tb)
        self._fallbacks = 0

    def stats(self) -> TracebackStats:
        s = self._stacks
        return TracebackStats(s.hits, s.misses, self._fallbacks, s.size, s.maxsize)

    def format_exception(self, exc: BaseException) -> str:
        """``"".join(traceback.format_exception(exc))``."""
        return self._format(exc, exc.__traceback__)

    def exc_info(self, exc_info: Any) -> str:
        """An ``exc_info`` tuple's text without its last newline: for structlog's
        ``ExceptionRenderer`` (what ``structlog.processors.format_exc_info`` does)."""
        _type, value, tb = exc_info
        if value is None:
            self._fallbacks += 1
            return "".join(traceback.format_exception(_type, value, tb)).removesuffix("\n")
        return self._format(value, tb).removesuffix("\n")

    def _format(self, exc: BaseException, top_tb: TracebackType | None) -> str:
        """``exc`` printed with ``top_tb`` as its traceback (its chain with their own)."""
        chain = _chain(exc)
        if chain is None or getattr(sys, "tracebacklimit", None) is not None:
            self._fallbacks += 1
            return "".join(traceback.format_exception(type(exc), exc, top_tb))
        out: list[str] = []
        for header, e in reversed(chain):
            if header:
                out.append(header)
            e_tb = top_tb if e is exc else e.__traceback__
            if e_tb is not None:
                out.append(_HEADER)
                out.extend(self._stacks(e_tb))
            out.extend(_exception_only(e))
        return "".join(out)

    def console(self, sio: TextIO, exc_info: Any) -> None:
        """For ``structlog.dev.ConsoleRenderer(exception_formatter=...)``: what structlog's
        ``plain_traceback`` writes."""
        sio.write("\n" + self.exc_info(exc_info))


def _chain(exc: BaseException) -> list[tuple[str, BaseException]] | None:
    """The exceptions printed, outermost first, each with the header printed before it (the
    one that links it to its cause or context), as the standard library's compact chain
    walk picks them; None if one is a group."""
    chain: list[tuple[str, BaseException]] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, BaseExceptionGroup):
            return None
        seen.add(id(e))
        cause, context = e.__cause__, e.__context__
        if cause is not None and id(cause) not in seen:
            chain.append((_CAUSE, e))
            e = cause
        elif context is not None and not e.__suppress_context__ and id(context) not in seen:
            chain.append((_CONTEXT, e))
            e = context
        else:
            chain.append(("", e))
            e = None
    return chain


def _exception_only(exc: BaseException) -> list[str]:
    # limit=0: the chained exceptions' stacks (not printed here) are not extracted
    te = traceback.TracebackException(type(exc), exc, None, limit=0, compact=True)
    return list(te.format_exception_only())

"""Logging parts a program puts in its own structlog configuration.

**Tracebacks formatted once per failure site.** :data:`format_exc_info` (a processor, in
place of ``structlog.processors.format_exc_info``) and :func:`plain_traceback` (for
``structlog.dev.ConsoleRenderer(exception_formatter=...)``) write the standard library's
text byte for byte, but format each stack only the first time it is seen
(:class:`TracebackFormatter`): in an outage, where every event fails at the same place, a
failed attempt's log line costs about a sixth of what it would. :data:`tracebacks` is the
formatter they share (its ``stats()`` says how often a stack was reused).

**Lambda-style logs**: each attempt as a CloudWatch log stream shows it.

Two opt-in parts, which ``eventflow serve --log-format lambda`` (and ``eventflow worker
--log-format lambda``) install together:

- :class:`LambdaLogs`, a middleware (its ``attempt`` hook): ``START RequestId: <id>
  Version: $LATEST`` before the handler runs, and after it the runtime's ``[ERROR]`` line
  for an unhandled error, ``END RequestId: <id>`` and ``REPORT RequestId: <id>\\tDuration:
  ...`` (tab-separated, as the Lambda Python runtime writes them);
- :class:`LambdaRenderer`, a structlog renderer: every entry as the runtime's log line
  ``[LEVEL]\\t<time>\\t<request ID>\\t<message>``, so a handler's own lines (its
  ``context.log`` and ``structlog.get_logger()`` entries) sit between START and END.

eventflow never configures structlog itself: a program that wants these lines puts
:class:`LambdaRenderer` last in its own processors, and :class:`LambdaLogs` in
``App(middleware=[...])``. In REPORT, ``Memory Size`` is always ``128 MB`` (Lambda's
default: an eventflow handler has no memory setting), ``Max Memory Used`` is this
process's peak resident memory so far, and ``Billed Duration`` is the duration rounded up
to the millisecond; an attempt cut short (its timeout, or the app stopping) reports
``Status: timeout``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, MutableMapping
from types import TracebackType
from typing import Any

import structlog

from ._logging import ATTEMPT, HANDLER, REQUEST_ID, request_id_var
from ._middleware import EventInfo
from ._records import function_error
from ._tail import TailLog, log_line, message_text
from ._tracebacks import TracebackFormatter, TracebackStats

__all__ = (
    "LambdaLogs",
    "LambdaRenderer",
    "TracebackFormatter",
    "TracebackStats",
    "format_exc_info",
    "plain_traceback",
    "tracebacks",
)

#: The formatter that :data:`format_exc_info` and :func:`plain_traceback` share.
tracebacks = TracebackFormatter()

#: A processor: ``structlog.processors.format_exc_info`` (``exc_info`` becomes the
#: ``exception`` text), each failure site's stack formatted once.
format_exc_info = structlog.processors.ExceptionRenderer(tracebacks.exc_info)

#: For ``structlog.dev.ConsoleRenderer(exception_formatter=plain_traceback)``: what
#: structlog's ``plain_traceback`` writes, each failure site's stack formatted once.
plain_traceback = tracebacks.console

# what Lambda reports for an attempt that ran out of time (the REPORT line's Status)
_TIMED_OUT = "Sandbox.Timedout"


class LambdaRenderer:
    """A structlog renderer for the Lambda runtime's log line, to put last in the processors.

    ``[LEVEL]\\t<ISO time>\\t<request ID>\\t<event> key=value ...``: the level comes from
    ``structlog.processors.add_log_level`` (else the method's name), the request ID from
    the entry's ``request_id`` (bound during an attempt; empty outside one, as during a
    Lambda init). Inside an attempt the ``handler`` and ``attempt`` keys are left out (the
    START line says which attempt it is); an ``exception`` (from :data:`format_exc_info`
    or structlog's own) follows on the next lines.
    """

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
        level = str(event_dict.pop("level", method_name))
        request_id = event_dict.pop(REQUEST_ID, None)
        if request_id is not None and request_id == request_id_var.get():
            event_dict.pop(HANDLER, None)
            event_dict.pop(ATTEMPT, None)
        event_dict.pop("timestamp", None)  # the line carries its own, in Lambda's format
        exception = event_dict.pop("exception", None)
        event = str(event_dict.pop("event", ""))
        line = log_line(level, request_id or "", message_text(event, dict(event_dict)))
        return f"{line}\n{exception}" if exception else line


class LambdaLogs:
    """Middleware that writes START, END and REPORT around every attempt of every handler.

    Args:
        write: Called with each line (without its newline). By default a
            ``structlog.WriteLogger`` on ``sys.stdout``: one write per line, under the
            same lock as structlog's own loggers on that stream, so lines never interleave.
    """

    def __init__(self, write: Callable[[str], Any] | None = None) -> None:
        self._write: Callable[[str], Any] = (
            write if write is not None else structlog.WriteLogger(sys.stdout).msg
        )

    def attempt(self, event: EventInfo) -> _Attempt:
        """START now; END and REPORT when the handler returns or raises."""
        return _Attempt(self._write, event.request_id)

    def __repr__(self) -> str:
        return "LambdaLogs()"


class _Attempt:
    __slots__ = ("_request_id", "_started", "_write")

    def __init__(self, write: Callable[[str], Any], request_id: str) -> None:
        self._write = write
        self._request_id = request_id
        self._started = 0.0

    async def __aenter__(self) -> None:
        self._write(TailLog.start(self._request_id))
        self._started = time.perf_counter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        duration = time.perf_counter() - self._started
        error_type: str | None = None
        if exc is not None:
            error = _classify(exc, self._request_id)
            if error is None:
                error_type = _TIMED_OUT
            else:
                error_type = error.get("errorType")
                self._write(TailLog.unhandled(error))
        for line in TailLog.end(self._request_id, duration, error_type):
            self._write(line)


def _classify(exc: BaseException, request_id: str) -> dict[str, Any] | None:
    """The error object of what the handler raised, or None when the attempt was cut short."""
    try:
        return function_error(exc, request_id)
    except BaseException:
        # raised again: a cancellation (the attempt's timeout or the app stopping) or an
        # interrupt, none of them the handler's own error
        return None

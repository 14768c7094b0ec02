"""The log of one synchronous attempt, as Lambda returns it with ``LogType: Tail``.

A handler's ``context.log`` during a ``RequestResponse`` invocation is a :class:`TailLog`:
it logs through the app's structlog logger as usual and also keeps a plain-text copy in
Lambda's CloudWatch format (START / the handler's lines / END / REPORT), which
``InvocationResult.log`` carries and the Lambda API returns base64-encoded.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

try:
    import resource
except ImportError:  # Windows has no getrusage
    resource = None  # type: ignore[assignment]

__all__ = ("TailLog", "log_line", "max_memory_used_mb", "message_text")

# the indentation Lambda's Python runtime gives a stack trace's lines in the log
_TRACE_INDENT = "\u00a0"


def max_memory_used_mb() -> int:
    """This process's peak resident memory so far, in MB (REPORT's ``Max Memory Used``)."""
    if resource is None:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes
    per_mb = 1024 * 1024 if sys.platform == "darwin" else 1024
    return max(1, math.ceil(peak / per_mb))


def _stamp() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def message_text(event: str, kw: dict[str, Any]) -> str:
    """A log entry's message as the lines show it: the event, then ``key=value`` pairs."""
    extras = " ".join(f"{k}={v!r}" for k, v in kw.items() if k != "exc_info")
    return f"{event} {extras}".rstrip()


def log_line(level: str, request_id: str, text: str) -> str:
    """A line of the Lambda Python runtime's log: ``[LEVEL]\t<time>\t<request ID>\t<text>``."""
    return f"[{level.upper()}]\t{_stamp()}\t{request_id}\t{text}"


class TailLog:
    """A bound logger that also records the lines of one attempt."""

    __slots__ = ("_inner", "_lines", "_request_id")

    def __init__(self, inner: Any, request_id: str, lines: list[str]) -> None:
        self._inner = inner
        self._request_id = request_id
        self._lines = lines

    def bind(self, **kw: Any) -> TailLog:
        return TailLog(self._inner.bind(**kw), self._request_id, self._lines)

    def _record(self, level: str, event: str, kw: dict[str, Any]) -> None:
        self._lines.append(log_line(level, self._request_id, message_text(event, kw)))

    def _log(self, level: str, event: str, kw: dict[str, Any]) -> Any:
        self._record(level, event, kw)
        return getattr(self._inner, level)(event, **kw)

    def debug(self, event: str, **kw: Any) -> Any:
        return self._log("debug", event, kw)

    def info(self, event: str, **kw: Any) -> Any:
        return self._log("info", event, kw)

    def warning(self, event: str, **kw: Any) -> Any:
        return self._log("warning", event, kw)

    warn = warning

    def error(self, event: str, **kw: Any) -> Any:
        return self._log("error", event, kw)

    def critical(self, event: str, **kw: Any) -> Any:
        return self._log("critical", event, kw)

    def exception(self, event: str, **kw: Any) -> Any:
        self._record("error", event, kw)
        return self._inner.exception(event, **kw)

    @staticmethod
    def start(request_id: str) -> str:
        return f"START RequestId: {request_id} Version: $LATEST"

    @staticmethod
    def unhandled(error: dict[str, Any]) -> str:
        """The runtime's line for an unhandled error: ``[ERROR] Type: message`` and the trace."""
        text = "[ERROR]"
        if error.get("errorType"):
            text += f" {error['errorType']}"
        if error.get("errorMessage"):
            text += f"{':' if error.get('errorType') else ''} {error['errorMessage']}"
        lines = [text]
        trace = error.get("stackTrace")
        if trace is not None:
            lines.append("Traceback (most recent call last):")
            for element in trace:
                for line in str(element).splitlines() or [""]:
                    stripped = line.lstrip(" ")
                    lines.append(_TRACE_INDENT * (len(line) - len(stripped)) + stripped)
        return "\n".join(lines)

    @staticmethod
    def end(request_id: str, duration_s: float, error_type: str | None) -> list[str]:
        """END and REPORT as Lambda writes them (the Python runtime's tab-separated fields).

        A handler's own exception adds no status to REPORT; a timeout or a runtime error
        (``Runtime.*``, e.g. the handler called ``sys.exit``) does.
        """
        ms = duration_s * 1000
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(ms))} ms\tMemory Size: 128 MB\t"
            f"Max Memory Used: {max_memory_used_mb()} MB\t"
        )
        if error_type == "Sandbox.Timedout":
            report += "Status: timeout"
        elif error_type is not None and error_type.startswith("Runtime."):
            report += f"Status: error\tError Type: {error_type}"
        return [f"END RequestId: {request_id}", report]

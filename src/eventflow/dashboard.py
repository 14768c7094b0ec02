"""A live dashboard of an App: a recorder middleware and the ASGI app that serves its page.

``eventflow serve`` installs one and serves it at ``/_eventflow/``. Elsewhere::

    app = eventflow.App(...)
    dashboard = Dashboard(app)        # adds itself to the app's middleware
    # serve `dashboard` (an ASGI app) at /_eventflow, e.g. with Starlette's Mount

The page is one static HTML file with its CSS and JavaScript inline (no CDN, no build
step), which polls the JSON of ``/_eventflow/api/stats`` about once a second. What the
recorder keeps is bounded: the latest failures (a ring), the retries it watches, and the
recent log lines (a :class:`LogRing`, which a structlog processor chain feeds).

=======================================  ===============================================
path (under the prefix)                  answer
=======================================  ===============================================
``/``                                    the page (``text/html``)
``/api/stats``                           :meth:`Dashboard.snapshot` as JSON
``/api/logs?request_id=ID&limit=N``      the recent log lines of one request ID (all
                                         request IDs without it), oldest first
=======================================  ===============================================
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib import resources
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, quote

import structlog

from ._asgi import Receive as _Receive
from ._asgi import Reply, send_reply
from ._asgi import Scope as _Scope
from ._asgi import Send as _Send
from ._contracts import Outcome
from ._errors import ConfigurationError
from ._middleware import EventInfo, Middleware
from ._records import wall_time_iso

if TYPE_CHECKING:
    from ._app import App

__all__ = ("PREFIX", "SCHEMA_VERSION", "Dashboard", "LogRing", "RingStatistics")


#: Where ``eventflow serve`` serves the dashboard.
PREFIX: Final = "/_eventflow"
#: The version of the ``/api/stats`` JSON; it changes when a field changes meaning.
SCHEMA_VERSION: Final = 1
# a log value or error message longer than this is cut, so the rings stay bounded in bytes
_MAX_TEXT = 2000
_MAX_TRACE_LINES = 20
# seconds past its due time after which a retry on a shared queue is taken to run elsewhere
_STALE = 300.0


@dataclass(frozen=True)
class RingStatistics:
    """A snapshot of a bounded ring.

    Attributes:
        capacity: Entries it holds at most.
        size: Entries it holds now.
        recorded: Entries recorded since it was made.
        dropped: Entries pushed out by newer ones (``recorded - size``).
    """

    capacity: int
    size: int
    recorded: int
    dropped: int


def _text(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _plain(value: object) -> object:
    """A JSON-safe, size-bounded copy of a log value."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return _text(value)


class LogRing:
    """The latest log entries, bounded: a structlog processor that keeps a copy of each.

    Put it in a processor chain before the renderer (``eventflow serve`` does); it passes
    the entry on unchanged. Each kept entry is a dict of JSON-safe values (strings cut at
    2,000 characters, an exception as its formatted text under ``exception``). Handler
    threads log too, so it takes a lock.

    Args:
        capacity: Entries kept; the oldest is dropped for a new one.
    """

    def __init__(self, capacity: int = 5_000) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ConfigurationError(f"LogRing capacity must be an integer ≥ 1, got {capacity!r}.")
        self._lines: deque[dict[str, object]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._recorded = 0

    def __call__(self, logger: object, method_name: str, event_dict: Any) -> Any:
        entry: MutableMapping[str, Any] = dict(event_dict)
        if entry.get("exc_info"):
            entry = structlog.processors.format_exc_info(logger, method_name, entry)
        entry.pop("exc_info", None)
        line = {str(k): _plain(v) for k, v in entry.items()}
        with self._lock:
            self._lines.append(line)
            self._recorded += 1
        return event_dict

    def lines(self, request_id: str | None = None, limit: int = 500) -> list[dict[str, object]]:
        """The latest ``limit`` kept entries (of ``request_id`` only, if given), oldest first."""
        with self._lock:
            kept = list(self._lines)
        if request_id is not None:
            kept = [line for line in kept if line.get("request_id") == request_id]
        return kept[-limit:] if limit > 0 else []

    def statistics(self) -> RingStatistics:
        """A snapshot of the ring's size and counters."""
        with self._lock:
            size, recorded = len(self._lines), self._recorded
        capacity = self._lines.maxlen
        assert capacity is not None
        return RingStatistics(capacity, size, recorded, recorded - size)


class _Handler:
    """The counters of one handler."""

    __slots__ = (
        "attempts",
        "dead_lettered",
        "errors",
        "failed",
        "received",
        "running",
        "succeeded",
        "undelivered",
    )

    def __init__(self) -> None:
        self.received = self.succeeded = self.failed = self.undelivered = 0
        self.dead_lettered = self.attempts = self.errors = self.running = 0


class _Attempt(AbstractAsyncContextManager[None]):
    """The recorder's context around one handler call."""

    __slots__ = ("_dashboard", "_info")

    def __init__(self, dashboard: Dashboard, info: EventInfo) -> None:
        self._dashboard = dashboard
        self._info = info

    async def __aenter__(self) -> None:
        self._dashboard._attempt_started(self._info)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._dashboard._attempt_ended(self._info, exc)


class Dashboard(Middleware):
    """The live dashboard of ``app``: it records through the app's middleware hooks and is
    the ASGI app that serves the page and its JSON under :data:`PREFIX`.

    Making one adds it to ``app``'s middleware (:meth:`eventflow.App.add_middleware`),
    so it must be made before the app starts. It never reads the engine's state: the
    per-handler counters come from the hooks, the app-wide ones from
    :meth:`eventflow.App.stats`.

    Args:
        app: The App to show.
        logs: The ring of log lines the page links each failure to; ``None`` for none
            (the links then answer an empty list).
        failures: Latest failed attempts kept.
        max_watched: Scheduled retries watched at once (for the per-minute chart of due
            times); the oldest is dropped for a new one, and counted in ``retries.unwatched``.
        horizon: Minutes of the chart of scheduled retries.
        prefix: The path the dashboard is served under.

    Raises:
        RuntimeError: ``app`` has started.
    """

    def __init__(
        self,
        app: App,
        *,
        logs: LogRing | None = None,
        failures: int = 50,
        max_watched: int = 100_000,
        horizon: int = 10,
        prefix: str = PREFIX,
    ) -> None:
        for name, value in (("failures", failures), ("max_watched", max_watched)):
            if not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"Dashboard {name} must be an integer ≥ 1, got {value!r}.")
        if not isinstance(horizon, int) or not 1 <= horizon <= 120:
            raise ConfigurationError(
                f"Dashboard horizon must be a whole number of minutes from 1 to 120, got "
                f"{horizon!r}."
            )
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ConfigurationError(
                f"Dashboard prefix must start with '/' and not end with one, got {prefix!r}."
            )
        self.app = app
        self.logs = logs
        self.prefix = prefix
        self._horizon = horizon
        self._handlers: dict[str, _Handler] = {}
        self._failures: deque[dict[str, object]] = deque(maxlen=failures)
        self._failures_recorded = 0
        # request ID -> (handler, due time on the app's clock) of each retry waiting to run
        self._watched: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max_watched = max_watched
        self._unwatched = 0
        self._started = time.time()
        self._page = resources.files("eventflow").joinpath("dashboard.html").read_bytes()
        self._csp = _content_security_policy(self._page)
        app.add_middleware(self)

    # -- the hooks (on the event loop) ---------------------------------------------------

    def _of(self, name: str) -> _Handler:
        counters = self._handlers.get(name)
        if counters is None:
            counters = self._handlers[name] = _Handler()
        return counters

    def accepted(self, event: EventInfo) -> None:
        self._of(event.handler).received += 1

    def attempt(self, event: EventInfo) -> AbstractAsyncContextManager[None]:
        return _Attempt(self, event)

    def _attempt_started(self, info: EventInfo) -> None:
        counters = self._of(info.handler)
        counters.attempts += 1
        counters.running += 1
        self._watched.pop(info.request_id, None)

    def _attempt_ended(self, info: EventInfo, exc: BaseException | None) -> None:
        self._of(info.handler).running -= 1

    def attempt_failed(self, event: EventInfo, error: Mapping[str, Any]) -> None:
        # the engine's own error object: function errors, timeouts, results JSON cannot carry
        self._failed_attempt(event.handler, event.request_id, event.attempt, error, time.time())

    def retry_scheduled(self, event: EventInfo, delay: float) -> None:
        self._watched.pop(event.request_id, None)
        if len(self._watched) >= self._max_watched:
            self._watched.popitem(last=False)  # the oldest: on a shared queue, likely run elsewhere
            self._unwatched += 1
        self._watched[event.request_id] = (event.handler, event.now + delay)

    def finished(self, event: EventInfo, outcome: Outcome) -> None:
        counters = self._of(event.handler)
        self._watched.pop(event.request_id, None)
        if outcome is Outcome.SUCCEEDED:
            counters.succeeded += 1
        elif outcome is Outcome.FAILED:
            counters.failed += 1
            if self._dead_letter_of(event.handler):
                counters.dead_lettered += 1
        else:
            counters.undelivered += 1

    def _dead_letter_of(self, handler: str) -> bool:
        try:
            return self.app.handler_config(handler).dead_letter is not None
        except LookupError:
            return False

    def _failed_attempt(
        self, handler: str, request_id: str, attempt: int, error: Mapping[str, Any], when: float
    ) -> None:
        self._of(handler).errors += 1
        trace = [_text(line) for line in error.get("stackTrace", ())[-_MAX_TRACE_LINES:]]
        self._failures.append(
            {
                "time": wall_time_iso(when),
                "handler": handler,
                "request_id": request_id,
                "attempt": attempt,
                "error_type": _text(error.get("errorType", "")),
                "error_message": _text(error.get("errorMessage", "")),
                "stack_trace": trace,
                "logs": f"{self.prefix}/api/logs?request_id={quote(request_id, safe='')}",
            }
        )
        self._failures_recorded += 1

    # -- the data ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What the page shows, as ``/api/stats`` answers it (the README's Dashboard
        section documents each field)."""
        app = self.app
        stats = dataclasses.asdict(app.stats())
        now = app.clock.now()
        names = sorted({*app.handlers, *self._handlers})
        retrying = dict.fromkeys(names, 0)
        buckets = [0] * self._horizon
        overdue = later = 0
        if app.queue is not None:
            # a retry handed back to a shared queue may run in another process: forget it
            # once it is long overdue here
            stale = [rid for rid, (_, due) in self._watched.items() if due < now - _STALE]
            for rid in stale:
                del self._watched[rid]
            self._unwatched += len(stale)
        for handler, due in self._watched.values():
            retrying[handler] = retrying.get(handler, 0) + 1
            wait = due - now
            if wait < 0:
                overdue += 1
            elif wait >= 60 * self._horizon:
                later += 1
            else:
                buckets[int(wait // 60)] += 1
        handlers = []
        for name in names:
            c = self._handlers.get(name) or _Handler()
            handlers.append(
                {
                    "name": name,
                    "received": c.received,
                    "succeeded": c.succeeded,
                    "failed": c.failed,
                    "retrying": retrying.get(name, 0),
                    "dead_lettered": c.dead_lettered,
                    "undelivered": c.undelivered,
                    "running": c.running,
                    "attempts": c.attempts,
                    "errors": c.errors,
                }
            )
        queue = dataclasses.asdict(app.queue_statistics())
        kept = len(self._failures)
        failures = {
            "capacity": self._failures.maxlen,
            "size": kept,
            "recorded": self._failures_recorded,
            "dropped": self._failures_recorded - kept,
            "latest": list(reversed(self._failures)),
        }
        logs = dataclasses.asdict(self.logs.statistics()) if self.logs is not None else None
        return {
            "schema": SCHEMA_VERSION,
            "app": app.name,
            "time": wall_time_iso(),
            "uptime_s": round(time.time() - self._started, 3),
            "totals": stats,
            "queue": {
                "queued": stats["queued"],
                "in_flight": stats["in_flight"],
                "scheduled": stats["scheduled"],
                "maxsize": queue["maxsize"],
                "concurrency": app.concurrency,
            },
            "handlers": handlers,
            "retries": {
                "bucket_s": 60,
                "buckets": buckets,
                "overdue": overdue,
                "later": later,
                "watched": len(self._watched),
                "unwatched": self._unwatched,
            },
            "failures": failures,
            "logs": logs,
        }

    # -- the ASGI app --------------------------------------------------------------------

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        """Serve the page and its JSON; paths outside :attr:`prefix` answer 404."""
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to start, nothing to serve
        path: str = scope["path"]
        method: str = scope["method"]
        sub = path[len(self.prefix) :] if _under(path, self.prefix) else None
        if method not in ("GET", "HEAD"):
            await _reply(send, method, 405, _json({"message": "The dashboard answers GET only."}))
        elif sub == "":
            # the page's links are relative: they need the trailing slash
            location = (self.prefix + "/").encode()
            await _reply(send, method, 308, b"", (b"location", location))
        elif sub == "/":
            await _reply(
                send,
                method,
                200,
                self._page,
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-security-policy", self._csp),
            )
        elif sub == "/api/stats":
            await _reply(send, method, 200, _json(self.snapshot()))
        elif sub == "/api/logs":
            await self._logs(scope, send)
        else:
            message = f"No dashboard page at {path!r}; the dashboard is at {self.prefix}/."
            await _reply(send, method, 404, _json({"message": message}))

    async def _logs(self, scope: _Scope, send: _Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        request_id = query.get("request_id", [None])[-1]
        limit_text = query.get("limit", ["500"])[-1]
        if not limit_text.isdigit():
            message = f"limit must be a whole number of lines, got {limit_text!r}."
            await _reply(send, scope["method"], 400, _json({"message": message}))
            return
        limit = min(int(limit_text), 5_000)
        lines = self.logs.lines(request_id, limit) if self.logs is not None else []
        stats = dataclasses.asdict(self.logs.statistics()) if self.logs is not None else None
        body = {"request_id": request_id, "lines": lines, "statistics": stats}
        await _reply(send, scope["method"], 200, _json(body))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _json(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def _reply(
    send: _Send, method: str, status: int, body: bytes, *headers: tuple[bytes, bytes]
) -> None:
    given = {name for name, _ in headers}
    fixed = [
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if b"content-type" not in given:
        fixed.append((b"content-type", b"application/json"))
    await send_reply(send, Reply(status, b"" if method == "HEAD" else body, (*headers, *fixed)))


def _content_security_policy(page: bytes) -> bytes:
    """Only the page's own inline script and style may run: their hashes, nothing else."""

    def hashes(tag: bytes) -> str:
        found = re.findall(rb"<" + tag + rb">(.*?)</" + tag + rb">", page, re.DOTALL)
        digests = (base64.b64encode(hashlib.sha256(text).digest()).decode() for text in found)
        return " ".join(f"'sha256-{d}'" for d in digests)

    return (
        f"default-src 'none'; script-src {hashes(b'script')}; style-src {hashes(b'style')}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ).encode()

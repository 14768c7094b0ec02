"""``eventflow serve``: run an App and serve Lambda's Invoke API (and SNS endpoints) over HTTP.

``MODULE:APP`` names an :class:`eventflow.App` (like uvicorn's import string). The App runs
with its sources; :class:`eventflow.http.LambdaAPI` is served at ``/``, and every
:class:`eventflow.aws.SNSEndpoint` found as a module-level attribute of MODULE is served
at ``/sns/<attribute name>`` (``orders = SNSEndpoint(app, ...)`` → ``/sns/orders``).

Health: ``GET /healthz`` answers 200 while the App runs and 503 once it drains.

Dashboard: ``/_eventflow/`` is a live page of the App (per handler: received, succeeded,
failed, retrying, dead-lettered; queue depth and attempts in flight; the retries due in
the next minutes; the latest failures, each linked to its log lines), updated every
second; its data is JSON at ``/_eventflow/api/stats``, and the recent log lines of a
request at ``/_eventflow/api/logs?request_id=ID``. It has no authentication: it is on by
default on a loopback address only (``--dashboard`` / ``--no-dashboard`` decide).

Metrics: ``GET /metrics`` answers the Prometheus metrics of the App's
:class:`eventflow.metrics.PrometheusMetrics` middleware (``pip install
'eventflow[metrics]'``), without authentication like ``/healthz``; without the extra or the
middleware it answers 404 with what to do.

Shutdown: on SIGTERM or SIGINT ``/healthz`` answers 503 at once, and the server keeps
serving until no request is open (at most the App's ``shutdown_timeout``), so a load
balancer that polls it stops sending new work first; then uvicorn stops accepting
requests and finishes the open ones, the App drains (up to its ``shutdown_timeout``) and
spills what is left, and the process exits 0. A second signal stops at once. Logs, one
line per entry, go to stdout.

Binding to an address other than loopback requires SigV4 credentials
(``--credentials-env`` reads ``EVENTFLOW_ACCESS_KEY_ID`` and
``EVENTFLOW_SECRET_ACCESS_KEY``), or ``--insecure`` to serve without authentication.

Limits against slow or hostile clients: at most ``--limit-concurrency`` connections and
requests at once (more are answered 503); a request head (line and headers) refused once
it is still incomplete past 16 KiB, and closed unless it is received within 10 s of the
connection opening or of the previous answer; idle keep-alive connections closed after
5 s; request bodies bounded by the Lambda API (30 s to arrive, 64 MiB held at once); and,
on SIGTERM, requests still open after ``--graceful-timeout`` seconds are cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import ipaddress
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import FrameType, ModuleType
from typing import Any

import anyio
import structlog

from ._app import App
from ._asgi import ASGIApp, Reply, json_reply, send_reply
from ._cli_common import (
    CommandError,
    add_log_options,
    configure_logging,
    describe,
    lambda_logs,
    load_app,
    retry_delays,
)
from .dashboard import PREFIX as DASHBOARD_PREFIX
from .dashboard import Dashboard, LogRing

__all__ = (
    "HEALTH_PATH",
    "METRICS_PATH",
    "Health",
    "Router",
    "add_parser",
    "find_sns_endpoints",
    "is_loopback",
    "metrics_endpoint",
    "server_config",
)

ACCESS_KEY_ENV = "EVENTFLOW_ACCESS_KEY_ID"
SECRET_KEY_ENV = "EVENTFLOW_SECRET_ACCESS_KEY"
SNS_PREFIX = "/sns/"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"

#: Connections and requests at once; more are answered 503, which AWS SDKs retry. A
#: RequestResponse call holds one for its handler's run; uvicorn buffers at most 64 KiB
#: of a body per connection, and the Lambda API bounds what it holds across them.
DEFAULT_LIMIT_CONCURRENCY = 1000
#: Seconds requests may still run after SIGTERM before uvicorn cancels them.
DEFAULT_GRACEFUL_TIMEOUT = 30.0
# SDKs reuse a pooled connection within a second or two; an idle one costs a socket
TIMEOUT_KEEP_ALIVE = 5
# a request head still incomplete past this many bytes is refused (400): h11 holds no more.
# A SigV4-signed head is under 2 KiB; this is h11's default, made explicit
MAX_HEAD_BYTES = 16 * 1024
# uvicorn has no time limit on a request head: this one closes a connection that trickles it
HEAD_TIMEOUT = 10.0


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything


def credentials_from_env(environ: Mapping[str, str]) -> tuple[str, str]:
    """The access key ID and secret for the SigV4 check, from the environment."""
    key, secret = environ.get(ACCESS_KEY_ENV), environ.get(SECRET_KEY_ENV)
    if not key or not secret:
        raise CommandError(
            f"--credentials-env needs both {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} set."
        )
    return key, secret


def find_sns_endpoints(module: ModuleType, app: App) -> dict[str, Any]:
    """The module's SNSEndpoint attributes, by URL path (``/sns/<attribute name>``)."""
    sns_http = sys.modules.get("eventflow.aws._sns_http")
    if sns_http is None:  # the module made no SNSEndpoint, so AWS code need not load
        return {}
    found: dict[str, Any] = {}
    for name, value in sorted(vars(module).items()):
        if isinstance(value, sns_http.SNSEndpoint):
            # SNSEndpoint keeps these private; see the report for a public accessor
            if value.app is not app:
                raise CommandError(
                    f"SNSEndpoint {name!r} in {module.__name__!r} belongs to another App; "
                    "create it with the App that serve runs."
                )
            if value.handler_name not in app.handlers:
                raise CommandError(
                    f"SNSEndpoint {name!r} invokes {value.handler_name!r}, which the App "
                    "does not serve."
                )
            found[SNS_PREFIX + name] = value
    return found


class Router:
    """A minimal ASGI router: SNS endpoints and ``/metrics`` by exact path, the dashboard by
    path prefix (the prefix itself and every path under it), everything else to ``default``.

    ``lifespan`` goes to ``default`` (the Lambda API), with the mounts entered around it
    (an SNS endpoint's certificate fetches live in it); the SNS endpoints' start-up check
    (their handler exists) is made before serving.
    """

    def __init__(
        self,
        default: ASGIApp,
        mounts: Mapping[str, ASGIApp],
        prefixes: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.default = default
        self.mounts = dict(mounts)
        self.prefixes = dict(prefixes or {})

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            target = self.mounts.get(path.rstrip("/"))
            if target is None:
                target = next(
                    (a for p, a in self.prefixes.items() if path == p or path.startswith(p + "/")),
                    None,
                )
            if target is not None:
                await target(scope, receive, send)
                return
        elif scope["type"] == "lifespan":
            async with AsyncExitStack() as mounts:
                for mount in self.mounts.values():
                    if isinstance(mount, AbstractAsyncContextManager):
                        await mounts.enter_async_context(mount)
                await self.default(scope, receive, send)
            return
        await self.default(scope, receive, send)


class Health:
    """ASGI middleware: ``/healthz`` answers 200, or 503 once :meth:`drain` was called.

    Every other request goes to ``inner``; the ones still open are counted, so that a
    shutdown can wait for them (:meth:`wait_idle`) while ``/healthz`` already says 503.
    """

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner
        self.draining = False
        self.open_requests = 0
        self._idle: anyio.Event | None = None

    def drain(self) -> None:
        """From now on ``/healthz`` answers 503."""
        self.draining = True

    async def wait_idle(self) -> None:
        """Return once no request other than ``/healthz`` is open."""
        while self.open_requests:
            self._idle = anyio.Event()
            await self._idle.wait()

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
        elif scope["path"] == HEALTH_PATH:
            await self._answer(scope, send)
        else:
            self.open_requests += 1
            try:
                await self.inner(scope, receive, send)
            finally:
                self.open_requests -= 1
                if not self.open_requests and self._idle is not None:
                    self._idle.set()

    async def _answer(
        self,
        scope: MutableMapping[str, Any],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            status, body = 405, {"message": f"{HEALTH_PATH} answers GET and HEAD only."}
        elif self.draining:
            status, body = 503, {"status": "draining"}
        else:
            status, body = 200, {"status": "running"}
        reply = json_reply(status, body)
        if scope["method"] == "HEAD":  # the GET's headers, no body
            reply = dataclasses.replace(reply, body=b"")
        await send_reply(send, reply)


def _plain_answer(status: int, text: str) -> ASGIApp:
    """An ASGI app that answers every request with ``status`` and ``text``."""
    data = text.encode()

    async def answer(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        headers = (
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(data)),
        )
        await send_reply(send, Reply(status, data, headers))

    return answer


def metrics_endpoint(app: App) -> ASGIApp:
    """``/metrics``: the app's PrometheusMetrics, or a 404 that says how to get them."""
    try:
        from .metrics import asgi_app
    except ImportError as exc:  # prometheus_client is an optional extra
        return _plain_answer(
            404,
            f"No metrics here: {exc}. Install the metrics extra (pip install "
            "'eventflow[metrics]') and give the app App(middleware=[PrometheusMetrics()]) "
            "(from eventflow.metrics).\n",
        )
    endpoint = asgi_app(app.middleware)
    if endpoint is None:
        return _plain_answer(
            404,
            f"No metrics here: the app {app.name!r} has no PrometheusMetrics middleware. "
            "Create it with App(middleware=[PrometheusMetrics()]) "
            "(from eventflow.metrics import PrometheusMetrics).\n",
        )
    return endpoint


def _lambda_api(app: App, credentials: tuple[str, str] | None) -> ASGIApp:
    from .http import LambdaAPI

    # the API's function ARNs are the App's own: it takes them from the App
    api: ASGIApp = LambdaAPI(app, credentials=credentials)
    return api


def server_config(
    asgi: ASGIApp,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    access_log: bool = True,
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY,
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    head_timeout: float = HEAD_TIMEOUT,
) -> Any:
    """The ``uvicorn.Config`` that ``eventflow serve`` runs ``asgi`` with: its limits.

    uvicorn's h11 protocol is used (not httptools) so that the head size bound holds,
    with a timer that closes a connection whose request head has not arrived within
    ``head_timeout`` seconds of the connection opening or of the previous answer.
    """
    import uvicorn

    return uvicorn.Config(
        asgi,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        http=_head_timeout_protocol(head_timeout),
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=TIMEOUT_KEEP_ALIVE,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_graceful_shutdown=math.ceil(graceful_timeout),
    )


@functools.cache
def _head_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection that sends no whole head in time."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
            self.head_timer = self.loop.call_later(seconds, self._expire, self.cycle)

        def _expire(self, cycle: Any) -> None:
            # no new request since the timer was armed, and none running (pipelined)
            waiting = self.cycle is cycle and (cycle is None or cycle.response_complete)
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return HeadTimeoutProtocol


def _draining_server(config: Any, health: Health, drain: Callable[[], object]) -> Any:
    """A uvicorn server whose first SIGTERM/SIGINT starts a drain instead of stopping."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.signals: list[int] = []

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.signals.append(sig)
            if not health.draining:
                health.drain()
                drain()
            elif self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a third Ctrl-C: uvicorn's own convention
            else:
                self.should_exit = True

    return DrainingServer(config)


async def _stop_when_idle(
    server: Any, health: Health, requested: anyio.Event, timeout: float
) -> None:
    await requested.wait()
    # /healthz says 503 now; the open requests may finish before uvicorn closes the port
    with anyio.move_on_after(timeout):
        await health.wait_idle()
    server.should_exit = True


async def _serve(app: App, asgi: ASGIApp, args: argparse.Namespace) -> int:
    log = structlog.get_logger("eventflow.serve")
    loop = asyncio.get_running_loop()
    health = Health(asgi)
    requested = anyio.Event()
    config = server_config(
        health,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        # uvicorn's access lines are plain text on stdout: keep stdout pure JSON when asked
        access_log=args.log_format == "console",
        limit_concurrency=args.limit_concurrency,
        graceful_timeout=args.graceful_timeout,
    )
    # the signal handler runs between bytecodes: it may only schedule the event's set
    server = _draining_server(config, health, lambda: loop.call_soon_threadsafe(requested.set))
    signals: list[int] = server.signals

    def remember(sig: int, frame: FrameType | None) -> None:
        # a signal outside uvicorn's serve (start-up, the App's drain) stops the server too
        signals.append(sig)
        health.drain()
        server.should_exit = True

    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        async with app, anyio.create_task_group() as tg:
            if args.retry_delays is not None:
                for name in app.handlers:
                    await app.configure_handler(name, retry_delays=args.retry_delays)
            log.info("serve.started", app=app.name, host=args.host, port=args.port)
            tg.start_soon(_stop_when_idle, server, health, requested, app.shutdown_timeout)
            await server.serve()
            tg.cancel_scope.cancel()
            names = [signal.Signals(s).name for s in signals]
            log.info("serve.draining", app=app.name, signals=names, **_counts(app))
        log.info("serve.stopped", app=app.name, **_counts(app))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        return 1
    return 128 + signal.SIGINT if signal.SIGINT in signals else 0  # 130 after Ctrl-C


def _counts(app: App) -> dict[str, int]:
    s = app.stats()
    return {
        "received": s.received,
        "succeeded": s.succeeded,
        "failed": s.failed,
        "undelivered": s.undelivered,
        "queued": s.queued,
        "in_flight": s.in_flight,
        "scheduled": s.scheduled,
    }


def _cmd(args: argparse.Namespace) -> int:
    credentials = credentials_from_env(os.environ) if args.credentials_env else None
    if credentials is None and not args.insecure and not is_loopback(args.host):
        raise CommandError(
            f"Refusing to serve on {args.host!r} without credentials: anyone who can reach it "
            "could invoke your handlers. Pass --credentials-env (with "
            f"{ACCESS_KEY_ENV} and {SECRET_KEY_ENV} set) or --insecure."
        )
    dashboard = args.dashboard if args.dashboard is not None else is_loopback(args.host)
    logs = LogRing() if dashboard else None
    configure_logging(args.log_level, args.log_format, stream=sys.stdout, tap=logs)
    app, module = load_app(args.app)
    if args.log_format == "lambda":
        # START and REPORT say what attempt.started and attempt.succeeded would
        app.add_middleware(lambda_logs(sys.stdout))
    else:
        app.log_success = True  # a person reads these lines
    mounts = find_sns_endpoints(module, app)
    mounts[METRICS_PATH] = metrics_endpoint(app)
    prefixes: dict[str, ASGIApp] = {}
    if dashboard:
        prefixes[DASHBOARD_PREFIX] = Dashboard(app, logs=logs)
    api = _lambda_api(app, credentials)
    asgi = Router(api, mounts, prefixes)
    return asyncio.run(_serve(app, asgi, args))


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    p = sub.add_parser(
        "serve",
        help="run an App and serve the Lambda Invoke API over HTTP",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "app", metavar="MODULE:APP", help="the eventflow.App, e.g. examples.demo_lambda:app"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=9000, help="port (9000)")
    p.add_argument(
        "--credentials-env",
        action="store_true",
        help=f"check SigV4 signatures with {ACCESS_KEY_ENV} / {SECRET_KEY_ENV}",
    )
    p.add_argument(
        "--limit-concurrency",
        type=_positive_int,
        default=DEFAULT_LIMIT_CONCURRENCY,
        help=f"connections and requests at once; more are answered 503 "
        f"({DEFAULT_LIMIT_CONCURRENCY})",
    )
    p.add_argument(
        "--graceful-timeout",
        type=_positive_float,
        default=DEFAULT_GRACEFUL_TIMEOUT,
        help="seconds open requests may run after SIGTERM before they are cancelled "
        f"({DEFAULT_GRACEFUL_TIMEOUT:g})",
    )
    p.add_argument(
        "--retry-delays",
        type=retry_delays,
        default=None,
        metavar="SECONDS,...",
        help="every handler's retry delays, e.g. 1,2 for a local run instead of Lambda's "
        "60,120 (each handler's own by default)",
    )
    p.add_argument(
        "--dashboard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"serve the live dashboard at {DASHBOARD_PREFIX}/ (no authentication; by "
        "default on a loopback --host only)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback address without credentials (no authentication)",
    )
    add_log_options(p, formats=("console", "json", "lambda"))
    p.set_defaults(func=_cmd)

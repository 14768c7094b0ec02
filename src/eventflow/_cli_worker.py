"""``eventflow worker``: run an App's shared queue and sources in N processes on this machine.

``MODULE:APP`` names an :class:`eventflow.App` (like uvicorn's import string). Each worker
process imports it and runs it (``async with app:``), so its shared event queue
(``App(queue=SQSEventQueue(...))``) and its sources consume, until it is told to stop.
With ``--processes 1`` (the default) the App runs in this process.

Process model: with ``--processes N`` (N > 1) the command is a parent that starts N
worker processes, each a direct child running ``python -m eventflow worker MODULE:APP
--processes 1``; it logs their pids (``worker.children``) and runs no App itself. The
parent imports MODULE first, so a bad ``MODULE:APP`` exits 2 before any child starts.

Every worker process logs ``worker.stats`` (its pid and the App's counters) every
``--stats-interval`` seconds, and ``worker.stopped`` with the final counters.

Shutdown: on SIGTERM or SIGINT a worker stops taking events, drains (up to the App's
``shutdown_timeout``), releases or spills what is left and exits 0. The parent forwards
SIGTERM to every child, waits for them all, and exits 0 if every child exited 0.

A child that exits while not told to stop is logged at error level
(``worker.child_died``, with its exit code) and not restarted: the parent stops the other
children and exits 1, leaving restarts to your supervisor (systemd, Kubernetes, ...).
Logs, one line per entry, go to stdout (children share the parent's stdout).

Metrics: ``--metrics-port PORT`` serves the Prometheus metrics of the App's
:class:`eventflow.metrics.PrometheusMetrics` middleware at ``http://HOST:PORT/metrics``
(``--metrics-host``, 127.0.0.1 by default; ``pip install 'eventflow[metrics]'``). With
``--processes N`` it is one scrape for all the children: the parent makes a temporary
directory, hands it to them as ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode: each child writes its metrics to files there), serves their sum, forgets
the gauges of a child that exits, and removes the directory when it exits.

A parent that dies without stopping its children (SIGKILL, a crash) takes them with it:
each child stops as on SIGTERM (``worker.parent_exited``), so no orphan keeps consuming.
On Linux the kernel sends the child SIGTERM (``prctl(PR_SET_PDEATHSIG)``); everywhere, the
child also watches a pipe from the parent, whose end closes when the parent dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog

from ._app import App
from ._cli_common import (
    CommandError,
    add_log_options,
    configure_logging,
    describe,
    lambda_logs,
    load_app,
)

__all__ = ("add_parser",)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
INTERRUPTED = 130  # 128 + SIGINT: stopped with Ctrl-C, after draining
_SUPERVISE_POLL = 0.1  # seconds between the parent's checks of its children
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _counts(app: App) -> dict[str, Any]:
    counts: dict[str, Any] = dataclasses.asdict(app.stats())
    statistics = getattr(app.queue, "statistics", None)
    if callable(statistics):  # a shared queue's own counters (sends, receives, deletes)
        counts["queue"] = dataclasses.asdict(statistics())
    return counts


def _die_with_parent() -> None:
    """On Linux, have the kernel send this process SIGTERM when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    # no prctl (an unusual libc): the parent pipe still tells this child
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


async def _run_app(
    app: App, stats_interval: float, worker: int, parent_pipe: int | None = None
) -> int:
    """Run ``app`` until SIGTERM or SIGINT, logging its counters every ``stats_interval``.

    ``parent_pipe``: the read end of a pipe whose write end only the parent holds; its
    end of file means the parent is gone, and stops the app as SIGTERM does.
    """
    log = structlog.get_logger("eventflow.worker").bind(pid=os.getpid(), worker=worker)
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    def on_parent_pipe() -> None:
        assert parent_pipe is not None
        try:
            if os.read(parent_pipe, 64):
                return  # the parent writes nothing; ignore it if it ever does
        except BlockingIOError:
            return
        except OSError:
            pass  # an error on the pipe: the parent is as good as gone
        loop.remove_reader(parent_pipe)
        log.warning("worker.parent_exited", detail="the parent process is gone; stopping")
        received.append("parent_exited")
        stop.set()

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    if parent_pipe is not None:
        loop.add_reader(parent_pipe, on_parent_pipe)
    try:
        async with app:
            log.info("worker.started", app=app.name)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=stats_interval)
                if not stop.is_set():
                    log.info("worker.stats", **_counts(app))
            log.info("worker.draining", app=app.name, signals=received, **_counts(app))
        log.info("worker.stopped", app=app.name, **_counts(app))
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        if parent_pipe is not None:
            loop.remove_reader(parent_pipe)
    return INTERRUPTED if "SIGINT" in received else 0


def _metrics_module(args: argparse.Namespace, app: App) -> Any:
    """eventflow.metrics, once ``--metrics-port`` is known to have something to serve."""
    try:
        from . import metrics
    except ImportError as exc:  # prometheus_client is an optional extra
        raise CommandError(
            f"--metrics-port needs the metrics extra ({exc}): pip install 'eventflow[metrics]'."
        ) from None
    if not metrics.registries(app.middleware):
        raise CommandError(
            f"--metrics-port has nothing to serve: the app {args.app!r} has no "
            "PrometheusMetrics middleware. Create it with App(middleware=[PrometheusMetrics()]) "
            "(from eventflow.metrics import PrometheusMetrics)."
        )
    return metrics


@contextlib.contextmanager
def _metrics_server(args: argparse.Namespace, serve: Any) -> Any:
    """Run ``serve(host, port)``'s HTTP server for the block, then shut it down."""
    server, thread = serve(args.metrics_host, args.metrics_port)
    log = structlog.get_logger("eventflow.worker").bind(pid=os.getpid())
    log.info("worker.metrics", url=f"http://{args.metrics_host}:{server.server_port}/metrics")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _child_command(args: argparse.Namespace, index: int, parent_pipe: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "eventflow",
        "worker",
        args.app,
        "--processes",
        "1",
        "--stats-interval",
        str(args.stats_interval),
        "--log-level",
        args.log_level,
        "--log-format",
        args.log_format,
        "--child",
        str(index),
        "--parent-pipe",
        str(parent_pipe),
    ]


def _supervise(args: argparse.Namespace, metrics: Any = None) -> int:
    """Start ``args.processes`` children, forward SIGTERM/SIGINT to them, and wait; with
    ``metrics`` (eventflow.metrics), serve one scrape of all of them meanwhile."""
    if metrics is None:
        return _supervise_children(args, None, None)
    folder = tempfile.mkdtemp(prefix="eventflow-metrics-")
    try:
        serve = functools.partial(metrics.serve_multiprocess, folder)
        with _metrics_server(args, serve):
            return _supervise_children(args, folder, metrics.process_exited)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _supervise_children(
    args: argparse.Namespace, folder: str | None, forget: Callable[[int, str], None] | None
) -> int:
    log = structlog.get_logger("eventflow.worker").bind(pid=os.getpid())
    env = None if folder is None else {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
    signals: list[int] = []

    def remember(sig: int, frame: FrameType | None) -> None:
        signals.append(sig)

    previous = {sig: signal.signal(sig, remember) for sig in _STOP_SIGNALS}
    children: list[subprocess.Popen[bytes]] = []
    died = False
    # the children hold the read end; the write end, never written, lives as long as this
    # process does, so its end of file tells them that their parent is gone
    pipe_read, pipe_write = os.pipe()
    try:
        for index in range(1, args.processes + 1):
            command = _child_command(args, index, pipe_read)
            children.append(subprocess.Popen(command, pass_fds=(pipe_read,), env=env))
        os.close(pipe_read)
        pipe_read = -1
        log.info("worker.children", app=args.app, children=[c.pid for c in children])
        while not signals:
            exited = [c for c in children if c.poll() is not None]
            if exited:
                for child in exited:
                    log.error("worker.child_died", child=child.pid, exit_code=child.returncode)
                died = True
                break
            time.sleep(_SUPERVISE_POLL)  # a signal is seen at the next check, <= 0.1 s on
        names = [signal.Signals(s).name for s in signals] or ["child_died"]
        log.info("worker.stopping", reason=names, children=[c.pid for c in children])
    finally:
        # forward the stop to every child still running, then wait for all of them
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        codes = {child.pid: child.wait() for child in children}
        if forget is not None and folder is not None:
            for child in children:
                forget(child.pid, folder)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for fd in (pipe_read, pipe_write):
            if fd >= 0:
                os.close(fd)
    failed = {pid: code for pid, code in codes.items() if code != 0}
    if failed and not died:
        for pid, code in failed.items():
            log.error("worker.child_failed", child=pid, exit_code=code)
    log.info("worker.exited", children=codes)
    if died or failed:
        return 1
    return INTERRUPTED if signal.SIGINT in signals else 0


def _nothing_to_consume(app: App) -> str | None:
    """Why ``app`` would sit idle in a worker, or None when it has work to take."""
    if app.sources:
        return None
    queue = app.queue
    if queue is not None and getattr(queue, "consume", True):
        return None
    if queue is None:
        return (
            "has no shared event queue and no sources, so a worker would wait forever: give "
            "it App(queue=SQSEventQueue(...)) or App(sources=[...]), or use 'eventflow serve'."
        )
    return (
        f"has a queue that does not consume ({queue!r}) and no sources, so a worker would "
        "wait forever: build its queue with consume=True in the worker's app."
    )


def _cmd(args: argparse.Namespace) -> int:
    if args.stats_interval <= 0:
        raise CommandError(f"--stats-interval must be positive seconds; got {args.stats_interval}.")
    if args.processes < 1:
        raise CommandError(f"--processes must be at least 1; got {args.processes}.")
    configure_logging(args.log_level, args.log_format, stream=sys.stdout)
    app, _ = load_app(args.app)  # in the parent too: a bad MODULE:APP exits 2 at once
    if args.log_format == "lambda":
        app.add_middleware(lambda_logs(sys.stdout))
    idle = _nothing_to_consume(app)
    if idle is not None:
        raise CommandError(f"The app {args.app!r} {idle}")
    serving = args.metrics_port is not None and args.child is None
    metrics = _metrics_module(args, app) if serving else None
    if args.processes > 1 and args.child is None:
        return _supervise(args, metrics)
    if args.child is not None:
        _die_with_parent()
    run = functools.partial(_run_app, app, args.stats_interval, args.child or 0, args.parent_pipe)
    if metrics is None:
        return asyncio.run(run())
    with _metrics_server(args, functools.partial(metrics.serve, app.middleware)):
        return asyncio.run(run())


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``worker``."""
    p = sub.add_parser(
        "worker",
        help="run an App's event queue and sources (SQS consumers) in one or more processes",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "app", metavar="MODULE:APP", help="the eventflow.App, e.g. myservice.handlers:app"
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="worker processes; above 1 each is a child of this command (1: run in-process)",
    )
    p.add_argument(
        "--stats-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between each process's worker.stats log line (10)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve the App's PrometheusMetrics at http://HOST:PORT/metrics, one scrape for "
        "all processes (needs eventflow[metrics])",
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address of the metrics server (127.0.0.1)",
    )
    add_log_options(p, formats=("console", "json", "lambda"))
    # set by the parent on the children it starts: the child's number, 1..N
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    # set by the parent too: the pipe whose end of file means the parent has died
    p.add_argument("--parent-pipe", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd)

"""What the ``eventflow`` subcommands share: usage errors, logging set-up, loading an App.

A :class:`CommandError` is a mistake on the command line (a bad ``MODULE:APP``, an unknown
handler, a payload that is not JSON); the command prints its sentence and exits with 2,
argparse's code for usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from types import ModuleType
from typing import Any, TextIO

import structlog

from ._app import App
from ._logging import REQUEST_ID, request_id_var
from .logs import LambdaLogs, LambdaRenderer, format_exc_info, plain_traceback, tracebacks

__all__ = (
    "CommandError",
    "add_log_options",
    "configure_logging",
    "describe",
    "lambda_logs",
    "load_app",
    "private_copy",
    "retry_delays",
)

USAGE_ERROR = 2
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class CommandError(Exception):
    """A usage mistake: the command prints the message and exits with status 2."""


def retry_delays(text: str) -> tuple[float, ...]:
    """``--retry-delays``: comma-separated positive seconds, such as ``1,2``."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--retry-delays takes comma-separated seconds such as 1,2; got {text!r}"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"--retry-delays must be positive seconds; got {text!r}")
    return values


def describe(doc: str | None) -> str | None:
    """A module docstring without its first line and reST markup, for ``--help``."""
    if not doc or "\n\n" not in doc:
        return doc
    body = doc.split("\n\n", 1)[1]
    body = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", body)  # :class:`eventflow.App` -> eventflow.App
    return body.replace("``", "")


def configure_logging(
    level: str,
    fmt: str,
    *,
    stream: TextIO | None = None,
    tap: structlog.typing.Processor | None = None,
) -> None:
    """Configure structlog for a command: ``fmt`` is ``json``, ``console`` or ``lambda``.

    ``lambda`` writes the Lambda runtime's lines (:class:`eventflow.logs.LambdaRenderer`)
    and routes the standard library's ``logging`` to the same lines and stream, as the
    Lambda Python runtime does; :func:`lambda_logs` gives the middleware that adds START,
    END and REPORT. ``tap`` is a processor that sees each entry before it is rendered (the
    dashboard's log ring).
    """
    out = stream if stream is not None else sys.stderr
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    elif fmt == "lambda":
        renderer = LambdaRenderer()
        _route_stdlib_logging(level, out)
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=plain_traceback
        )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([tap] if tap is not None else []),
            format_exc_info if fmt != "console" else (lambda _, __, e: e),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        # one write and flush per entry (line and newline together): a supervisor reading the
        # pipe sees it at once, and processes sharing it (worker children) never split a line
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )


def lambda_logs(stream: TextIO) -> LambdaLogs:
    """The START/END/REPORT middleware for ``--log-format lambda``, writing to ``stream``."""
    # a WriteLogger on the same stream shares structlog's lock for it: no interleaved lines
    return LambdaLogs(structlog.WriteLogger(stream).msg)


class _LambdaLogHandler(logging.Handler):
    """Standard library records as the Lambda runtime's lines, with the attempt's request ID."""

    def __init__(self, level: int, stream: TextIO) -> None:
        super().__init__(level)
        self._write = structlog.WriteLogger(stream).msg
        self._render = LambdaRenderer()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry: dict[str, Any] = {"event": record.getMessage(), "level": record.levelname}
            request_id = request_id_var.get()
            if request_id is not None:
                entry[REQUEST_ID] = request_id
            if record.exc_info:
                entry["exception"] = tracebacks.exc_info(record.exc_info)
            self._write(self._render(None, record.levelname.lower(), entry))
        except Exception:
            self.handleError(record)


def _route_stdlib_logging(level: str, out: TextIO) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _LambdaLogHandler)]:
        root.removeHandler(old)
    # the root logger's own level stays (WARNING unless the program sets it), as in Lambda
    root.addHandler(_LambdaLogHandler(getattr(logging, level.upper()), out))


def add_log_options(
    parser: argparse.ArgumentParser,
    *,
    default_level: str = "info",
    formats: tuple[str, ...] = ("console", "json"),
) -> None:
    """Add ``--log-level`` and ``--log-format`` (one of ``formats``) to a subcommand."""
    parser.add_argument(
        "--log-level", default=default_level, choices=LOG_LEVELS, help=f"({default_level})"
    )
    more = (
        "; lambda: START / the handler's lines / END / REPORT per attempt, as CloudWatch shows them"
        if "lambda" in formats
        else ""
    )
    parser.add_argument("--log-format", default="console", choices=formats, help=f"(console){more}")


def load_app(spec: str) -> tuple[App, ModuleType]:
    """Import the :class:`eventflow.App` named by ``MODULE:ATTRIBUTE`` (as uvicorn does).

    The current directory is importable, so ``examples.demo_lambda:app`` works from a
    checkout. Dotted attributes (``module:factory.app``) are followed.

    Raises:
        CommandError: the string is malformed, the module cannot be imported, the
            attribute is missing or it is not an App.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CommandError(f"Expected MODULE:APP such as 'myservice.handlers:app', got {spec!r}.")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules in the current directory import
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise CommandError(
                f"Could not import module {module_name!r}: no module named {exc.name!r} "
                "(run the command from the directory that contains it)."
            ) from None
        raise  # the module exists but one of its own imports failed: show the traceback
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CommandError(
                f"Module {module_name!r} has no attribute {attr!r}; "
                "name the eventflow.App object, e.g. 'module:app'."
            ) from None
    if not isinstance(obj, App):
        raise CommandError(
            f"{spec!r} is a {type(obj).__name__}, not an eventflow.App; "
            "name the object created with eventflow.App(...)."
        )
    return obj, module


def private_copy(app: App) -> App:
    """An in-memory app with ``app``'s handlers (and their options), without its sources or
    shared queue: a one-off command must neither consume nor be consumed elsewhere."""
    return App(
        name=app.name,
        handlers=list(app.handlers.values()),
        region=app.region,
        account_id=app.account_id,
    )

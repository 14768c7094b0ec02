"""eventflow: AWS Lambda's asynchronous invocation model inside any asyncio service.

Layout: ``_contracts`` holds the vocabulary and extension protocols and imports nothing
of eventflow. ``_app`` (the App: wiring, lifecycle, the public API; start reading there) holds the
engine's parts as fields: ``_workers``, ``_attempts``, ``_idempotent_runs``, ``_outcomes``,
``_request_response``, ``_accounting`` and ``_middleware``, over the core pieces ``_queue``,
``_scheduler`` + ``_wheel``, ``_delivery``, ``_records`` and ``_logging``; the core reads
time only through ``_clock`` and never imports AWS code. The README's Design section
follows an event through them.
``sinks``, ``sources``, ``queues``, ``stores``, ``events`` and ``testing`` are public
modules; the AWS adapters live in ``eventflow.aws`` and the Lambda HTTP API in
``eventflow.http``, imported only when you import them.
"""

from __future__ import annotations

from ._app import App as App
from ._app import InvocationType as InvocationType
from ._clock import Clock as Clock
from ._context import Context as Context
from ._errors import AppClosed as AppClosed
from ._errors import ConfigurationError as ConfigurationError
from ._errors import EventflowError as EventflowError
from ._errors import IdempotencyConflict as IdempotencyConflict
from ._errors import IdempotencyKeyMissing as IdempotencyKeyMissing
from ._errors import InvalidEvent as InvalidEvent
from ._errors import InvalidPattern as InvalidPattern
from ._errors import InvalidPayload as InvalidPayload
from ._errors import QueueFull as QueueFull
from ._errors import QueueUnavailable as QueueUnavailable
from ._errors import SchedulerFull as SchedulerFull
from ._errors import UnknownHandler as UnknownHandler
from ._handler import Handler as Handler
from ._handler import HandlerConfig as HandlerConfig
from ._idempotency import Idempotency as Idempotency
from ._middleware import EventInfo as EventInfo
from ._middleware import Middleware as Middleware
from ._queue import QueueStatistics as QueueStatistics
from ._registry import handler as handler
from ._registry import reset as reset_default_registry
from ._results import Accepted as Accepted
from ._results import InvocationResult as InvocationResult
from ._results import Stats as Stats
from ._threads import ThreadStatistics as ThreadStatistics
from ._wheel import WheelStatistics as WheelStatistics
from .sinks import Message as Message
from .sinks import Sink as Sink

__version__ = "0.1.0"

__all__ = (
    "Accepted",
    "App",
    "AppClosed",
    "Clock",
    "ConfigurationError",
    "Context",
    "EventInfo",
    "EventflowError",
    "Handler",
    "HandlerConfig",
    "Idempotency",
    "IdempotencyConflict",
    "IdempotencyKeyMissing",
    "InvalidEvent",
    "InvalidPattern",
    "InvalidPayload",
    "InvocationResult",
    "InvocationType",
    "Message",
    "Middleware",
    "QueueFull",
    "QueueStatistics",
    "QueueUnavailable",
    "SchedulerFull",
    "Sink",
    "Stats",
    "ThreadStatistics",
    "UnknownHandler",
    "WheelStatistics",
    "handler",
    "reset_default_registry",
)

for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__") and isinstance(_obj, type):
        _obj.__module__ = "eventflow"
del _name, _obj

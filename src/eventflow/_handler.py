"""Handlers: a user's function plus its Lambda-style asynchronous-invocation options.

``@eventflow.handler`` and ``@app.handler`` both build a :class:`Handler`. Options are
checked here, when the decorator runs, so a wrong value fails at import time with a
sentence that names the option and its accepted range, never later inside a worker.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, overload

from typing_extensions import ParamSpec, TypeVar

from ._errors import ConfigurationError
from ._idempotency import Idempotency

if TYPE_CHECKING:
    from ._context import Context
    from .sinks import Sink

__all__ = ("Handler", "HandlerConfig", "HandlerFunction", "make_decorator")

HandlerFunction = Callable[[Any, "Context"], Any] | Callable[[Any, "Context"], Awaitable[Any]]

# the decorated function's signature, kept for type checkers (a bare ``Handler`` is any one)
P = ParamSpec("P", default=...)
R = TypeVar("R", default=Any)

DEFAULT_MAX_RETRIES = 2
DEFAULT_RETRY_DELAYS = (60.0, 120.0)
DEFAULT_MAX_EVENT_AGE = 21_600.0


def _positive(option: str, value: object, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{option} must be a positive number of seconds, got {value!r} "
            f"({type(value).__name__})."
        )
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(
            f"{option} must be a positive, finite number of seconds, got {value!r}."
        )
    return float(value)


def _check_idempotency(value: object) -> Idempotency | None:
    if value is None or isinstance(value, Idempotency):
        return value
    raise ConfigurationError(
        f"idempotency must be an eventflow.Idempotency(...), got {value!r}; for example "
        "idempotency=eventflow.Idempotency(key='detail.orderId')."
    )


def _check_sink(option: str, sink: object) -> Sink | None:
    if sink is None:
        return None
    send = getattr(sink, "send", None)
    if not callable(send):
        raise ConfigurationError(
            f"{option} must be a sink, an object with an 'async def send(self, message)' "
            f"method (for example eventflow.sinks.MemorySink()), got {sink!r}."
        )
    return sink  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    """The asynchronous-invocation settings of a handler at one moment.

    An event keeps the settings in force when it was accepted, so changing them (as
    Lambda's PutFunctionEventInvokeConfig does) applies to events accepted afterwards.
    Build one with :meth:`build`, which validates every value.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    max_event_age: float = DEFAULT_MAX_EVENT_AGE
    timeout: float | None = None
    dead_letter: Sink | None = None
    on_success: Sink | None = None
    on_failure: Sink | None = None
    idempotency: Idempotency | None = None
    # no timeout, no on-success record, and no idempotency store that needs an await:
    # a worker may run such an attempt inline, without a coroutine per event
    inline: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        idem = self.idempotency
        inline = (
            self.timeout is None
            and self.on_success is None
            and (idem is None or idem.nowait_store is not None)
        )
        object.__setattr__(self, "inline", inline)

    @classmethod
    def build(
        cls,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        max_event_age: float = DEFAULT_MAX_EVENT_AGE,
        timeout: float | None = None,
        dead_letter: Sink | None = None,
        on_success: Sink | None = None,
        on_failure: Sink | None = None,
        idempotency: Idempotency | None = None,
    ) -> HandlerConfig:
        """Validate the options and return them as a config.

        Raises:
            ConfigurationError: a value is outside its accepted range.
        """
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(
                f"max_retries must be an integer >= 0 (Lambda's default is 2), got {max_retries!r}."
            )
        if isinstance(retry_delays, str | bytes) or not isinstance(retry_delays, Sequence):
            raise ConfigurationError(
                "retry_delays must be a sequence of positive numbers of seconds, "
                f"such as (60.0, 120.0), got {retry_delays!r}."
            )
        if not retry_delays:
            raise ConfigurationError(
                "retry_delays must hold at least one delay in seconds, such as (60.0, 120.0)."
            )
        delays = tuple(_positive(f"retry_delays[{i}]", d) for i, d in enumerate(retry_delays))
        return cls(
            max_retries=max_retries,
            retry_delays=delays,  # type: ignore[arg-type]
            max_event_age=_positive("max_event_age", max_event_age),  # type: ignore[arg-type]
            timeout=_positive("timeout", timeout, allow_none=True),
            dead_letter=_check_sink("dead_letter", dead_letter),
            on_success=_check_sink("on_success", on_success),
            on_failure=_check_sink("on_failure", on_failure),
            idempotency=_check_idempotency(idempotency),
        )

    def replace(self, **changes: Any) -> HandlerConfig:
        """A validated copy with ``changes`` applied."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "inline"}
        unknown = set(changes) - set(values)
        if unknown:
            raise ConfigurationError(
                f"Unknown handler setting(s) {sorted(unknown)}; the settings are {sorted(values)}."
            )
        values.update(changes)
        return HandlerConfig.build(**values)

    def retry_delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        delays = self.retry_delays
        return delays[retry - 1] if retry <= len(delays) else delays[-1]

    def resources(self) -> tuple[Any, ...]:
        """The sinks and the idempotency store: what an app opens before use."""
        out: list[Any] = list(self.sinks())
        if self.idempotency is not None and self.idempotency.store is not None:
            out.append(self.idempotency.store)
        return tuple(out)

    def sinks(self) -> tuple[Sink, ...]:
        """Every distinct sink of these settings."""
        seen: dict[int, Sink] = {}
        for sink in (self.dead_letter, self.on_success, self.on_failure):
            if sink is not None:
                seen.setdefault(id(sink), sink)
        return tuple(seen.values())


class Handler(Generic[P, R]):
    """A registered handler: the function and its invocation options.

    Calling a ``Handler`` calls the wrapped function unchanged, so existing unit tests
    of a Lambda handler keep working after it is decorated; ``Handler[P, R]`` keeps the
    function's signature, so a type checker checks those calls too.

    Attributes:
        fn: The decorated function, ``async def f(event, context)`` or ``def f(event, context)``.
        name: The handler's name (the Lambda function name), the function's name by default.
        max_retries: Retries after a function error (0 = run once).
        retry_delays: Seconds before retry 1, 2, ...; the last value repeats.
        max_event_age: Seconds after which an event is not run again.
        timeout: Seconds per attempt, or ``None`` for no limit.
        concurrency: Cap on this handler's simultaneous attempts, or ``None``.
        dead_letter: Sink that receives the payload of failed events (Lambda's DLQ).
        on_success: Sink that receives an invocation record on success.
        on_failure: Sink that receives an invocation record on failure.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        max_event_age: float = DEFAULT_MAX_EVENT_AGE,
        timeout: float | None = None,
        concurrency: int | None = None,
        dead_letter: Sink | None = None,
        on_success: Sink | None = None,
        on_failure: Sink | None = None,
        idempotency: Idempotency | None = None,
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(
                f"A handler must be a function taking (event, context), got {fn!r}."
            )
        if isinstance(fn, Handler):
            raise ConfigurationError(
                f"{fn.name!r} is already a handler; decorate the function only once."
            )
        if name is None:
            name = getattr(fn, "__name__", None)
        if not isinstance(name, str) or not name or len(name) > 64:
            raise ConfigurationError(
                f"name must be a non-empty string of at most 64 characters, got {name!r}."
            )
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ConfigurationError(
                f"concurrency must be an integer >= 1 or None, got {concurrency!r}."
            )
        self.fn = fn
        self.__wrapped__ = fn
        self.name: str = name
        self.concurrency: int | None = concurrency
        self.config = HandlerConfig.build(
            max_retries=max_retries,
            retry_delays=retry_delays,
            max_event_age=max_event_age,
            timeout=timeout,
            dead_letter=dead_letter,
            on_success=on_success,
            on_failure=on_failure,
            idempotency=idempotency,
        )
        self.is_async: bool = inspect.iscoroutinefunction(fn)
        self.__doc__ = getattr(fn, "__doc__", None)

    # the decorator's options, as read-only attributes of the handler
    max_retries = property(lambda self: self.config.max_retries)
    retry_delays = property(lambda self: self.config.retry_delays)
    max_event_age = property(lambda self: self.config.max_event_age)
    timeout = property(lambda self: self.config.timeout)
    dead_letter = property(lambda self: self.config.dead_letter)
    on_success = property(lambda self: self.config.on_success)
    on_failure = property(lambda self: self.config.on_failure)
    idempotency = property(lambda self: self.config.idempotency)

    def retry_delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return self.config.retry_delay(retry)

    def sinks(self) -> tuple[Sink, ...]:
        """Every distinct sink this handler sends to."""
        return self.config.sinks()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<eventflow.Handler {self.name!r} max_retries={self.max_retries} "
            f"retry_delays={self.retry_delays} max_event_age={self.max_event_age}>"
        )


@overload
def make_decorator(
    register: Callable[[Handler], None], fn: Callable[P, R], options: dict[str, Any]
) -> Handler[P, R]: ...
@overload
def make_decorator(
    register: Callable[[Handler], None], fn: None, options: dict[str, Any]
) -> Callable[[Callable[P, R]], Handler[P, R]]: ...
def make_decorator(
    register: Callable[[Handler], None], fn: Callable[..., Any] | None, options: dict[str, Any]
) -> Any:
    """Shared body of ``@eventflow.handler`` and ``@app.handler``, bare or with options."""
    if fn is not None:
        handler: Handler = Handler(fn, **options)
        register(handler)
        return handler

    def decorate(f: Callable[..., Any]) -> Handler:
        handler: Handler = Handler(f, **options)
        register(handler)
        return handler

    return decorate

"""Global state department: the one default handler registry.

``@eventflow.handler`` registers here, and an :class:`eventflow.App` built without
``handlers=`` serves every handler registered here. This is the only module-level
mutable state in eventflow; tests call :func:`reset` to start clean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

from ._errors import ConfigurationError
from ._handler import Handler, P, R, make_decorator

if TYPE_CHECKING:
    from ._idempotency import Idempotency
    from .sinks import Sink

__all__ = ("default_handlers", "handler", "register", "reset")

_default: dict[str, Handler] = {}


def register(h: Handler) -> None:
    """Add ``h`` to the default registry; a second handler with the same name is an error."""
    existing = _default.get(h.name)
    if existing is not None and existing is not h:
        raise ConfigurationError(
            f"A handler named {h.name!r} is already registered ({existing.fn!r}); "
            "give this one another name with @eventflow.handler(name=...)."
        )
    _default[h.name] = h


def default_handlers() -> dict[str, Handler]:
    """A snapshot of the default registry, name to handler."""
    return dict(_default)


def reset() -> None:
    """Forget every handler registered with ``@eventflow.handler`` (for tests)."""
    _default.clear()


@overload
def handler(
    fn: Callable[P, R],
    /,
    *,
    name: str | None = ...,
    max_retries: int = ...,
    retry_delays: Sequence[float] = ...,
    max_event_age: float = ...,
    timeout: float | None = ...,
    concurrency: int | None = ...,
    dead_letter: Sink | None = ...,
    on_success: Sink | None = ...,
    on_failure: Sink | None = ...,
    idempotency: Idempotency | None = ...,
) -> Handler[P, R]: ...
@overload
def handler(
    fn: None = None,
    /,
    *,
    name: str | None = ...,
    max_retries: int = ...,
    retry_delays: Sequence[float] = ...,
    max_event_age: float = ...,
    timeout: float | None = ...,
    concurrency: int | None = ...,
    dead_letter: Sink | None = ...,
    on_success: Sink | None = ...,
    on_failure: Sink | None = ...,
    idempotency: Idempotency | None = ...,
) -> Callable[[Callable[P, R]], Handler[P, R]]: ...
def handler(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Register a Lambda-style handler on the default registry.

    Use it bare (``@eventflow.handler``) or with options
    (``@eventflow.handler(max_retries=0, dead_letter=sink)``); see :class:`eventflow.Handler`
    for every option and its default. Returns the :class:`eventflow.Handler`.

    Raises:
        ConfigurationError: an option is outside its accepted range.
    """
    return make_decorator(register, fn, options)

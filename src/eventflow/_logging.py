"""The log keys, in one place, and the context-local binding of an attempt.

eventflow logs through structlog and never configures it. Every entry about an event
carries :data:`REQUEST_ID`, :data:`HANDLER` and :data:`ATTEMPT`; while a handler runs, the
same three are bound with structlog's context variables (``structlog.contextvars``), so a
handler's own ``structlog.get_logger()`` entries carry them too wherever
``merge_contextvars`` is among the processors (structlog's default configuration has it).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

import structlog

if TYPE_CHECKING:
    from ._event import Event

__all__ = (
    "ATTEMPT",
    "HANDLER",
    "REQUEST_ID",
    "attempt_var",
    "handler_var",
    "log_context",
    "request_id_var",
)

REQUEST_ID: Final = "request_id"
HANDLER: Final = "handler"
ATTEMPT: Final = "attempt"


def _structlog_vars() -> tuple[ContextVar[Any], ContextVar[Any], ContextVar[Any]]:
    # structlog's own variable per key, taken from the tokens of a bind that is undone at
    # once: setting them directly costs a third of bind_contextvars() per attempt
    tokens = structlog.contextvars.bind_contextvars(
        **{REQUEST_ID: None, HANDLER: None, ATTEMPT: None}
    )
    structlog.contextvars.reset_contextvars(**tokens)
    return tokens[REQUEST_ID].var, tokens[HANDLER].var, tokens[ATTEMPT].var


request_id_var, handler_var, attempt_var = _structlog_vars()


def log_context(ev: Event) -> dict[str, Any]:
    """The three keys every log entry about ``ev`` carries."""
    return {REQUEST_ID: ev.request_id, HANDLER: ev.rt.name, ATTEMPT: ev.attempts}

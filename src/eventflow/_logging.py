"""The log keys, in one place, and the context-local binding of an attempt.

eventflow logs through structlog and never configures it. Every entry about an event
carries :data:`REQUEST_ID`, :data:`HANDLER` and :data:`ATTEMPT`; while a handler runs, the
same three are bound with structlog's context variables (``structlog.contextvars``), so a
handler's own ``structlog.get_logger()`` entries carry them too wherever
``merge_contextvars`` is among the processors (structlog's default configuration has it).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Final

import structlog

__all__ = (
    "ATTEMPT",
    "HANDLER",
    "REQUEST_ID",
    "attempt_var",
    "handler_var",
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

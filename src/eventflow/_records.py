"""The messages Lambda writes about an event: error objects, dead letters, destination
records, and eventflow's own spill messages. Formats follow spec §2, §3.2 and §4.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._contracts import Message
from ._payload import json_error, to_json
from ._tracebacks import StackTexts

if TYPE_CHECKING:
    from ._event import Event

__all__ = (
    "dead_letter_message",
    "destination_record",
    "error_object",
    "function_error",
    "marshal_error",
    "marshal_failure",
    "spill_message",
    "timeout_error",
    "waited_error",
    "waiting_error",
)

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"

# Lambda puts the first 1 KB of the error message in the DLQ's ErrorMessage attribute.
_ERROR_MESSAGE_LIMIT = 1024


# what runs a handler: eventflow's engine, anyio's worker threads, asyncio, the thread
# pool. A stack trace starts at the first frame that is none of these (the handler's)
_RUNNER_FILES = (
    os.path.dirname(anyio.__file__) + os.sep,
    os.path.dirname(asyncio.__file__) + os.sep,
    os.path.dirname(concurrent.futures.__file__) + os.sep,
    threading.__file__,
    contextlib.__file__,
)


def _is_runner(filename: str) -> bool:
    return "/eventflow/_" in filename.replace("\\", "/") or filename.startswith(_RUNNER_FILES)


def _handler_traceback(exc: BaseException) -> TracebackType | None:
    """The part of ``exc``'s traceback from the handler's frame on (None if there is none).

    Walking ``tb_next`` reads one attribute per frame; extracting a frame reads its line
    (a linear scan of a long function's positions), its source and its file's ``stat()``,
    so the runner's frames are skipped before any of that.
    """
    tb = exc.__traceback__
    while tb is not None and _is_runner(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _trim_traceback(exc: BaseException) -> TracebackType | None:
    """Cut the runner's leading frames off ``exc``'s traceback, and return what is left.

    The log line formats the same exception: it then walks the handler's frames only. A
    traceback without a handler frame (eventflow's own error) is left whole, for the log.
    """
    tb = _handler_traceback(exc)
    if tb is not None and tb is not exc.__traceback__:
        exc.__traceback__ = tb
    return tb


def _lambda_stack_trace(tb: TracebackType) -> list[str]:
    # eventflow frames the handler called through (middleware, context) are left out too
    frames = traceback.extract_tb(tb)
    return traceback.StackSummary.from_list(
        [f for f in frames if "/eventflow/_" not in f.filename.replace("\\", "/")]
    ).format()


# in an outage the same few stacks fail over and over: each one's text is made once
_stack_traces = StackTexts(512, _lambda_stack_trace)


def error_object(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The Lambda Python runtime's error object for an exception raised by a handler.

    Its ``stackTrace`` starts at the handler's frame, as the runtime's starts after its
    bootstrap; ``exc``'s traceback is cut to the same frames (see ``_trim_traceback``).
    """
    tb = _trim_traceback(exc)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": [] if tb is None else list(_stack_traces(tb)),
    }


# what a waiting retry keeps of its last error: (errorType, errorMessage)
WaitingError = tuple[str, str]
_ERROR_KEYS = frozenset(("errorMessage", "errorType", "requestId", "stackTrace"))


def waiting_error(error: dict[str, Any], request_id: str) -> dict[str, Any] | WaitingError:
    """What an event keeps of its last ``error`` while its retry waits: type and message.

    The stack trace was logged with the attempt (``attempt.failed``); keeping it would
    make each waiting retry grow with the handler's stack depth. An error object of
    another shape is kept whole.
    """
    if error.keys() == _ERROR_KEYS and error["requestId"] == request_id:
        error_type, message = error["errorType"], error["errorMessage"]
        if type(error_type) is str and type(message) is str:
            return _kept(error_type, message)
    return error


def waiting_error_of(exc: BaseException) -> WaitingError:
    """What ``waiting_error`` keeps of ``error_object(exc, ...)``, without making it."""
    return _kept(type(exc).__name__, str(exc))


def _kept(error_type: str, message: str) -> WaitingError:
    # a built-in exception type makes a new name string on every failure: share one
    return sys.intern(error_type), message


def waited_error(kept: WaitingError, request_id: str) -> dict[str, Any]:
    """The error object of a retry that waited (see ``waiting_error``): no stack trace."""
    return {
        "errorMessage": kept[1],
        "errorType": kept[0],
        "requestId": request_id,
        "stackTrace": [],
    }


def function_error(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The one classifier: the error object of what a handler raised, or raise it again.

    ================================================  ==========================================
    the handler raised                                it is
    ================================================  ==========================================
    an ``Exception``                                  a function error (its error object)
    ``SystemExit`` (``sys.exit()``)                   a function error, ``Runtime.ExitError``
    ``CancelledError`` while its task is cancelled    not an attempt's outcome: raised again
    ``CancelledError`` of its own (task not           a function error (the handler's own)
    cancelled)
    ``KeyboardInterrupt`` or another                  raised again: it stops the process
    ``BaseException``
    ================================================  ==========================================

    Every attempt path (the worker's inline path, the general path with or without a
    timeout, threads, ``RequestResponse``) classifies through here; a timeout is decided
    before (the attempt's own timer cancelled it) and is ``Task timed out``.
    """
    if isinstance(exc, Exception):
        return error_object(exc, request_id)
    if isinstance(exc, SystemExit):
        _trim_traceback(exc)  # for the log line, as error_object does
        return exit_error(exc, request_id)
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is None or not task.cancelling():
            return error_object(exc, request_id)
    raise exc


def deferred_function_error(exc: BaseException, request_id: str) -> dict[str, Any] | None:
    """:func:`function_error`, except that an ``Exception``'s error object is not made now
    (``None``): only its traceback is trimmed, for the log line. Its ``error_object`` is
    made when something needs it; a failure whose retry waits, logged at a level that is
    filtered away, never does, and that stack walk was half of a failure's cost."""
    if isinstance(exc, Exception):
        _trim_traceback(exc)
        return None
    return function_error(exc, request_id)


def exit_error(exc: SystemExit, request_id: str) -> dict[str, Any]:
    """Lambda's ``Runtime.ExitError`` for a handler that called ``sys.exit()``.

    In Lambda the runtime process exits and the attempt fails; here the host process is
    not the handler's to stop, so it is the same function error, retried like any other.
    """
    code = exc.code
    status = 0 if code is None else code if isinstance(code, int) else 1
    return {
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
        f"exit status {status}",
        "errorType": "Runtime.ExitError",
        "requestId": request_id,
        "stackTrace": [],
    }


def timeout_error(request_id: str, timeout: float) -> dict[str, Any]:
    """The error object Lambda reports when an attempt runs past its timeout."""
    message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
    return {
        "errorMessage": message,
        "errorType": "Sandbox.Timedout",
        "requestId": request_id,
        "stackTrace": [],
    }


def marshal_error(result: Any, request_id: str) -> dict[str, Any] | None:
    """Lambda's ``Runtime.MarshalError`` if ``result`` is not JSON-serialisable, else None."""
    why = json_error(result)
    if why is None:
        return None
    return _marshal_error(why, request_id)


def marshal_failure(exc: BaseException, request_id: str) -> dict[str, Any]:
    """Lambda's ``Runtime.MarshalError`` for a result whose encoding raised ``exc``."""
    return _marshal_error(str(exc) or type(exc).__name__, request_id)


def _marshal_error(why: str, request_id: str) -> dict[str, Any]:
    # what the Lambda Python runtime reports when it cannot encode a handler's response
    return {
        "errorMessage": f"Unable to marshal response: {why}",
        "errorType": "Runtime.MarshalError",
        "requestId": request_id,
        "stackTrace": [],
    }


def wall_time_iso(epoch: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as in Lambda's records."""
    t = time.time() if epoch is None else epoch
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def dead_letter_message(event: Event, error_message: str) -> Message:
    """Lambda's DLQ message: the payload as body, RequestID/ErrorCode/ErrorMessage attributes.

    ``ErrorCode`` is ``"200"``, the function-level status Lambda reports for function
    errors; eventflow uses it for expired events too (spec §2 leaves that unconfirmed).
    """
    encoded = error_message.encode("utf-8")[:_ERROR_MESSAGE_LIMIT]
    return Message(
        to_json(event.payload),
        MappingProxyType(
            {
                "RequestID": event.request_id,
                "ErrorCode": "200",
                "ErrorMessage": encoded.decode("utf-8", errors="ignore"),
            }
        ),
    )


def destination_record(
    event: Event,
    condition: str,
    *,
    response: Any = None,
    function_error: bool = False,
    epoch: float | None = None,
) -> Message:
    """The invocation record sent to an on-success or on-failure destination (spec §3.2).

    For an event that expired before it ever ran, ``approximateInvokeCount`` is 0 and
    ``responseContext`` / ``responsePayload`` are left out (no attempt produced them).
    """
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": wall_time_iso(epoch),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": event.rt.qualified_arn,
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": event.payload,
    }
    if event.attempts:
        ctx: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            ctx["functionError"] = "Unhandled"
        record["responseContext"] = ctx
        record["responsePayload"] = response
    return Message(to_json(record))


def spill_message(event: Event) -> Message:
    """An unfinished event at shutdown: the payload, and what is needed to resume it."""
    return Message(
        to_json(event.payload),
        MappingProxyType(
            {
                "RequestID": event.request_id,
                "Handler": event.rt.name,
                "Attempt": str(event.attempts),
            }
        ),
    )

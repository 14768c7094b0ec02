"""The messages Lambda writes about an event: error objects, dead letters, destination
records, and eventflow's own spill messages. Formats follow spec §2, §3.2 and §4.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
import traceback
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio

from ._contracts import Message
from ._payload import json_error, to_json

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


def error_object(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The Lambda Python runtime's error object for an exception raised by a handler."""
    frames = list(traceback.extract_tb(exc.__traceback__))
    # the user's stack trace starts at their handler, as the runtime's starts after bootstrap
    start = next((i for i, f in enumerate(frames) if not _is_runner(f.filename)), len(frames))
    frames = traceback.StackSummary.from_list(
        [f for f in frames[start:] if "/eventflow/_" not in f.filename.replace("\\", "/")]
    )
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": frames.format(),
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
        return exit_error(exc, request_id)
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is None or not task.cancelling():
            return error_object(exc, request_id)
    raise exc


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

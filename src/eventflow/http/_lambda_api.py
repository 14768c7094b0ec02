"""The Lambda REST API for an eventflow App: a plain ASGI 3 application.

:class:`LambdaAPI` answers the subset of Lambda's API that a client of an asynchronously
invoked function uses, so ``boto3.client("lambda", endpoint_url=...)`` and ``aws lambda
... --endpoint-url ...`` work against an App's handlers (function name = handler name):

============================================================  ===================================
request                                                       operation
============================================================  ===================================
``POST /2015-03-31/functions/{name}/invocations``             Invoke (Event, RequestResponse,
                                                              DryRun; ``X-Amz-Log-Type: Tail``;
                                                              ``X-Amz-Client-Context``)
``GET /2015-03-31/functions/``                                ListFunctions (``MaxItems``,
                                                              ``Marker``)
``GET /2015-03-31/functions/{name}``                          GetFunction
``GET /2015-03-31/functions/{name}/configuration``            GetFunctionConfiguration
``PUT /2015-03-31/functions/{name}/configuration``            UpdateFunctionConfiguration
                                                              (``Timeout``, ``DeadLetterConfig``)
``PUT|POST|GET|DELETE /2019-09-25/functions/{name}/``         Put / Update / Get / Delete
``event-invoke-config``                                       FunctionEventInvokeConfig
``GET /2019-09-25/functions/{name}/event-invoke-config/list``  ListFunctionEventInvokeConfigs
============================================================  ===================================

``{name}`` is a name, a partial ARN (``123456789012:function:name``) or a full ARN
(``arn:aws:lambda:region:account:function:name``), optionally qualified with ``$LATEST``;
an ARN for another region or account, another qualifier, or an unknown name is a 404.

Status codes and error codes (the code is in ``x-amzn-ErrorType``; the JSON body is
``{"Type": "User", "message": ...}``, with ``Message`` for the two exceptions botocore's
model spells that way, so boto3 and the CLI show the text):

=====  ===================================  =================================================
code   error                                when
=====  ===================================  =================================================
202                                         Event accepted (empty body)
200                                         RequestResponse, also when the function failed
                                            (then ``X-Amz-Function-Error: Unhandled``)
204                                         DryRun; DeleteFunctionEventInvokeConfig
400    InvalidRequestContentException       the body is not JSON (an empty body is ``{}``),
                                            or breaks a payload limit (NaN, nesting, ...)
400    InvalidParameterValueException       a value out of range, an unsupported field or
                                            header value, an unusable destination ARN
403    (see :mod:`eventflow.http._sigv4`)   with ``credentials``: a missing or bad signature
                                            (all but the body's hash is checked before the
                                            body is read)
404    ResourceNotFoundException            unknown function, or no event-invoke config
404    UnknownOperationException            no operation at that method and path
408    RequestTimeoutException              the body did not arrive within ``body_timeout``
413    RequestTooLargeException             payload over 1,048,576 bytes (Event) or
                                            6,291,456 bytes (RequestResponse, DryRun,
                                            any other request)
429    TooManyRequestsException             Event and the App's queue is full
                                            (``Reason`` ``ConcurrentInvocationLimitExceeded``,
                                            ``Retry-After: 1``); or the body does not fit in
                                            ``max_body_memory`` (``Retry-After: 1``)
503    ServiceException                     the App is not running (not started yet, or
                                            shutting down); ``Retry-After: 1``
500    ServiceException                     a bug in this module (logged)
=====  ===================================  =================================================

An answer sent before the whole body was read (a 403 on the headers, a 408, a 413 or 429
on the body) carries ``Connection: close``, so the server reads nothing more from that
client. 408 and the body bound are eventflow's: Lambda's front end has its own.

The async payload limit is Lambda's current 1 MB, taken as 1,048,576 bytes (the exact
value is unconfirmed, spec §4). 503 is chosen for a stopped App because it is temporary
and SDKs retry it; Lambda's model declares ``ServiceException`` as 500.

Configuration written through this API is kept per function and applied with
``App.configure_handler``: the effective settings are always the decorator's options
(``handler.config``, so its ``retry_delays`` are kept) with the API's ``Timeout`` and
``DeadLetterConfig``, then the event-invoke config's ``MaximumRetryAttempts``,
``MaximumEventAgeInSeconds`` and destinations, laid over them. A Put replaces the
event-invoke config (what it leaves out falls back to the decorator's option), an Update
merges into it (creating it if there is none), a Delete restores the decorator's options.
Destination and dead-letter ARNs become :class:`eventflow.aws.SQSSink` (the queue URL is
looked up with ``GetQueueUrl``), :class:`~eventflow.aws.SNSSink` and
:class:`~eventflow.aws.EventBridgeSink` through :func:`eventflow.aws.sink_for_arn`, created
once per ARN with the standard AWS configuration (``AWS_ENDPOINT_URL`` and the like are
honoured); the App opens each one (which checks the target) before it is used, and closes
it when it stops. A target that cannot be used is a 400 ``InvalidParameterValueException``
whose message is the AWS adapters' (it says whether the target is missing, forbidden, or
the credentials refused, and what to do).

Operations are found in a table of (methods, path pattern, operation); the ASGI plumbing
(body reading, lifespan, replies) is :mod:`eventflow._asgi`, shared with
:class:`eventflow.aws.SNSEndpoint`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

import structlog

from .._asgi import (
    CLOSE,
    BodyMemory,
    BodyOverMemory,
    BodyTimedOut,
    BodyTooLarge,
    Disconnected,
    Held,
    Receive,
    Reply,
    Scope,
    Send,
    client_address,
    json_reply,
    read_body,
    run_lifespan,
    send_reply,
    serve_scope,
)
from .._errors import (
    AppClosed,
    ConfigurationError,
    EventflowError,
    InvalidPayload,
    QueueFull,
    QueueUnavailable,
    UnknownHandler,
)
from .._handler import Handler
from .._ids import new_request_id
from .._payload import check_payload
from ._arns import parse_function_name
from ._sigv4 import SignatureRejected, SigV4Verifier

if TYPE_CHECKING:
    from .._app import App
    from ..sinks import Sink

__all__ = (
    "LambdaAPI",
    "LambdaAPIStatistics",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_MEMORY",
    "MAX_ASYNC_PAYLOAD_BYTES",
    "MAX_SYNC_PAYLOAD_BYTES",
    "DEFAULT_TIMEOUT_SECONDS",
)

Headers = list[tuple[bytes, bytes]]

#: Largest Event payload accepted (Lambda's "1 MB"; the exact value is unconfirmed).
MAX_ASYNC_PAYLOAD_BYTES: Final = 1_048_576
#: Largest RequestResponse payload, and largest body of any request.
MAX_SYNC_PAYLOAD_BYTES: Final = 6_291_456
#: ``Timeout`` reported for a handler without a timeout: Lambda's maximum, 15 minutes.
DEFAULT_TIMEOUT_SECONDS: Final = 900
#: Seconds a client has to send a whole request body: 6 MB at 2 Mbit/s takes 25 s.
DEFAULT_BODY_TIMEOUT: Final = 30.0
#: Bytes of request bodies held in memory at once, across connections: ten 6 MB bodies.
DEFAULT_MAX_BODY_MEMORY: Final = 64 * 1_048_576
#: Largest ``X-Amz-Client-Context`` header (base64), as Lambda allows.
MAX_CLIENT_CONTEXT_BYTES: Final = 3583
_LOG_TAIL_BYTES: Final = 4096
# ListFunctions answers at most this many functions a page, as Lambda does
_LIST_PAGE: Final = 50
_RETRY_AFTER: Final = b"1"
_RUNTIME: Final = f"python{sys.version_info.major}.{sys.version_info.minor}"
# the two exceptions whose message member botocore's Lambda model spells "Message"
_CAPITAL_MESSAGE: Final = frozenset({"ResourceNotFoundException", "ServiceException"})

_EXECUTED: Final = (b"x-amz-executed-version", b"$LATEST")
_UNHANDLED: Final = (b"x-amz-function-error", b"Unhandled")
_EMPTY: Final = (b"content-length", b"0")

_log = structlog.get_logger("eventflow.http")


class _ApiError(Exception):
    """An error answer: HTTP status, AWS error code, message and extra members/headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        members: dict[str, Any] | None = None,
        headers: Headers | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.members = members or {}
        self.headers = headers or []
        self.close = close  # answered before the body was read: close the connection


def _invalid(message: str) -> _ApiError:
    return _ApiError(400, "InvalidParameterValueException", message)


def _iso(timestamp: float) -> str:
    """Lambda's FunctionConfiguration.LastModified format, e.g. 2024-01-02T03:04:05.678+0000."""
    millis = int(timestamp * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{millis:03d}+0000"


@dataclass
class _InvokeConfig:
    """An event-invoke config as set through the API (None = not set)."""

    max_retries: int | None = None
    max_age: int | None = None
    on_success: str | None = None
    on_failure: str | None = None
    last_modified: float = field(default_factory=time.time)


@dataclass
class _FunctionState:
    """What the API has set for one function, on top of the decorator's options."""

    last_modified: float = field(default_factory=time.time)
    timeout: int | None = None
    dead_letter_set: bool = False
    dead_letter_arn: str | None = None
    invoke_config: _InvokeConfig | None = None


@dataclass(frozen=True, slots=True)
class LambdaAPIStatistics:
    """A snapshot of a :class:`LambdaAPI`'s counters for hostile or slow clients.

    Attributes:
        body_bytes: Bytes of request bodies held in memory now (being received, or
            received by a request not yet answered), across connections.
        max_body_memory: The bound on ``body_bytes``.
        unauthenticated: Requests refused 403 because their signature did not verify.
        body_timeouts: Requests answered 408 because their body took too long to arrive.
        over_memory: Requests answered 429 because their body would not fit in
            ``max_body_memory``.
    """

    body_bytes: int
    max_body_memory: int
    unauthenticated: int
    body_timeouts: int
    over_memory: int


class LambdaAPI:
    """An ASGI 3 application speaking Lambda's REST API for an App's handlers.

    Serve it with any ASGI server while the App runs::

        app = eventflow.App()
        api = LambdaAPI(app, credentials=("AKIDEXAMPLE", "secret"))
        async with app:
            await uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=9001)).serve()

    then ``aws lambda invoke --function-name resize --invocation-type Event ...
    --endpoint-url http://127.0.0.1:9001``. The ``lifespan`` protocol is answered (startup
    and shutdown complete) but does not start or stop the App: its owner does.

    Args:
        app: The App whose handlers are the functions.
        region: The region in function ARNs, and the region requests must be signed for;
            None (the default) for the App's (``app.region``). Give one only to serve
            under another region than the App's own ARNs name.
        account_id: The account in function ARNs; ARNs naming another account are 404.
            None (the default) for the App's (``app.account_id``).
        credentials: ``None`` to accept every request unsigned, or botocore ``Credentials``
            or an ``(access_key, secret_key)`` tuple: then every request must carry a valid
            AWS Signature V4 for them, service ``lambda``, in ``region`` (403 otherwise,
            before any handler runs). Everything but the body's hash and the signature
            itself is checked before the body is read, so a client without the key cannot
            make the server receive a body.
        body_timeout: Seconds a client has to send a request's whole body, from the first
            read; a slower request is answered 408 ``RequestTimeoutException`` and its
            connection closed.
        max_body_memory: Bytes of request bodies held in memory at once, across all
            connections (a body is held from its first byte until its request is
            answered; a declared ``Content-Length`` is held at once). A request whose body
            does not fit is answered 429 ``TooManyRequestsException`` with
            ``Retry-After: 1``, and its connection closed. At least
            :data:`MAX_SYNC_PAYLOAD_BYTES`, so that one request of the largest size fits.

    Raises:
        ConfigurationError: ``body_timeout`` or ``max_body_memory`` is out of range.
    """

    def __init__(
        self,
        app: App,
        *,
        region: str | None = None,
        account_id: str | None = None,
        credentials: Any = None,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        max_body_memory: int = DEFAULT_MAX_BODY_MEMORY,
    ) -> None:
        if (
            isinstance(body_timeout, bool)
            or not isinstance(body_timeout, int | float)
            or not 0 < body_timeout < math.inf
        ):
            raise ConfigurationError(
                f"body_timeout must be a positive number of seconds, got {body_timeout!r}."
            )
        if (
            isinstance(max_body_memory, bool)
            or not isinstance(max_body_memory, int)
            or max_body_memory < MAX_SYNC_PAYLOAD_BYTES
        ):
            raise ConfigurationError(
                f"max_body_memory must be an integer of at least {MAX_SYNC_PAYLOAD_BYTES} "
                f"(one body of the largest size), got {max_body_memory!r}."
            )
        self._body_timeout = float(body_timeout)
        self._memory = BodyMemory(max_body_memory)
        self._unauthenticated = 0
        self._body_timeouts = 0
        self._over_memory = 0
        self._app = app
        # the App's own ARNs and the API's must agree unless the caller says otherwise
        self.region = region = app.region if region is None else region
        self.account_id = account_id = app.account_id if account_id is None else account_id
        self._verifier = (
            SigV4Verifier(credentials, region=region, service="lambda")
            if credentials is not None
            else None
        )
        self._functions: dict[str, _FunctionState] = {}
        self._sinks: dict[str, Sink] = {}
        self._config_lock = asyncio.Lock()
        self._arn_prefix = f"arn:aws:lambda:{region}:{account_id}:function:"
        self._created = time.time()

    def statistics(self) -> LambdaAPIStatistics:
        """A frozen snapshot of the counters for hostile or slow clients."""
        return LambdaAPIStatistics(
            body_bytes=self._memory.held,
            max_body_memory=self._memory.limit,
            unauthenticated=self._unauthenticated,
            body_timeouts=self._body_timeouts,
            over_memory=self._over_memory,
        )

    # -- ASGI ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: ``http`` requests and the ``lifespan`` protocol."""
        await serve_scope("LambdaAPI", scope, receive, send, http=self._http, lifespan=run_lifespan)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            try:
                reply = await self._dispatch(scope, receive)
            except _ApiError as error:
                reply = self._error_reply(error)
        except Disconnected:
            return
        except Exception as bug:
            _log.exception(
                "lambda_api.internal_error",
                method=scope["method"],
                path=scope["path"],
                exc_info=bug,
            )
            reply = self._error_reply(
                _ApiError(500, "ServiceException", f"The Lambda API failed internally: {bug!r}.")
            )
        await send_reply(send, reply)

    def _error_reply(self, error: _ApiError) -> Reply:
        key = "Message" if error.code in _CAPITAL_MESSAGE else "message"
        body = {"Type": "Service" if error.status >= 500 else "User", key: error.message}
        body.update(error.members)
        return json_reply(
            error.status,
            body,
            (b"x-amzn-requestid", new_request_id().encode()),
            (b"x-amzn-errortype", error.code.encode()),
            *error.headers,
            *((CLOSE,) if error.close else ()),
        )

    def _unauthenticated_error(
        self, scope: Scope, rejected: SignatureRejected, *, close: bool
    ) -> _ApiError:
        self._unauthenticated += 1
        _log.warning(
            "lambda_api.unauthenticated",
            code=rejected.code,
            reason=str(rejected),
            method=scope["method"],
            path=scope["path"],
            client=client_address(scope),
        )
        return _ApiError(403, rejected.code, str(rejected), close=close)

    async def _dispatch(self, scope: Scope, receive: Receive) -> Reply:
        method: str = scope["method"]
        full_path: str = scope["path"]
        # mounted under Starlette/FastAPI, the path still carries the mount's root_path
        root = scope.get("root_path", "")
        path = full_path[len(root) :] if root and full_path.startswith(root) else full_path
        headers: Iterable[tuple[bytes, bytes]] = scope["headers"]
        invocation_type = log_type = None
        length = -1
        for key, value in headers:
            if key == b"x-amz-invocation-type":
                invocation_type = value
            elif key == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif key == b"x-amz-log-type":
                log_type = value
        verifier = self._verifier
        if verifier is not None:
            try:  # before the body: a client without the key never gets it received
                verifier.check_headers(headers)
            except SignatureRejected as rejected:
                raise self._unauthenticated_error(scope, rejected, close=True) from None
        held = Held(self._memory)
        try:
            body = await self._read_body(scope, receive, length, held)
            if verifier is not None:
                try:
                    verifier.verify(
                        method=method,
                        raw_path=scope.get("raw_path") or full_path.encode(),
                        query=scope.get("query_string", b""),
                        headers=headers,
                        body=body,
                    )
                except SignatureRejected as rejected:
                    raise self._unauthenticated_error(scope, rejected, close=False) from None
            for methods, pattern, operation in _OPERATIONS:
                found = pattern.fullmatch(path)
                if found is not None and method in methods:
                    request = _Request(
                        scope=scope,
                        method=method,
                        name=found["name"] if pattern.groups else "",
                        query=scope.get("query_string", b""),
                        body=body,
                        invocation_type=invocation_type,
                        log_type=log_type,
                    )
                    return await operation(self, request)
        finally:
            held.release()
        raise _ApiError(
            404,
            "UnknownOperationException",
            f"No Lambda operation matches {method} {path}; see the LambdaAPI docstring for the "
            "operations served.",
        )

    async def _read_body(self, scope: Scope, receive: Receive, declared: int, held: Held) -> bytes:
        """The whole request body, received within ``body_timeout`` and ``max_body_memory``."""
        try:
            return await read_body(
                receive,
                limit=MAX_SYNC_PAYLOAD_BYTES,
                timeout=self._body_timeout,
                declared=declared,
                held=held,
            )
        except BodyTooLarge:
            raise self._too_large(MAX_SYNC_PAYLOAD_BYTES, close=True) from None
        except BodyOverMemory as over:
            raise self._over_memory_error(scope, over.size) from None
        except BodyTimedOut as late:
            self._body_timeouts += 1
            _log.warning(
                "lambda_api.body_timeout",
                received=late.received if declared < 0 else None,
                declared=declared if declared >= 0 else None,
                timeout=self._body_timeout,
                method=scope["method"],
                path=scope["path"],
                client=client_address(scope),
            )
            raise _ApiError(
                408,
                "RequestTimeoutException",
                f"The request body did not arrive within {self._body_timeout:g} seconds; send "
                "the whole body at once, or raise the endpoint's body_timeout.",
                close=True,
            ) from None

    def _over_memory_error(self, scope: Scope, size: int) -> _ApiError:
        self._over_memory += 1
        memory = self._memory
        _log.warning(
            "lambda_api.over_memory",
            size=size,
            held=memory.held,
            max_body_memory=memory.limit,
            method=scope["method"],
            path=scope["path"],
            client=client_address(scope),
        )
        return _ApiError(
            429,
            "TooManyRequestsException",
            f"Rate Exceeded: the request bodies being handled already hold {memory.held} of the "
            f"{memory.limit} bytes this endpoint keeps in memory, so a body of {size} bytes "
            "cannot be received now; retry after a second.",
            headers=[(b"retry-after", _RETRY_AFTER)],
            close=True,
        )

    # -- operations (see _OPERATIONS) --------------------------------------------

    async def _op_invoke(self, request: _Request) -> Reply:
        return await self._invoke(
            request.name,
            request.query,
            request.invocation_type,
            request.log_type,
            request.body,
            _client_context(request.scope),
        )

    async def _op_list_functions(self, request: _Request) -> Reply:
        return self._list_functions(request.query)

    async def _op_get_function(self, request: _Request) -> Reply:
        return self._get_function(self._handler(request.name, request.query))

    async def _op_get_configuration(self, request: _Request) -> Reply:
        return self._reply(200, self._configuration(self._handler(request.name, request.query)))

    async def _op_update_configuration(self, request: _Request) -> Reply:
        handler = self._handler(request.name, request.query)
        return await self._update_configuration(handler, request.body)

    async def _op_get_invoke_config(self, request: _Request) -> Reply:
        return self._get_invoke_config(self._handler(request.name, request.query))

    async def _op_put_invoke_config(self, request: _Request) -> Reply:
        handler = self._handler(request.name, request.query)
        # Put replaces the config, Update (a POST) merges into it
        return await self._put_invoke_config(handler, request.body, merge=request.method == "POST")

    async def _op_delete_invoke_config(self, request: _Request) -> Reply:
        return await self._delete_invoke_config(self._handler(request.name, request.query))

    async def _op_list_invoke_configs(self, request: _Request) -> Reply:
        # the query holds MaxItems here, not a Qualifier
        return self._list_invoke_configs(self._handler(request.name, b""), request.query)

    # -- helpers ------------------------------------------------------------------

    @staticmethod
    def _reply(status: int, body: Any, *headers: tuple[bytes, bytes]) -> Reply:
        return json_reply(status, body, (b"x-amzn-requestid", new_request_id().encode()), *headers)

    @staticmethod
    def _too_large(limit: int, *, close: bool = False) -> _ApiError:
        return _ApiError(
            413,
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation.",
            close=close,
        )

    def _not_found(self, text: str, why: str = "") -> _ApiError:
        return _ApiError(404, "ResourceNotFoundException", f"Function not found: {text}.{why}")

    def _function_name(self, text: str, query: bytes) -> str:
        """The handler name that ``text`` (a name or an ARN) and ``?Qualifier=`` denote."""
        qualifiers = parse_qs(query.decode("latin-1")).get("Qualifier", []) if query else []
        if ":" not in text and not qualifiers:
            return text
        ref = parse_function_name(text)
        if ref is None:
            raise self._not_found(
                text,
                " Name a function by its name, 'account:function:name' or its full ARN.",
            )
        if ref.region is not None and ref.region != self.region:
            raise self._not_found(text, f" This endpoint serves region {self.region}.")
        if ref.account is not None and ref.account != self.account_id:
            raise self._not_found(text, f" This endpoint serves account {self.account_id}.")
        for qualifier in [ref.qualifier, *qualifiers]:
            if qualifier is not None and qualifier != "$LATEST":
                raise self._not_found(
                    f"{self._arn_prefix}{ref.name}:{qualifier}",
                    " eventflow serves the version $LATEST only.",
                )
        return ref.name

    def _handler(self, text: str, query: bytes) -> Handler:
        name = self._function_name(text, query)
        handler = self._app.handlers.get(name)
        if handler is None:
            raise self._not_found(self._arn_prefix + name)
        return handler

    def _state(self, handler: Handler) -> _FunctionState:
        state = self._functions.get(handler.name)
        if state is None:
            state = self._functions[handler.name] = _FunctionState()
        return state

    # -- Invoke -------------------------------------------------------------------

    async def _invoke(
        self,
        name_text: str,
        query: bytes,
        invocation_type: bytes | None,
        log_type: bytes | None,
        body: bytes,
        client_context: dict[str, Any] | None = None,
    ) -> Reply:
        name = self._function_name(name_text, query)
        # absent means RequestResponse; an empty value is a wrong value, refused below
        kind = b"RequestResponse" if invocation_type is None else invocation_type
        if kind == b"Event" and len(body) > MAX_ASYNC_PAYLOAD_BYTES:
            raise self._too_large(MAX_ASYNC_PAYLOAD_BYTES)
        if kind not in (b"Event", b"RequestResponse", b"DryRun"):
            raise _invalid(
                f"X-Amz-Invocation-Type must be Event, RequestResponse or DryRun, got "
                f"{kind.decode('latin-1')!r}."
            )
        if log_type not in (None, b"None", b"Tail"):
            raise _invalid(
                f"X-Amz-Log-Type must be None or Tail, got {log_type.decode('latin-1')!r}."
            )
        try:
            payload = json.loads(body) if body else {}
            check_payload(payload, "The request body")
        except InvalidPayload as exc:  # JSON, but beyond a payload limit
            raise _ApiError(400, "InvalidRequestContentException", str(exc)) from None
        except (ValueError, RecursionError) as exc:
            raise _ApiError(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}.",
            ) from None
        app = self._app
        try:
            if kind == b"Event":
                if app.queue is None:
                    accepted = app.invoke_nowait(name, payload)
                else:  # the 202 waits until the shared queue has stored the event
                    accepted = await app.invoke(name, payload)
                return Reply(
                    202, b"", ((b"x-amzn-requestid", accepted.request_id.encode()), _EMPTY)
                )
            if kind == b"DryRun":
                dry = app.invoke_nowait(name, payload, invocation_type="DryRun")
                return Reply(204, b"", ((b"x-amzn-requestid", dry.request_id.encode()),))
            result = await app.invoke(
                name, payload, invocation_type="RequestResponse", client_context=client_context
            )
        except UnknownHandler:
            raise self._not_found(self._arn_prefix + name) from None
        except QueueFull:
            raise _ApiError(
                429,
                "TooManyRequestsException",
                "Rate Exceeded: the function's event queue is full; retry after a second.",
                members={"Reason": "ConcurrentInvocationLimitExceeded"},
                headers=[(b"retry-after", _RETRY_AFTER)],
            ) from None
        except (AppClosed, QueueUnavailable) as closed:
            raise _ApiError(
                503, "ServiceException", str(closed), headers=[(b"retry-after", _RETRY_AFTER)]
            ) from None
        except InvalidPayload as too_large:  # larger than the shared queue's messages
            raise _ApiError(413, "RequestTooLargeException", str(too_large)) from None
        headers = [(b"x-amzn-requestid", result.request_id.encode()), _EXECUTED]
        if result.function_error is not None:
            headers.append(_UNHANDLED)
        if log_type == b"Tail":
            tail = result.log.encode("utf-8")[-_LOG_TAIL_BYTES:]
            headers.append((b"x-amz-log-result", base64.b64encode(tail)))
        return json_reply(200, result.payload, *headers)

    # -- functions ----------------------------------------------------------------

    def _configuration(self, handler: Handler) -> dict[str, Any]:
        state = self._functions.get(handler.name) or _FunctionState(last_modified=0.0)
        timeout = state.timeout
        if timeout is None:
            config_timeout = handler.config.timeout
            timeout = (
                DEFAULT_TIMEOUT_SECONDS
                if config_timeout is None
                else max(1, math.ceil(config_timeout))
            )
        fn = handler.fn
        out: dict[str, Any] = {
            "FunctionName": handler.name,
            "FunctionArn": self._arn_prefix + handler.name,
            "Runtime": _RUNTIME,
            "Handler": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}",
            "CodeSize": 0,
            "Description": (handler.__doc__ or "").strip().split("\n")[0][:256],
            "Timeout": timeout,
            "MemorySize": 128,
            "LastModified": _iso(state.last_modified or self._created),
            "Version": "$LATEST",
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
        }
        if state.dead_letter_set and state.dead_letter_arn:
            out["DeadLetterConfig"] = {"TargetArn": state.dead_letter_arn}
        return out

    def _get_function(self, handler: Handler) -> Reply:
        body: dict[str, Any] = {
            "Configuration": self._configuration(handler),
            "Code": {"RepositoryType": "eventflow"},
        }
        if handler.concurrency is not None:
            body["Concurrency"] = {"ReservedConcurrentExecutions": handler.concurrency}
        return self._reply(200, body)

    def _list_functions(self, query: bytes) -> Reply:
        params = parse_qs(query.decode("latin-1")) if query else {}
        max_items = params.get("MaxItems", [str(_LIST_PAGE)])[0]
        if not max_items.isdigit() or not 1 <= int(max_items) <= 10_000:
            raise _invalid(f"MaxItems must be an integer from 1 to 10000, got {max_items!r}.")
        # Lambda returns at most 50 per page, whatever MaxItems says
        page = min(int(max_items), _LIST_PAGE)
        handlers = self._app.handlers
        names = sorted(handlers)
        marker = params.get("Marker", [""])[0]
        if marker:
            first = _decode_marker(marker)
            names = [name for name in names if name >= first]
        functions = [self._configuration(handlers[name]) for name in names[:page]]
        body: dict[str, Any] = {"Functions": functions}
        if len(names) > page:
            body["NextMarker"] = _encode_marker(names[page])
        return self._reply(200, body)

    async def _update_configuration(self, handler: Handler, body: bytes) -> Reply:
        fields = _json_object(body)
        unsupported = sorted(set(fields) - {"Timeout", "DeadLetterConfig"})
        if unsupported:
            raise _invalid(
                f"UpdateFunctionConfiguration supports Timeout and DeadLetterConfig only; "
                f"{', '.join(unsupported)} cannot be changed on an eventflow function."
            )
        async with self._config_lock:
            state = self._state(handler)
            timeout = state.timeout
            if "Timeout" in fields:
                timeout = fields["Timeout"]
                if (
                    isinstance(timeout, bool)
                    or not isinstance(timeout, int)
                    or not (1 <= timeout <= DEFAULT_TIMEOUT_SECONDS)
                ):
                    raise _invalid(
                        f"Timeout must be an integer number of seconds from 1 to "
                        f"{DEFAULT_TIMEOUT_SECONDS}, got {timeout!r}."
                    )
            dead_letter_set, dead_letter_arn = state.dead_letter_set, state.dead_letter_arn
            new_sinks: dict[str, Sink] = {}
            if "DeadLetterConfig" in fields:
                dlc = fields["DeadLetterConfig"]
                if not isinstance(dlc, dict) or set(dlc) - {"TargetArn"}:
                    raise _invalid(
                        'DeadLetterConfig must be {"TargetArn": "<SQS queue or SNS topic ARN>"}, '
                        f"got {dlc!r}."
                    )
                target = dlc.get("TargetArn") or None
                if target is not None:
                    await self._sink(
                        target, "DeadLetterConfig.TargetArn", new_sinks, ("sqs", "sns")
                    )
                dead_letter_set, dead_letter_arn = True, target
            candidate = _FunctionState(
                last_modified=time.time(),
                timeout=timeout,
                dead_letter_set=dead_letter_set,
                dead_letter_arn=dead_letter_arn,
                invoke_config=state.invoke_config,
            )
            await self._apply(handler, candidate, new_sinks)
        return self._reply(200, self._configuration(handler))

    # -- event-invoke config --------------------------------------------------------

    def _invoke_config_body(self, handler: Handler, config: _InvokeConfig) -> dict[str, Any]:
        out: dict[str, Any] = {
            "LastModified": config.last_modified,
            "FunctionArn": f"{self._arn_prefix}{handler.name}:$LATEST",
        }
        if config.max_retries is not None:
            out["MaximumRetryAttempts"] = config.max_retries
        if config.max_age is not None:
            out["MaximumEventAgeInSeconds"] = config.max_age
        out["DestinationConfig"] = {
            "OnSuccess": {"Destination": config.on_success} if config.on_success else {},
            "OnFailure": {"Destination": config.on_failure} if config.on_failure else {},
        }
        return out

    def _get_invoke_config(self, handler: Handler) -> Reply:
        state = self._functions.get(handler.name)
        if state is None or state.invoke_config is None:
            raise _ApiError(
                404,
                "ResourceNotFoundException",
                f"The function {self._arn_prefix}{handler.name} has no asynchronous invocation "
                "configuration; set one with PutFunctionEventInvokeConfig.",
            )
        return self._reply(200, self._invoke_config_body(handler, state.invoke_config))

    def _list_invoke_configs(self, handler: Handler, query: bytes) -> Reply:
        params = parse_qs(query.decode("latin-1")) if query else {}
        max_items = params.get("MaxItems", ["50"])[0]
        if not max_items.isdigit() or not 1 <= int(max_items) <= 50:
            raise _invalid(f"MaxItems must be an integer from 1 to 50, got {max_items!r}.")
        state = self._functions.get(handler.name)
        configs = []
        if state is not None and state.invoke_config is not None:
            configs.append(self._invoke_config_body(handler, state.invoke_config))
        return self._reply(200, {"FunctionEventInvokeConfigs": configs})

    async def _put_invoke_config(self, handler: Handler, body: bytes, *, merge: bool) -> Reply:
        fields = _json_object(body)
        allowed = {"MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise _invalid(
                f"Unknown field(s) {', '.join(unknown)}; an event-invoke config has "
                "MaximumRetryAttempts, MaximumEventAgeInSeconds and DestinationConfig."
            )
        retries = _bounded_int(fields, "MaximumRetryAttempts", 0, 2)
        age = _bounded_int(fields, "MaximumEventAgeInSeconds", 60, 21_600)
        destinations = _destinations(fields.get("DestinationConfig"))
        async with self._config_lock:
            state = self._state(handler)
            old = state.invoke_config if merge else None
            new = (
                _InvokeConfig()
                if old is None
                else _InvokeConfig(old.max_retries, old.max_age, old.on_success, old.on_failure)
            )
            if "MaximumRetryAttempts" in fields or not merge:
                new.max_retries = retries
            if "MaximumEventAgeInSeconds" in fields or not merge:
                new.max_age = age
            new_sinks: dict[str, Sink] = {}
            for side, arn in destinations.items():
                if arn is not None:
                    await self._sink(arn, f"DestinationConfig.{side}.Destination", new_sinks)
                if side == "OnSuccess":
                    new.on_success = arn
                else:
                    new.on_failure = arn
            candidate = _FunctionState(
                last_modified=state.last_modified,
                timeout=state.timeout,
                dead_letter_set=state.dead_letter_set,
                dead_letter_arn=state.dead_letter_arn,
                invoke_config=new,
            )
            await self._apply(handler, candidate, new_sinks)
        return self._reply(200, self._invoke_config_body(handler, new))

    async def _delete_invoke_config(self, handler: Handler) -> Reply:
        async with self._config_lock:
            state = self._functions.get(handler.name)
            if state is None or state.invoke_config is None:
                raise _ApiError(
                    404,
                    "ResourceNotFoundException",
                    f"The function {self._arn_prefix}{handler.name} has no asynchronous "
                    "invocation configuration to delete.",
                )
            candidate = _FunctionState(
                last_modified=state.last_modified,
                timeout=state.timeout,
                dead_letter_set=state.dead_letter_set,
                dead_letter_arn=state.dead_letter_arn,
            )
            await self._apply(handler, candidate)
        return Reply(204, b"", ((b"x-amzn-requestid", new_request_id().encode()),))

    # -- applying -------------------------------------------------------------------

    async def _apply(
        self, handler: Handler, state: _FunctionState, new_sinks: Mapping[str, Sink] | None = None
    ) -> None:
        """Configure the App's handler from its decorator options and ``state``; keep it.

        ``new_sinks`` (made by :meth:`_sink` for this change) are kept for later requests
        only once the App has opened them, so a target that failed its check is checked again.
        """
        sinks = {**self._sinks, **(new_sinks or {})}
        changes: dict[str, Any] = {}
        if state.timeout is not None:
            changes["timeout"] = float(state.timeout)
        if state.dead_letter_set:
            arn = state.dead_letter_arn
            changes["dead_letter"] = sinks[arn] if arn else None
        ic = state.invoke_config
        if ic is not None:
            if ic.max_retries is not None:
                changes["max_retries"] = ic.max_retries
            if ic.max_age is not None:
                changes["max_event_age"] = float(ic.max_age)
            if ic.on_success is not None:
                changes["on_success"] = sinks[ic.on_success]
            if ic.on_failure is not None:
                changes["on_failure"] = sinks[ic.on_failure]
        config = handler.config.replace(**changes) if changes else handler.config
        try:
            await self._app.configure_handler(handler, config)
        except AppClosed as closed:
            raise _ApiError(
                503, "ServiceException", str(closed), headers=[(b"retry-after", _RETRY_AFTER)]
            ) from None
        except EventflowError as exc:  # a sink's start-up check failed, say
            raise _invalid(f"The configuration cannot be applied: {exc}") from None
        self._sinks.update(new_sinks or {})
        self._functions[handler.name] = state

    async def _sink(
        self,
        arn: str,
        field_name: str,
        new_sinks: dict[str, Sink],
        services: tuple[str, ...] = ("sqs", "sns", "events"),
    ) -> Sink:
        """The sink for a destination or dead-letter ARN: the one the App opened for it
        before, or a new one, added to ``new_sinks`` (see :meth:`_apply`)."""
        sink = self._sinks.get(arn) or new_sinks.get(arn)
        if sink is not None:
            return sink
        from ..aws import ResourceCheckFailed, sink_for_arn

        try:
            sink = await sink_for_arn(arn, services=services, label=field_name)
        except ResourceCheckFailed as exc:  # the AWS error map's message: why, and what to do
            raise _invalid(f"{field_name} cannot be used: {exc}") from None
        except ConfigurationError as exc:  # an ARN of the wrong kind, which names the field
            raise _invalid(str(exc)) from None
        new_sinks[arn] = sink
        return sink


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body else {}
    except (ValueError, RecursionError) as exc:
        raise _ApiError(
            400, "InvalidRequestContentException", f"The request body is not JSON: {exc}."
        ) from None
    if not isinstance(value, dict):
        raise _ApiError(
            400, "InvalidRequestContentException", "The request body must be a JSON object."
        )
    return value


def _bounded_int(fields: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}, got {value!r}.")
    return value


def _destinations(value: Any) -> dict[str, str | None]:
    """The sides given in a DestinationConfig: side -> ARN, or None to unset it."""
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - {"OnSuccess", "OnFailure"}:
        raise _invalid(
            'DestinationConfig must be {"OnSuccess": {"Destination": arn}, "OnFailure": '
            f'{{"Destination": arn}}}}, got {value!r}.'
        )
    out: dict[str, str | None] = {}
    for side, target in value.items():
        if target is None:
            out[side] = None
            continue
        if not isinstance(target, dict) or set(target) - {"Destination"}:
            raise _invalid(
                f'DestinationConfig.{side} must be {{"Destination": arn}}, got {target!r}.'
            )
        arn = target.get("Destination")
        if arn is not None and (not isinstance(arn, str) or len(arn) > 350):
            raise _invalid(
                f"DestinationConfig.{side}.Destination must be an ARN of at most 350 "
                f"characters, got {arn!r}."
            )
        out[side] = arn or None
    return out


def _encode_marker(name: str) -> str:
    """The opaque ``NextMarker``: the next page's first function name, base64url."""
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_marker(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker.encode("ascii")).decode()
    except (ValueError, UnicodeError):
        raise _invalid(
            f"Marker {marker!r} is not one this endpoint gave; pass the NextMarker of the "
            "previous ListFunctions answer."
        ) from None


def _client_context(scope: Scope) -> dict[str, Any] | None:
    """The ``X-Amz-Client-Context`` header: base64-encoded JSON, at most 3,583 bytes."""
    raw = next((v for k, v in scope["headers"] if k == b"x-amz-client-context"), None)
    if raw is None:
        return None
    if len(raw) > MAX_CLIENT_CONTEXT_BYTES:
        raise _invalid(
            f"ClientContext must be at most {MAX_CLIENT_CONTEXT_BYTES} bytes of base64, "
            f"got {len(raw)}."
        )
    try:
        value = json.loads(base64.b64decode(raw, validate=True))
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise _ApiError(
            400,
            "InvalidRequestContentException",
            "Client context must be a valid Base64-encoded JSON object.",
        )
    return value


@dataclass(frozen=True, slots=True)
class _Request:
    """What an operation of the table below is given."""

    scope: Scope
    method: str
    name: str  # the {name} of the path, as given: a name or an ARN
    query: bytes
    body: bytes
    invocation_type: bytes | None
    log_type: bytes | None


_Operation = Callable[[LambdaAPI, _Request], Awaitable[Reply]]
_NAME: Final = "(?P<name>[^/]*)"
# (methods, path, operation), tried in order; no match is a 404 UnknownOperationException
_OPERATIONS: Final[tuple[tuple[frozenset[str], re.Pattern[str], _Operation], ...]] = tuple(
    (frozenset(methods.split()), re.compile(path), operation)
    for methods, path, operation in (
        ("POST", f"/2015-03-31/functions/{_NAME}/invocations", LambdaAPI._op_invoke),
        ("GET", "/2015-03-31/functions/?", LambdaAPI._op_list_functions),
        ("GET", f"/2015-03-31/functions/{_NAME}/?", LambdaAPI._op_get_function),
        ("GET", f"/2015-03-31/functions/{_NAME}/configuration", LambdaAPI._op_get_configuration),
        ("PUT", f"/2015-03-31/functions/{_NAME}/configuration", LambdaAPI._op_update_configuration),
        (
            "GET",
            f"/2019-09-25/functions/{_NAME}/event-invoke-config",
            LambdaAPI._op_get_invoke_config,
        ),
        (
            "PUT POST",
            f"/2019-09-25/functions/{_NAME}/event-invoke-config",
            LambdaAPI._op_put_invoke_config,
        ),
        (
            "DELETE",
            f"/2019-09-25/functions/{_NAME}/event-invoke-config",
            LambdaAPI._op_delete_invoke_config,
        ),
        (
            "GET",
            f"/2019-09-25/functions/{_NAME}/event-invoke-config/list",
            LambdaAPI._op_list_invoke_configs,
        ),
    )
)

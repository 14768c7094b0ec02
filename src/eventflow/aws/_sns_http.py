"""SNS → HTTP(S) delivery into an eventflow App: an ASGI endpoint that verifies SNS signatures.

:class:`SNSEndpoint` is a plain ASGI 3 application (no web framework needed). Mount it in
Starlette or FastAPI, or serve it alone with uvicorn while the :class:`eventflow.App` runs::

    app = eventflow.App(handlers=[on_order])
    endpoint = SNSEndpoint(app, on_order, topic_arns=["arn:aws:sns:us-east-1:123456789012:orders"])
    async with app:
        await uvicorn.Server(uvicorn.Config(endpoint, host="0.0.0.0", port=8080)).serve()

Every POST goes through these checks, in order; the first that fails answers the request,
is counted in :meth:`SNSEndpoint.statistics` under its reason and is logged at warning
level on ``structlog.get_logger("eventflow.sns")``. A refused request never reaches the
handler.

=============================  ======  ==========================================================
reason                         status  cause
=============================  ======  ==========================================================
method_not_allowed             405     not a POST (the answer carries ``Allow: POST``)
raw_delivery                   400     ``x-amz-sns-rawdelivery: true``: a raw body has no envelope
                                       and no signature, so it cannot be verified; turn raw
                                       message delivery off for HTTP(S) subscriptions
body_too_large                 413     the body exceeds ``max_body_bytes``
body_timeout                   408     the body did not arrive within ``body_timeout`` seconds
malformed_json                 400     the body is not UTF-8 JSON, or not a JSON object
invalid_payload                400     JSON beyond a payload limit (NaN, nesting, a lone
                                       surrogate, ...): no handler could be given it
unknown_type                   400     ``Type`` is not Notification, SubscriptionConfirmation or
                                       UnsubscribeConfirmation
type_mismatch                  400     the ``x-amz-sns-message-type`` header differs from ``Type``
malformed_message              400     a field the message type needs is missing or not a string
foreign_topic                  403     ``TopicArn`` is not in ``topic_arns``
missing_signature              403     no ``Signature``, ``SignatureVersion`` or ``SigningCertURL``
unsupported_signature_version  403     ``SignatureVersion`` is neither "1" (SHA1) nor "2" (SHA256)
bad_certificate_url            403     ``SigningCertURL`` is not https, not on an SNS host
                                       (``sns.<region>.amazonaws.com[.cn]``) or not a ``.pem``
bad_subscribe_url              403     ``SubscribeURL`` is not an https URL on an SNS host
cert_fetch_rate_limited        503     the certificate is not cached and the fetch rate bound is
                                       reached (``Retry-After``; SNS retries a 5xx)
bad_certificate                403     the fetched certificate is no PEM X.509 RSA certificate
certificate_unavailable        502     the certificate could not be fetched (SNS retries a 5xx)
bad_signature                  403     the signature does not match the message
confirmation_failed            502     the GET on ``SubscribeURL`` failed (SNS retries a 5xx)
unknown_handler                500     the App does not serve the endpoint's handler
=============================  ======  ==========================================================

An answer sent before the whole body was read (405, ``raw_delivery``, ``body_too_large``,
``body_timeout``) carries ``Connection: close``, so nothing more is read from that client.

Signature problems answer 403 (not 400) because the request may be well formed yet is not
proven to come from SNS. SNS does not retry a 4xx, so a refused message is not redelivered.

A verified ``Notification`` becomes the event SNS gives a Lambda function (see
:func:`lambda_event`) and is queued with ``app.invoke_nowait``: 200 once accepted, 503 with
``Retry-After`` when the queue is full or the App is not running (a 5xx, so SNS retries the
delivery). A ``SubscriptionConfirmation`` is confirmed with a GET on its ``SubscribeURL``
(200 once confirmed). An ``UnsubscribeConfirmation`` is logged and answered 200; the
subscription is not restored.

Certificates are not checked for expiry or subject: as in AWS's own validators, trust comes
from fetching them over https from an SNS host named by the (checked) ``SigningCertURL``.

Certificate fetch policy. Every check above the certificate rows is made before anything is
fetched, so a message that fails one costs no outbound request. A certificate is fetched at
most once per URL at a time and kept (``cert_cache_size`` URLs, least recently used evicted).
A URL whose fetch failed, or served no certificate, is remembered for ``cert_failure_ttl``
seconds on the App's clock (at most 1,000 URLs, oldest forgotten first): messages naming it
get the same answer without a fetch. Fetches are rate bounded by a token bucket
(``cert_fetch_burst`` at once, ``cert_fetch_rate`` per second after that, on the App's
clock), so forged messages naming ever new URLs on SNS hosts cannot make the endpoint fetch
more than that; over the bound the message is answered 503 and SNS delivers it again.
Cached certificates are used whatever the bucket holds.

Who runs a fetch. The endpoint owns its certificate fetches in a task group that lives
while the endpoint is entered: the ASGI ``lifespan`` enters it (uvicorn serving it alone,
``eventflow serve`` mounting it), or enter it yourself where it is mounted without a
lifespan of its own (``async with app, endpoint:`` in a FastAPI or Starlette lifespan).
Every request that needs a certificate being fetched waits for that one fetch; a request
that gives up (is cancelled) stops waiting, and the fetch goes on for the others. Leaving
the endpoint cancels the fetches still running (their requests are answered 502). An
endpoint that is not entered still works: the request that starts a fetch runs it itself,
shielded from its own cancellation, so the others waiting for it are not cancelled with it.
A fetch is bounded to ``cert_fetch_timeout`` seconds (15 by default: SNS gives a delivery
15 s in all), whoever runs it; one that takes longer counts as a failed fetch.

The signature rules and cryptography are :mod:`eventflow.aws._sns_signature` (no I/O);
the ASGI plumbing (body reading, lifespan, replies) is :mod:`eventflow._asgi`, shared with
:class:`eventflow.http.LambdaAPI`.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, NoReturn
from urllib.parse import urlsplit

import aiohttp
import anyio
import anyio.abc
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa

from .._asgi import (
    CLOSE,
    BodyTimedOut,
    BodyTooLarge,
    Disconnected,
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
from .._payload import check_payload
from ..events._sns import sns_lambda_event as lambda_event
from ._errors import AWSError
from ._routes import router_for, sns_routes
from ._sns_signature import (
    SignatureError,
    check_before_fetch,
    message_field,
    public_key,
    sns_url_problem,
    verify_with_key,
)

if TYPE_CHECKING:
    from .._app import App
    from ..routing import Route

__all__ = (
    "SNSEndpoint",
    "SNSEndpointStatistics",
    "lambda_event",
    "fetch_certificate",
    "http_get_status",
    "DEFAULT_MAX_BODY_BYTES",
)

CertFetcher = Callable[[str], Awaitable[bytes]]
HttpGet = Callable[[str], Awaitable[int]]

#: SNS messages are at most 256 KiB; JSON escaping in the envelope can double that (every
#: quote or backslash of the message gains a backslash), plus room for the other fields.
DEFAULT_MAX_BODY_BYTES: Final = 2 * 262_144 + 65_536
#: Certificates kept, by URL (SNS uses one certificate per region at a time).
DEFAULT_CERT_CACHE_SIZE: Final = 100
#: Seconds the default fetchers wait; SNS gives an HTTP(S) delivery 15 s in all.
DEFAULT_TIMEOUT: Final = 5.0
#: Seconds a client has to send a whole body; SNS gives an HTTP(S) delivery 15 s in all.
DEFAULT_BODY_TIMEOUT: Final = 15.0
#: Seconds a certificate URL that failed is answered from memory (SNS retries after 20 s).
DEFAULT_CERT_FAILURE_TTL: Final = 60.0
#: Certificate fetches allowed at once; SNS signs with one certificate per region.
DEFAULT_CERT_FETCH_BURST: Final = 10
#: Seconds a certificate fetch may take, whoever runs it: SNS gives a delivery 15 s in all.
DEFAULT_CERT_FETCH_TIMEOUT: Final = 15.0
#: Certificate fetches per second once the burst is spent.
DEFAULT_CERT_FETCH_RATE: Final = 1.0
# failed certificate URLs remembered at once, oldest forgotten first
_CERT_FAILURES_KEPT: Final = 1000
_MAX_CERT_BYTES: Final = 65_536
_RETRY_AFTER: Final = "1"

_log = structlog.get_logger("eventflow.sns")

_MESSAGE_TYPES: Final = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")


# --------------------------------------------------------------------------- default HTTP


async def fetch_certificate(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The default ``cert_fetcher``: GET ``url`` with aiohttp, without following redirects.

    Args:
        url: The certificate URL (already checked by the endpoint).
        timeout: Seconds to wait for the whole response.

    Returns:
        The response body.

    Raises:
        AWSError: The answer is not 200 or is larger than 64 KiB.
        aiohttp.ClientError: The request failed.
        TimeoutError: No answer in time.
    """
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.get(url, allow_redirects=False) as response,
    ):
        if response.status != 200:
            raise AWSError(
                f"The signing certificate at {url} could not be fetched: the server answered "
                f"{response.status}."
            )
        body = bytearray()
        async for chunk in response.content.iter_chunked(8192):
            body += chunk
            if len(body) > _MAX_CERT_BYTES:
                raise AWSError(
                    f"The signing certificate at {url} is larger than {_MAX_CERT_BYTES} bytes, "
                    "so it is not an SNS certificate."
                )
    return bytes(body)


async def http_get_status(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """The default ``http_get``: GET ``url`` with aiohttp and return the status code.

    Args:
        url: The ``SubscribeURL`` (already checked by the endpoint).
        timeout: Seconds to wait for the whole response.

    Returns:
        The HTTP status of the answer; redirects are not followed.

    Raises:
        aiohttp.ClientError: The request failed.
        TimeoutError: No answer in time.
    """
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.get(url, allow_redirects=False) as response,
    ):
        await response.read()
        return response.status


# --------------------------------------------------------------------------- the endpoint


@dataclass(frozen=True, slots=True)
class SNSEndpointStatistics:
    """A snapshot of an :class:`SNSEndpoint`'s counters.

    Attributes:
        accepted: Notifications queued on the App (answered 200).
        confirmed: Subscriptions confirmed by a GET on their ``SubscribeURL``.
        unsubscribed: UnsubscribeConfirmation messages received.
        busy: Notifications answered 503 because the queue was full or the App not running.
        unmatched: Notifications that matched no route (with routes): answered 200, not run.
        refused: Refused requests by reason (see the module documentation for the reasons).
        cert_fetches: Certificate fetches started.
        cert_failures_kept: Failed certificate URLs remembered now.
    """

    accepted: int
    confirmed: int
    unsubscribed: int
    busy: int
    refused: Mapping[str, int]
    cert_fetches: int = 0
    cert_failures_kept: int = 0
    unmatched: int = 0

    @property
    def refused_total(self) -> int:
        """All refused requests, whatever the reason."""
        return sum(self.refused.values())


class _Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.close = close  # refused before the whole body was read


class _CertificateUnavailable(Exception):
    pass


class _FetchRateLimited(Exception):
    pass


class _Fetch:
    """One certificate fetch, shared by every request that needs its certificate meanwhile."""

    __slots__ = ("done", "error", "key")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.key: rsa.RSAPublicKey | None = None
        self.error: Exception | None = None

    async def result(self) -> rsa.RSAPublicKey:
        """The key, once fetched; the fetch's error if it failed."""
        await self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.key is not None
        return self.key


class _TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second of ``now()``."""

    __slots__ = ("_burst", "_now", "_rate", "_stamp", "_tokens")

    def __init__(self, burst: int, rate: float, now: Callable[[], float]) -> None:
        self._burst = float(burst)
        self._rate = rate
        self._now = now
        self._tokens = float(burst)
        self._stamp: float | None = None

    def take(self) -> bool:
        now = self._now()
        if self._stamp is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def _refuse(status: int, reason: str, message: str, *, close: bool = False) -> NoReturn:
    raise _Refusal(status, reason, message, close=close)


class SNSEndpoint:
    """An ASGI 3 application that receives SNS HTTP(S) deliveries and queues them on an App.

    See the module documentation for the checks, their status codes and reasons. The App
    must be running (``async with app``) for notifications to be accepted; until then they
    are answered 503 and SNS retries them. The endpoint answers ``lifespan`` startup and
    shutdown itself (startup fails if the App does not serve ``handler``), so uvicorn can
    serve it alone.

    Args:
        app: The App that runs the handler.
        handler: The handler (name or decorated function) that receives each notification
            as the SNS event for Lambda, or a list of :class:`eventflow.routing.Route` whose
            matches are ``FilterPolicy`` objects or functions: each notification then runs
            once per matching route, with its own request ID; one that matches none is
            answered 200 and counted as ``unmatched``.
        topic_arns: Topics whose messages are accepted; None accepts every topic. Give it
            whenever the URL is reachable by others: anyone can subscribe an endpoint to
            their own topic, and their messages carry valid SNS signatures.
        verify_signatures: Verify every message's signature (turn off only for local tests
            that send unsigned messages).
        cert_fetcher: ``async (url) -> bytes`` returning the PEM at a signing certificate
            URL (default: :func:`fetch_certificate`). Certificates are cached by URL.
        http_get: ``async (url) -> status`` making the GET that confirms a subscription
            (default: :func:`http_get_status`).
        max_body_bytes: Largest accepted body in bytes; larger ones are answered 413. The
            default, 589,824, is twice SNS's 256 KiB message limit (JSON escaping can double
            a message) plus 64 KiB for the envelope's other fields.
        cert_cache_size: Certificates kept, least recently used evicted first.
        body_timeout: Seconds a client has to send a whole body, from the first read;
            a slower one is answered 408 and its connection closed.
        cert_failure_ttl: Seconds (on the App's clock) that a certificate URL whose fetch
            failed, or which served no certificate, is answered from memory, unfetched.
        cert_fetch_burst: Certificate fetches that may start at once.
        cert_fetch_rate: Certificate fetches per second once the burst is spent; a message
            whose certificate would need a fetch beyond this is answered 503.
        cert_fetch_timeout: Seconds a certificate fetch may take (whatever ``cert_fetcher``
            does); a slower one is a failed fetch: 502, and remembered as failures are.

    Raises:
        ConfigurationError: An argument has the wrong type or an impossible value.
    """

    def __init__(
        self,
        app: App,
        handler: str | Handler | Sequence[Route],
        *,
        topic_arns: Iterable[str] | None = None,
        verify_signatures: bool = True,
        cert_fetcher: CertFetcher | None = None,
        http_get: HttpGet | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        cert_cache_size: int = DEFAULT_CERT_CACHE_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        cert_failure_ttl: float = DEFAULT_CERT_FAILURE_TTL,
        cert_fetch_burst: int = DEFAULT_CERT_FETCH_BURST,
        cert_fetch_rate: float = DEFAULT_CERT_FETCH_RATE,
        cert_fetch_timeout: float = DEFAULT_CERT_FETCH_TIMEOUT,
    ) -> None:
        self._router = router_for(handler, "SNSEndpoint", sns=True)
        if self._router is not None:
            handlers = [route.handler for route in self._router.routes]
        elif isinstance(handler, str | Handler):
            handlers = [handler]
        else:
            raise ConfigurationError(
                f"handler must be a handler name or a function decorated with "
                f"@eventflow.handler, got {handler!r}."
            )
        if isinstance(topic_arns, str):
            raise ConfigurationError(
                f"topic_arns must be a collection of topic ARNs, got the string {topic_arns!r}; "
                "write topic_arns=[...] around it."
            )
        topics = None if topic_arns is None else frozenset(topic_arns)
        if topics is not None:
            if not topics:
                raise ConfigurationError(
                    "topic_arns is empty, so every message would be refused; list the topics "
                    "to accept, or pass None to accept every topic."
                )
            wrong = sorted(repr(t) for t in topics if not str(t).startswith("arn:"))
            if wrong:
                raise ConfigurationError(
                    f"topic_arns must hold topic ARNs (arn:aws:sns:<region>:<account>:<name>), "
                    f"got {', '.join(wrong)}."
                )
        for option, value, least in (
            ("max_body_bytes", max_body_bytes, 1024),
            ("cert_cache_size", cert_cache_size, 1),
            ("cert_fetch_burst", cert_fetch_burst, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigurationError(
                    f"{option} must be an integer of at least {least}, got {value!r}."
                )
        for option, seconds in (
            ("body_timeout", body_timeout),
            ("cert_failure_ttl", cert_failure_ttl),
            ("cert_fetch_rate", cert_fetch_rate),
            ("cert_fetch_timeout", cert_fetch_timeout),
        ):
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not 0 < seconds < math.inf
            ):
                raise ConfigurationError(f"{option} must be a positive number, got {seconds!r}.")
        for option, function in (("cert_fetcher", cert_fetcher), ("http_get", http_get)):
            if function is not None and not callable(function):
                raise ConfigurationError(
                    f"{option} must be an async function taking a URL, got {function!r}."
                )
        self._app = app
        self._handler = handlers[0]
        self._handler_names = [h if isinstance(h, str) else h.name for h in handlers]
        self._handler_name = self._handler_names[0]
        self._unmatched = 0
        self._topics = topics
        self._verify = bool(verify_signatures)
        self._fetch: CertFetcher = cert_fetcher if cert_fetcher is not None else fetch_certificate
        self._http_get: HttpGet = http_get if http_get is not None else http_get_status
        self._max_body = max_body_bytes
        self._cache_size = cert_cache_size
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._loading: dict[str, _Fetch] = {}
        self._fetches: anyio.abc.TaskGroup | None = None  # while entered: runs the fetches
        # url -> (remembered until, a fresh copy of the error), oldest first
        self._failures: OrderedDict[str, tuple[float, Callable[[], Exception]]] = OrderedDict()
        self._failure_ttl = float(cert_failure_ttl)
        self._body_timeout = float(body_timeout)
        self._fetch_timeout = float(cert_fetch_timeout)
        self._fetch_bucket = _TokenBucket(cert_fetch_burst, float(cert_fetch_rate), self._now)
        self._cert_fetches = 0
        self._accepted = 0
        self._confirmed = 0
        self._unsubscribed = 0
        self._busy = 0
        self._refused: Counter[str] = Counter()
        if not self._verify:
            _log.warning(
                "sns.signatures_not_verified",
                handler=self._handler_name,
                detail="verify_signatures=False: anyone who can reach this endpoint can invoke "
                "the handler; turn verification on outside local tests.",
            )

    @property
    def app(self) -> App:
        """The app this endpoint submits events to."""
        return self._app

    def _now(self) -> float:
        return self._app.clock.now()

    @property
    def handler_name(self) -> str:
        """The name of the handler that receives the notifications."""
        return self._handler_name

    def statistics(self) -> SNSEndpointStatistics:
        """A frozen snapshot of the endpoint's counters."""
        return SNSEndpointStatistics(
            accepted=self._accepted,
            confirmed=self._confirmed,
            unsubscribed=self._unsubscribed,
            busy=self._busy,
            refused=MappingProxyType(dict(self._refused)),
            cert_fetches=self._cert_fetches,
            cert_failures_kept=len(self._failures),
            unmatched=self._unmatched,
        )

    # -- lifetime -----------------------------------------------------------------

    async def __aenter__(self) -> SNSEndpoint:
        """Open the task group that runs the certificate fetches, until the block ends.

        The ASGI ``lifespan`` enters the endpoint; enter it yourself where it is mounted
        without one (see the module documentation).

        Raises:
            RuntimeError: The endpoint is entered already.
        """
        if self._fetches is not None:
            raise RuntimeError(
                "This SNSEndpoint is entered already (by the ASGI lifespan or an 'async "
                "with'); enter it once, where it is served."
            )
        fetches = anyio.create_task_group()
        await fetches.__aenter__()
        self._fetches = fetches
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Cancel the fetches still running (their requests are answered 502); close the group."""
        fetches, self._fetches = self._fetches, None
        if fetches is not None:
            fetches.cancel_scope.cancel()
            await fetches.__aexit__(None, None, None)

    # -- ASGI ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: ``http`` requests and the ``lifespan`` protocol."""
        await serve_scope(
            "SNSEndpoint", scope, receive, send, http=self._http, lifespan=self._lifespan
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # startup fails for a handler the App does not serve; else the endpoint is entered
        await run_lifespan(receive, send, startup_problem=self._handler_problem, context=self)

    def _handler_problem(self) -> str | None:
        try:
            served = self._app.handlers
        except EventflowError as exc:
            return str(exc)
        for name in self._handler_names:
            if name in served:
                continue
            known = ", ".join(sorted(served)) or "none"
            return (
                f"The SNS endpoint's handler {name!r} is not served by app "
                f"{self._app.name!r} (it serves: {known}); register it on the app or pass it "
                "in App(handlers=[...])."
            )
        return None

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            headers[bytes(name).decode("latin-1").lower()] = bytes(value).decode("latin-1")
        context: dict[str, Any] = {"client": client_address(scope)}
        try:
            reply = await self._handle(scope, headers, receive, context)
        except _Refusal as refusal:
            self._refused[refusal.reason] += 1
            _log.warning(
                "sns.refused",
                reason=refusal.reason,
                status=refusal.status,
                detail=refusal.message,
                **context,
            )
            extra: tuple[tuple[bytes, bytes], ...] = ()
            if refusal.status == 405:
                extra = ((b"allow", b"POST"),)
            elif refusal.status == 503:
                extra = ((b"retry-after", _RETRY_AFTER.encode("ascii")),)
            if refusal.close:
                extra += (CLOSE,)
            reply = json_reply(
                refusal.status, {"error": refusal.reason, "message": refusal.message}, *extra
            )
        except Disconnected:
            return
        await send_reply(send, reply)

    async def _handle(
        self,
        scope: Scope,
        headers: Mapping[str, str],
        receive: Receive,
        context: dict[str, Any],
    ) -> Reply:
        if scope.get("method") != "POST":
            _refuse(
                405,
                "method_not_allowed",
                f"This SNS endpoint accepts only POST requests, not {scope.get('method')}.",
                close=True,
            )
        if headers.get("x-amz-sns-rawdelivery", "").strip().lower() == "true":
            _refuse(
                400,
                "raw_delivery",
                "Raw message delivery sends no SNS envelope and no signature, so this message "
                "cannot be verified; turn off RawMessageDelivery on the HTTP(S) subscription.",
                close=True,
            )
        message = _parse(await self._read_body(headers, receive))
        message_type = message.get("Type")
        if message_type not in _MESSAGE_TYPES:
            _refuse(
                400,
                "unknown_type",
                f"The message has Type {message_type!r}; SNS sends Notification, "
                "SubscriptionConfirmation and UnsubscribeConfirmation messages.",
            )
        context["message_type"] = message_type
        header_type = headers.get("x-amz-sns-message-type")
        if header_type is not None and header_type != message_type:
            _refuse(
                400,
                "type_mismatch",
                f"The x-amz-sns-message-type header says {header_type!r} but the message's Type "
                f"is {message_type!r}; SNS sends the same type in both.",
            )
        _check_fields(message, message_type)
        context["message_id"] = message["MessageId"]
        topic = message["TopicArn"]
        context["topic_arn"] = topic
        if self._topics is not None and topic not in self._topics:
            _refuse(
                403,
                "foreign_topic",
                f"Messages from topic {topic} are not accepted here; add it to the endpoint's "
                "topic_arns if this subscription is yours.",
            )
        if message_type == "SubscriptionConfirmation":
            _check_subscribe_url(message)  # before the signature: it may cost a fetch
        if self._verify:
            await self._check_signature(message)
        if message_type == "Notification":
            subscription = headers.get("x-amz-sns-subscription-arn")
            return await self._notify(lambda_event(message, subscription), context, message)
        if message_type == "SubscriptionConfirmation":
            return await self._confirm(message, context)
        self._unsubscribed += 1
        _log.info(
            "sns.unsubscribed",
            detail="SNS reports that a subscription of this endpoint was deleted; it is not "
            "restored.",
            **context,
        )
        return json_reply(200, {"status": "unsubscribe_noted"})

    async def _read_body(self, headers: Mapping[str, str], receive: Receive) -> bytes:
        declared = headers.get("content-length", "")
        try:
            return await read_body(
                receive,
                limit=self._max_body,
                timeout=self._body_timeout,
                declared=int(declared) if declared.isdigit() else -1,
            )
        except BodyTooLarge:
            _refuse(
                413,
                "body_too_large",
                f"The body is larger than this endpoint's limit of {self._max_body} bytes; SNS "
                "messages are at most 256 KiB, raise max_body_bytes if yours are escaped "
                "heavily.",
                close=True,
            )
        except BodyTimedOut:
            _refuse(
                408,
                "body_timeout",
                f"The body did not arrive within {self._body_timeout:g} seconds; SNS sends "
                "its messages at once.",
                close=True,
            )

    async def _check_signature(self, message: Mapping[str, Any]) -> None:
        try:
            url = check_before_fetch(message)  # refuse what needs no fetch first
            verify_with_key(message, await self._key(url))
        except SignatureError as exc:
            _refuse(403, exc.reason, str(exc))
        except _CertificateUnavailable as exc:
            _refuse(502, "certificate_unavailable", str(exc))
        except _FetchRateLimited as exc:
            _refuse(503, "cert_fetch_rate_limited", str(exc))

    async def _key(self, url: str) -> rsa.RSAPublicKey:
        key = self._keys.get(url)
        if key is not None:
            self._keys.move_to_end(url)
            return key
        failure = self._failures.get(url)
        if failure is not None:
            until, error = failure
            if self._now() < until:
                raise error()
            del self._failures[url]
        fetch = self._loading.get(url)
        if fetch is None:
            if not self._fetch_bucket.take():
                raise _FetchRateLimited(
                    f"The signing certificate {url} is not cached and this endpoint has made "
                    "as many certificate fetches as its cert_fetch_burst and cert_fetch_rate "
                    "allow; the message is answered 503 so that SNS delivers it again."
                )
            self._cert_fetches += 1
            fetch = self._loading[url] = _Fetch()
            if self._fetches is not None:
                self._fetches.start_soon(self._run_fetch, url, fetch, name=f"sns-cert {url}")
            else:
                # not entered: this request runs it, and giving up must not fail the others
                with anyio.CancelScope(shield=True):
                    await self._run_fetch(url, fetch)
        # cancelling this wait leaves the fetch running for the other requests
        return await fetch.result()

    async def _run_fetch(self, url: str, fetch: _Fetch) -> None:
        """Fetch and read the certificate at ``url``; tell every request waiting for it."""
        try:
            fetch.key = await self._load_key(url)
        except (SignatureError, _CertificateUnavailable) as exc:
            fetch.error = exc
        finally:
            if self._loading.get(url) is fetch:
                del self._loading[url]
            if fetch.key is None and fetch.error is None:  # cancelled: the endpoint stopped
                fetch.error = _CertificateUnavailable(
                    f"The endpoint stopped while fetching the signing certificate {url}; the "
                    "message is answered 502 so that SNS delivers it again."
                )
            fetch.done.set()

    async def _load_key(self, url: str) -> rsa.RSAPublicKey:
        try:
            with anyio.fail_after(self._fetch_timeout):
                pem = await self._fetch(url)
        except Exception as exc:
            late = isinstance(exc, TimeoutError)
            detail = f"no answer within {self._fetch_timeout:g} s" if late else exc
            self._remember_failure(url, _CertificateUnavailable, str(detail))
            raise _CertificateUnavailable(
                f"The signing certificate {url} could not be fetched ({detail}); the message "
                "is answered 502 so that SNS delivers it again."
            ) from exc
        if not isinstance(pem, bytes | bytearray):
            raise _CertificateUnavailable(
                f"cert_fetcher returned a {type(pem).__name__} for {url}; it must return "
                "the certificate's bytes."
            )
        try:
            key = public_key(bytes(pem))
        except SignatureError as exc:
            self._remember_failure(url, SignatureError, str(exc))
            raise
        self._keys[url] = key
        while len(self._keys) > self._cache_size:
            self._keys.popitem(last=False)
        return key

    def _remember_failure(self, url: str, kind: type[Exception], detail: str) -> None:
        """Answer messages naming ``url`` from memory for ``cert_failure_ttl`` seconds."""
        ttl = self._failure_ttl
        error: Callable[[], Exception]
        if kind is SignatureError:
            text = f"{detail} The file at {url} is not fetched again for {ttl:g} s."
            error = functools.partial(SignatureError, text, reason="bad_certificate")
        else:
            text = (
                f"The signing certificate {url} could not be fetched ({detail}), and is not "
                f"fetched again for {ttl:g} s; the message is answered 502 so that SNS "
                "delivers it again."
            )
            error = functools.partial(_CertificateUnavailable, text)
        self._failures[url] = (self._now() + ttl, error)
        self._failures.move_to_end(url)
        while len(self._failures) > _CERT_FAILURES_KEPT:
            self._failures.popitem(last=False)

    async def _notify(
        self, event: dict[str, Any], context: dict[str, Any], message: Mapping[str, Any]
    ) -> Reply:
        handlers = [self._handler]
        if self._router is not None:
            handlers = [route.handler for route in sns_routes(self._router, message, event)]
            if not handlers:
                self._unmatched += 1
                _log.debug("sns.unmatched", **context)
                return json_reply(200, {"status": "unmatched"})
        request_ids = []
        try:
            # with routes, a 503 after some were queued makes SNS redeliver to them all
            for handler in handlers:
                if self._app.queue is None:
                    accepted = self._app.invoke_nowait(handler, event)
                else:  # the 200 waits until the shared queue has stored the event
                    accepted = await self._app.invoke(handler, event)
                request_ids.append(accepted.request_id)
        except (QueueFull, AppClosed, QueueUnavailable) as exc:
            self._busy += 1
            if isinstance(exc, QueueFull):
                why, sentence = "queue_full", "The event queue is full"
            elif isinstance(exc, AppClosed):
                why, sentence = "app_closed", "The app is not accepting events"
            else:
                why, sentence = "queue_unavailable", "The event queue did not store it"
            _log.warning("sns.busy", reason=why, detail=str(exc), **context)
            return json_reply(
                503,
                {
                    "error": why,
                    "message": f"{sentence}; deliver the message again later.",
                },
                (b"retry-after", _RETRY_AFTER.encode("ascii")),
            )
        except UnknownHandler as exc:
            _refuse(500, "unknown_handler", str(exc))
        self._accepted += 1
        for handler, request_id in zip(handlers, request_ids, strict=True):
            name = handler if isinstance(handler, str) else handler.name
            _log.debug("sns.accepted", request_id=request_id, handler=name, attempt=0, **context)
        reply: dict[str, Any] = {"status": "accepted", "requestId": request_ids[0]}
        if self._router is not None:
            reply["requestIds"] = request_ids
        return json_reply(200, reply)

    async def _confirm(self, message: Mapping[str, Any], context: dict[str, Any]) -> Reply:
        url = message_field(message, "SubscribeURL")  # checked by _check_subscribe_url
        try:
            status = await self._http_get(url)
        except Exception as exc:
            _refuse(
                502,
                "confirmation_failed",
                f"Confirming the subscription to {message['TopicArn']} failed ({exc!r}); "
                "answering 502 so that SNS sends the confirmation again.",
            )
        if not isinstance(status, int) or not 200 <= status < 300:
            _refuse(
                502,
                "confirmation_failed",
                f"Confirming the subscription to {message['TopicArn']} failed: the "
                f"SubscribeURL answered {status!r}; answering 502 so that SNS sends the "
                "confirmation again.",
            )
        self._confirmed += 1
        _log.info("sns.subscription_confirmed", **context)
        return json_reply(200, {"status": "confirmed"})


def _check_subscribe_url(message: Mapping[str, Any]) -> None:
    url = message_field(message, "SubscribeURL")
    problem = sns_url_problem(url)
    if problem is not None:
        _refuse(
            403,
            "bad_subscribe_url",
            f"The SubscribeURL {url!r} {problem}; SNS subscribe URLs are https URLs on "
            "sns.<region>.amazonaws.com, so the subscription is not confirmed.",
        )


def _parse(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        _refuse(
            400,
            "malformed_json",
            f"The body is not valid UTF-8 JSON ({exc}); SNS sends its messages as JSON objects.",
        )
    if not isinstance(message, dict):
        _refuse(
            400,
            "malformed_json",
            f"The body is a JSON {type(message).__name__}, not an object; SNS sends its "
            "messages as JSON objects.",
        )
    try:
        check_payload(message, "The message")
    except InvalidPayload as exc:
        _refuse(400, "invalid_payload", str(exc))
    return message


def _check_fields(message: Mapping[str, Any], message_type: str) -> None:
    required = ["MessageId", "TopicArn", "Message", "Timestamp"]
    if message_type != "Notification":
        required += ["Token", "SubscribeURL"]
    for key in required:
        value = message_field(message, key)
        if not isinstance(value, str):
            found = "missing" if value is None else f"a {type(value).__name__}"
            _refuse(
                400,
                "malformed_message",
                f"The {message_type} message's {key!r} is {found}, not a string; every SNS "
                f"{message_type} has one.",
            )
    unsubscribe = message_field(message, "UnsubscribeURL")
    if unsubscribe is not None:
        try:
            if not isinstance(unsubscribe, str):
                raise TypeError(unsubscribe)
            urlsplit(unsubscribe).port  # noqa: B018 - parsing is the check
        except (TypeError, ValueError):
            _refuse(
                400,
                "malformed_message",
                f"The message's 'UnsubscribeURL' {unsubscribe!r} is not a URL; SNS sends an "
                "https URL.",
            )
    subject = message.get("Subject")
    if subject is not None and not isinstance(subject, str):
        _refuse(
            400,
            "malformed_message",
            f"The message's 'Subject' is a {type(subject).__name__}; SNS sends it as a string.",
        )
    attributes = message.get("MessageAttributes")
    if attributes is not None and (
        not isinstance(attributes, dict)
        or not all(isinstance(value, dict) for value in attributes.values())
    ):
        _refuse(
            400,
            "malformed_message",
            "The message's 'MessageAttributes' is not an object of "
            '{"Type": ..., "Value": ...} objects, as SNS sends them.',
        )

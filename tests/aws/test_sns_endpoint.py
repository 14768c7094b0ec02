"""SNSEndpoint over a real socket: uvicorn on 127.0.0.1, httpx as SNS, a real eventflow App.

Signed samples are real SNS messages (tests/fixtures/events/sns/signed, see SOURCES.md) with
their certificate; confirmation messages, which have no licensed signed sample, are signed
here with a self-generated key and certificate, the way SNS signs them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
import pytest_asyncio
import structlog

import eventflow
from aws_support import until
from eventflow.aws import AWSError
from eventflow.aws._sns_http import SNSEndpoint, fetch_certificate, http_get_status
from eventflow.aws._sns_signature import (
    SignatureError,
    check_signing_cert_url,
    verify_sns_signature,
)
from eventflow.events import SNSEvent
from eventflow.testing import VirtualClock
from http_support import connect
from http_support import serve_asgi as serve
from sns_support import Signer, make_signer

SNS = Path(__file__).resolve().parents[1] / "fixtures" / "events" / "sns"
SIGNED = SNS / "signed"
AWS_PEM = (SIGNED / "sns-signing-cert-7ff5318490ec183fbaddaa2a969abfda.pem").read_bytes()
SIGNED_SAMPLES = sorted(p.name for p in SIGNED.glob("*.json"))
HTTP_SAMPLES = [name for name in SIGNED_SAMPLES if name.startswith("http-")]
BASE_SAMPLE = "http-notification-sigv1-with-subject.json"

on_module_loop = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's server

TEST_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
TEST_TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TEST_TOPIC}&Token=2336412f37fb687f5d51e6e2425a8a58"
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SIGNED / name).read_text())
    return data


# --------------------------------------------------------------------------- signing like SNS


@pytest.fixture(scope="module")
def signer() -> Signer:
    return make_signer(TEST_CERT_URL)


def notification(**extra: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": TEST_TOPIC,
        "Message": '{"orderId": 42}\nsecond line',
        "Timestamp": "2026-01-02T03:04:05.678Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={TEST_TOPIC}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        **extra,
    }


def confirmation(kind: str = "SubscriptionConfirmation", **extra: Any) -> dict[str, Any]:
    return {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e2425a8a58",
        "TopicArn": TEST_TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TEST_TOPIC}.\nTo confirm the "
        "subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2026-01-02T03:04:05.678Z",
        **extra,
    }


# --------------------------------------------------------------------------- serving


class Recorder:
    """A cert_fetcher or http_get that records its calls."""

    def __init__(self, result: Callable[[str], Awaitable[Any]]) -> None:
        self.calls: list[str] = []
        self._result = result

    async def __call__(self, url: str) -> Any:
        self.calls.append(url)
        return await self._result(url)


def returning(value: Any) -> Recorder:
    async def result(url: str) -> Any:
        return value

    return Recorder(result)


def raising(exc: Exception) -> Recorder:
    async def result(url: str) -> Any:
        raise exc

    return Recorder(result)


@dataclasses.dataclass
class Harness:
    app: eventflow.App
    endpoint: SNSEndpoint
    client: httpx.AsyncClient
    received: list[Any]

    async def post(
        self, message: dict[str, Any] | str | bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        if isinstance(message, dict):
            sent_headers = {"x-amz-sns-message-type": str(message.get("Type"))}
            content: str | bytes = json.dumps(message, indent=2)
        else:
            sent_headers, content = {}, message
        sent_headers.update(headers or {})
        sent_headers.setdefault("content-type", "text/plain; charset=UTF-8")
        return await self.client.post("/sns", content=content, headers=sent_headers)

    async def handled(self) -> list[Any]:
        """What the handler received once the app has run everything it accepted."""
        await self.app.drain(timeout=5)
        return self.received


class Switch:
    """The ASGI app of the module's server: forwards each request to the current endpoint."""

    def __init__(self) -> None:
        self.target: SNSEndpoint | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.target is not None, "a request arrived between tests"
        await self.target(scope, receive, send)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[tuple[Switch, httpx.AsyncClient]]:
    """One uvicorn server for the module (starting and stopping one costs ~0.3 s)."""
    switch = Switch()
    async with serve(switch) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield switch, client


MakeHarness = Callable[..., AbstractAsyncContextManager[Harness]]


@pytest.fixture
def harness(server: tuple[Switch, httpx.AsyncClient]) -> MakeHarness:
    """Make an endpoint for a fresh App with a recording handler, served by the module server."""
    switch, client = server

    @asynccontextmanager
    async def make(
        *, start_app: bool = True, clock: Any = None, **options: Any
    ) -> AsyncIterator[Harness]:
        received: list[Any] = []

        @eventflow.handler(max_retries=0)
        async def on_sns(event: Any, context: eventflow.Context) -> None:
            received.append(event)

        # few workers: an App starts its workers at once, 1,000 by default
        app = eventflow.App(handlers=[on_sns], concurrency=2, clock=clock)
        endpoint = SNSEndpoint(app, on_sns, **options)
        switch.target = endpoint
        try:
            h = Harness(app, endpoint, client, received)
            # entered as its lifespan would: its certificate fetches run in its task group
            if start_app:
                async with app, endpoint:
                    yield h
            else:
                async with endpoint:
                    yield h
        finally:
            switch.target = None

    return make


# --------------------------------------------------------------------------- the verifier


@pytest.mark.parametrize("name", SIGNED_SAMPLES)
def test_every_signed_sample_verifies_with_the_aws_certificate(name: str) -> None:
    verify_sns_signature(load(name), AWS_PEM)


@pytest.mark.parametrize("name", SIGNED_SAMPLES)
def test_a_sample_with_one_character_changed_fails(name: str) -> None:
    message = load(name)
    message["Message"] = "Hello World"  # was "Hello world"
    with pytest.raises(SignatureError, match="does not match") as info:
        verify_sns_signature(message, AWS_PEM)
    assert info.value.reason == "bad_signature"


def test_subject_null_is_not_the_string_null_nor_an_empty_subject() -> None:
    message = load("lambda-style-notification-sigv2-subject-null.json")
    for subject in ("null", ""):
        with pytest.raises(SignatureError) as info:
            verify_sns_signature({**message, "Subject": subject}, AWS_PEM)
        assert info.value.reason == "bad_signature"
    with_subject = load("lambda-style-notification-sigv1-with-subject.json")
    del with_subject["Subject"]
    with pytest.raises(SignatureError):
        verify_sns_signature(with_subject, AWS_PEM)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"SignatureVersion": "3"}, "unsupported_signature_version"),
        ({"SignatureVersion": 1}, "unsupported_signature_version"),
        ({"Signature": None}, "missing_signature"),
        ({"SignatureVersion": None}, "missing_signature"),
        ({"Signature": "not base64!"}, "bad_signature"),
        ({"Message": 42}, "malformed_message"),
        ({"Type": "Surprise"}, "malformed_message"),
    ],
)
def test_the_verifier_names_what_is_wrong(change: dict[str, Any], reason: str) -> None:
    message = {**load(BASE_SAMPLE), **change}
    with pytest.raises(SignatureError) as info:
        verify_sns_signature(message, AWS_PEM)
    assert info.value.reason == reason
    assert isinstance(info.value, AWSError)
    assert str(info.value).endswith(".")


def test_the_verifier_refuses_a_certificate_that_is_not_one(signer: Signer) -> None:
    with pytest.raises(SignatureError, match="not a PEM-encoded") as info:
        verify_sns_signature(load(BASE_SAMPLE), b"-----BEGIN NOTHING-----")
    assert info.value.reason == "bad_certificate"
    with pytest.raises(SignatureError) as wrong_key:  # a real certificate of another key
        verify_sns_signature(load(BASE_SAMPLE), signer.pem)
    assert wrong_key.value.reason == "bad_signature"


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com:443/x.pem",
    ],
)
def test_sns_certificate_urls_pass(url: str) -> None:
    assert check_signing_cert_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.evil.com/SimpleNotificationService-test.pem",
        "https://sns.amazonaws.com.evil.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.txt",
        "https://sns.us-east-1.amazonaws.com/cert.pem.txt",
        "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
        "https://sns.us.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com\n/x.pem",
        "https://s3.us-east-1.amazonaws.com/x.pem",
        "sns.us-east-1.amazonaws.com/x.pem",
        "",
        42,
    ],
)
def test_other_certificate_urls_are_refused(url: object) -> None:
    with pytest.raises(SignatureError, match="signing certificate URL") as info:
        check_signing_cert_url(url)
    assert info.value.reason == "bad_certificate_url"


# --------------------------------------------------------------------------- real SNS samples


@pytest.mark.parametrize("name", HTTP_SAMPLES)
@on_module_loop
async def test_signed_http_samples_reach_the_handler_as_the_lambda_event(
    name: str, harness: MakeHarness
) -> None:
    message = load(name)
    fetcher = returning(AWS_PEM)
    subscription = message["UnsubscribeURL"].split("SubscriptionArn=")[1]
    async with harness(topic_arns=[message["TopicArn"]], cert_fetcher=fetcher) as h:
        response = await h.post(message, {"x-amz-sns-subscription-arn": subscription})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "accepted"
        received = await h.handled()
    # the same message as Lambda delivers it: Lambda spellings, Subject null, attributes {}
    lambda_style = load(name.replace("http-", "lambda-style-"))
    expected_sns = {"Subject": None, **lambda_style, "MessageAttributes": {}}
    assert received == [
        {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": subscription,
                    "Sns": expected_sns,
                }
            ]
        }
    ]
    assert "SigningCertURL" not in received[0]["Records"][0]["Sns"]
    assert fetcher.calls == [message["SigningCertURL"]]
    stats = h.endpoint.statistics()
    assert (stats.accepted, stats.refused_total, stats.busy) == (1, 0, 0)
    # the event is one the typed view reads
    record = SNSEvent.from_dict(received[0]).records[0]
    assert record.message == "Hello world"


@on_module_loop
async def test_the_subscription_arn_falls_back_to_the_unsubscribe_url(harness: MakeHarness) -> None:
    message = load(BASE_SAMPLE)
    async with harness(cert_fetcher=returning(AWS_PEM)) as h:
        assert (await h.post(message)).status_code == 200
        (event,) = await h.handled()
    assert event["Records"][0]["EventSubscriptionArn"] == (
        "arn:aws:sns:us-east-2:295079676684:publish-and-verify-6e11fed2-fcdf-4c52-9dc4-"
        "36ef43f37f84:adb318c3-2234-4c56-905d-c324cf0df874"
    )


def _tamper(message: dict[str, Any]) -> None:
    message["Message"] = message["Message"].replace("w", "W", 1)


def _set(**change: Any) -> Callable[[dict[str, Any]], None]:
    def apply(message: dict[str, Any]) -> None:
        for key, value in change.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value

    return apply


REFUSALS: list[Any] = [
    pytest.param(_tamper, {}, 403, "bad_signature", id="tampered-message"),
    pytest.param(
        _set(SignatureVersion="3"), {}, 403, "unsupported_signature_version", id="version-3"
    ),
    pytest.param(
        _set(SigningCertURL="http://sns.us-east-2.amazonaws.com/x.pem"),
        {},
        403,
        "bad_certificate_url",
        id="cert-over-http",
    ),
    pytest.param(
        _set(SigningCertURL="https://sns.evil.com/x.pem"),
        {},
        403,
        "bad_certificate_url",
        id="cert-on-sns.evil.com",
    ),
    pytest.param(
        _set(SigningCertURL="https://sns.amazonaws.com.evil.com/x.pem"),
        {},
        403,
        "bad_certificate_url",
        id="cert-on-sns.amazonaws.com.evil.com",
    ),
    pytest.param(
        _set(SigningCertURL="https://sns.us-east-2.amazonaws.com/cert"),
        {},
        403,
        "bad_certificate_url",
        id="cert-not-pem",
    ),
    pytest.param(
        _set(TopicArn="arn:aws:sns:us-east-2:999999999999:someone-else"),
        {},
        403,
        "foreign_topic",
        id="foreign-topic",
    ),
    pytest.param(_set(Signature=None), {}, 403, "missing_signature", id="no-signature"),
    pytest.param(_set(SigningCertURL=None), {}, 403, "missing_signature", id="no-cert-url"),
    pytest.param(_set(Signature="%%%"), {}, 403, "bad_signature", id="signature-not-base64"),
    pytest.param(_set(MessageId=None), {}, 400, "malformed_message", id="no-message-id"),
    pytest.param(_set(Subject=7), {}, 400, "malformed_message", id="subject-not-string"),
    pytest.param(
        _set(UnsubscribeURL="http://[::1"), {}, 400, "malformed_message", id="unsubscribe-url"
    ),
    pytest.param(_set(Type="Surprise"), {}, 400, "unknown_type", id="unknown-type"),
    pytest.param(
        None,
        {"x-amz-sns-message-type": "SubscriptionConfirmation"},
        400,
        "type_mismatch",
        id="header-type-differs",
    ),
    pytest.param(None, {"x-amz-sns-rawdelivery": "true"}, 400, "raw_delivery", id="raw-delivery"),
    pytest.param(b'{"Type": "Notification",', {}, 400, "malformed_json", id="malformed-json"),
    pytest.param(b"[1, 2]", {}, 400, "malformed_json", id="json-array"),
    pytest.param(b"\xff\xfe{}", {}, 400, "malformed_json", id="not-utf8"),
]


@pytest.mark.parametrize(("change", "headers", "status", "reason"), REFUSALS)
@on_module_loop
async def test_refused_requests_never_reach_the_handler(
    change: Any, headers: dict[str, str], status: int, reason: str, harness: MakeHarness
) -> None:
    message = load(BASE_SAMPLE)
    body: dict[str, Any] | bytes = message
    if callable(change):
        change(message)
    elif change is not None:
        body = change
    fetcher = returning(AWS_PEM)
    topic = load(BASE_SAMPLE)["TopicArn"]
    async with harness(topic_arns=[topic], cert_fetcher=fetcher) as h:
        with structlog.testing.capture_logs() as logs:
            response = await h.post(body, headers)
        assert response.status_code == status, response.text
        assert response.json()["error"] == reason
        assert response.json()["message"].endswith(".")
        assert await h.handled() == []
        assert h.app.stats().received == 0
    stats = h.endpoint.statistics()
    assert dict(stats.refused) == {reason: 1}
    assert (stats.accepted, stats.confirmed, stats.busy) == (0, 0, 0)
    refusals = [e for e in logs if e["event"] == "sns.refused"]
    assert [(e["log_level"], e["reason"]) for e in refusals] == [("warning", reason)]
    if status != 403 or reason in ("foreign_topic", "missing_signature", "bad_certificate_url"):
        assert fetcher.calls == []  # refused before any certificate was fetched


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@on_module_loop
async def test_other_methods_are_refused_with_405(method: str, harness: MakeHarness) -> None:
    async with harness(cert_fetcher=returning(AWS_PEM)) as h:
        response = await h.client.request(method, "/", content=json.dumps(load(BASE_SAMPLE)))
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert await h.handled() == []
    assert dict(h.endpoint.statistics().refused) == {"method_not_allowed": 1}


@on_module_loop
async def test_bodies_over_the_limit_are_refused_with_413(harness: MakeHarness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * 800

    message = load(BASE_SAMPLE)
    async with harness(cert_fetcher=returning(AWS_PEM), max_body_bytes=2048) as h:
        declared = await h.post(b" " * 2049)  # Content-Length says it is too large
        streamed = await h.client.post("/", content=chunks())  # chunked: counted while read
        assert "content-length" not in streamed.request.headers
        within = await h.post(message)  # about 1 KB
        assert within.status_code == 200
        assert len(await h.handled()) == 1
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert "max_body_bytes" in declared.json()["message"]
    assert dict(h.endpoint.statistics().refused) == {"body_too_large": 2}


async def test_a_stalled_body_is_answered_408_and_closed() -> None:
    @eventflow.handler(max_retries=0)
    async def on_sns(event: Any, context: eventflow.Context) -> None:
        return None

    app = eventflow.App(handlers=[on_sns], concurrency=2)
    endpoint = SNSEndpoint(app, on_sns, body_timeout=0.5)
    async with app, serve(endpoint) as url, connect(url) as raw:
        # Given a delivery whose body stops after its first bytes
        host = url.removeprefix("http://")
        await raw.send(
            f"POST /sns HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n{{".encode()
        )
        # Then it is answered 408 and the connection closed
        answer = await raw.answer()
    assert (answer.status, answer.closed) == (408, True)
    assert json.loads(answer.body)["error"] == "body_timeout"
    assert dict(endpoint.statistics().refused) == {"body_timeout": 1}


# --------------------------------------------------------------------------- own key pair


@pytest.mark.parametrize("version", ["1", "2"])
@on_module_loop
async def test_notifications_signed_like_sns_reach_the_handler(
    signer: Signer, version: str, harness: MakeHarness
) -> None:
    attributes = {
        "kind": {"Type": "String", "Value": "created"},
        "count": {"Type": "Number", "Value": "42"},
        "tags": {"Type": "String.Array", "Value": '["a", "b"]'},
        "blob": {"Type": "Binary", "Value": "AAEC"},
    }
    message = signer.sign(notification(MessageAttributes=attributes), version)
    async with harness(cert_fetcher=returning(signer.pem)) as h:
        response = await h.post(message)
        assert response.status_code == 200, response.text
        (event,) = await h.handled()
    (record,) = event["Records"]
    assert record["EventSubscriptionArn"] == f"{TEST_TOPIC}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"
    assert record["Sns"] == {
        "Type": "Notification",
        "MessageId": message["MessageId"],
        "TopicArn": TEST_TOPIC,
        "Subject": None,
        "Message": '{"orderId": 42}\nsecond line',
        "Timestamp": message["Timestamp"],
        "SignatureVersion": version,
        "Signature": message["Signature"],
        "SigningCertUrl": TEST_CERT_URL,
        "UnsubscribeUrl": message["UnsubscribeURL"],
        "MessageAttributes": {
            "kind": {"Type": "String", "Value": "created"},
            "count": {"Type": "String", "Value": "42"},
            "tags": {"Type": "String", "Value": '["a", "b"]'},
            "blob": {"Type": "Binary", "Value": "AAEC"},
        },
    }


@on_module_loop
async def test_a_message_signed_by_another_key_is_refused(
    signer: Signer, harness: MakeHarness
) -> None:
    message = signer.sign(notification())
    async with harness(cert_fetcher=returning(AWS_PEM)) as h:  # SNS's certificate, our key
        response = await h.post(message)
        assert response.status_code == 403
        assert await h.handled() == []
    assert dict(h.endpoint.statistics().refused) == {"bad_signature": 1}


@pytest.mark.parametrize("version", ["1", "2"])
@on_module_loop
async def test_a_subscription_is_confirmed_once_with_a_get(
    signer: Signer, version: str, harness: MakeHarness
) -> None:
    http_get = returning(200)
    async with harness(cert_fetcher=returning(signer.pem), http_get=http_get) as h:
        response = await h.post(signer.sign(confirmation(), version))
        assert response.status_code == 200, response.text
        assert await h.handled() == []
    assert http_get.calls == [SUBSCRIBE_URL]
    stats = h.endpoint.statistics()
    assert (stats.confirmed, stats.accepted, stats.refused_total) == (1, 0, 0)


@pytest.mark.parametrize(
    "http_get",
    [
        pytest.param(lambda: raising(OSError("connection refused")), id="get-raises"),
        pytest.param(lambda: returning(403), id="get-answers-403"),
    ],
)
@on_module_loop
async def test_a_failed_confirmation_answers_502_so_sns_retries(
    signer: Signer, http_get: Callable[[], Recorder], harness: MakeHarness
) -> None:
    recorder = http_get()
    async with harness(cert_fetcher=returning(signer.pem), http_get=recorder) as h:
        response = await h.post(signer.sign(confirmation()))
        assert response.status_code == 502
        assert "SNS sends the confirmation again" in response.json()["message"]
    assert recorder.calls == [SUBSCRIBE_URL]
    stats = h.endpoint.statistics()
    assert (stats.confirmed, dict(stats.refused)) == (0, {"confirmation_failed": 1})


@pytest.mark.parametrize(
    "url",
    ["https://evil.example.com/?Action=ConfirmSubscription", "http://sns.us-east-1.amazonaws.com/"],
)
@on_module_loop
async def test_a_subscribe_url_off_sns_is_never_fetched(
    signer: Signer, url: str, harness: MakeHarness
) -> None:
    http_get = returning(200)
    fetcher = returning(signer.pem)
    async with harness(cert_fetcher=fetcher, http_get=http_get) as h:
        response = await h.post(signer.sign(confirmation(SubscribeURL=url)))
        assert response.status_code == 403
    assert http_get.calls == []
    assert fetcher.calls == []  # refused before its certificate was fetched
    assert dict(h.endpoint.statistics().refused) == {"bad_subscribe_url": 1}


@on_module_loop
async def test_an_unsubscribe_confirmation_is_noted_without_resubscribing(
    signer: Signer, harness: MakeHarness
) -> None:
    http_get = returning(200)
    message = signer.sign(confirmation("UnsubscribeConfirmation"), "2")
    async with harness(cert_fetcher=returning(signer.pem), http_get=http_get) as h:
        with structlog.testing.capture_logs() as logs:
            response = await h.post(message)
        assert response.status_code == 200
        assert await h.handled() == []
    assert http_get.calls == []
    assert h.endpoint.statistics().unsubscribed == 1
    assert [e["event"] for e in logs] == ["sns.unsubscribed"]


@on_module_loop
async def test_unsigned_messages_pass_only_when_verification_is_off(harness: MakeHarness) -> None:
    message = notification(Subject="hi")
    fetcher = returning(b"")
    async with harness(verify_signatures=False, cert_fetcher=fetcher, topic_arns=[TEST_TOPIC]) as h:
        assert (await h.post(message)).status_code == 200
        foreign = await h.post({**message, "TopicArn": f"{TEST_TOPIC}-other"})
        assert foreign.status_code == 403  # the topic is still checked
        (event,) = await h.handled()
    assert event["Records"][0]["Sns"]["Subject"] == "hi"
    assert fetcher.calls == []


# --------------------------------------------------------------------------- busy app


async def test_a_full_queue_answers_503_with_retry_after(signer: Signer) -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    seen: list[str] = []

    @eventflow.handler(max_retries=0)
    async def blocked(event: Any, context: eventflow.Context) -> None:
        seen.append(event["Records"][0]["Sns"]["MessageId"])
        started.set()
        await release.wait()

    app = eventflow.App(handlers=[blocked], queue_size=1, concurrency=1)
    endpoint = SNSEndpoint(app, "blocked", cert_fetcher=returning(signer.pem))
    async with app, serve(endpoint) as url, httpx.AsyncClient(base_url=url) as client:

        async def post(n: int) -> httpx.Response:
            message = signer.sign(notification(MessageId=f"m{n}"))
            return await client.post("/", content=json.dumps(message))

        assert (await post(1)).status_code == 200
        await asyncio.wait_for(started.wait(), 5)  # m1 runs: the queue is empty again
        assert (await post(2)).status_code == 200  # m2 fills the queue
        busy = await post(3)
        assert busy.status_code == 503
        assert int(busy.headers["retry-after"]) >= 1
        assert busy.json()["error"] == "queue_full"
        release.set()
        await app.drain(timeout=5)
    assert seen == ["m1", "m2"]
    stats = endpoint.statistics()
    assert (stats.accepted, stats.busy, stats.refused_total) == (2, 1, 0)


@on_module_loop
async def test_an_app_that_is_not_running_answers_503(signer: Signer, harness: MakeHarness) -> None:
    async with harness(start_app=False, cert_fetcher=returning(signer.pem)) as h:
        response = await h.post(signer.sign(notification()))
        assert response.status_code == 503
        assert response.json()["error"] == "app_closed"
        assert "retry-after" in response.headers
    assert h.endpoint.statistics().busy == 1


# --------------------------------------------------------------------------- certificates


@on_module_loop
async def test_certificates_are_fetched_once_per_url(signer: Signer, harness: MakeHarness) -> None:
    fetcher = returning(signer.pem)
    other_url = TEST_CERT_URL.replace("-test.pem", "-other.pem")
    async with harness(cert_fetcher=fetcher, cert_cache_size=1) as h:
        for n in range(2):
            response = await h.post(signer.sign(notification(MessageId=f"same-{n}")))
            assert response.status_code == 200
        assert fetcher.calls == [TEST_CERT_URL]
        # with room for one certificate, another URL evicts the first
        other = signer.sign(notification(MessageId="other"))
        other["SigningCertURL"] = other_url
        assert (await h.post(other)).status_code == 200
        assert (await h.post(signer.sign(notification(MessageId="again")))).status_code == 200
        assert len(await h.handled()) == 4
    assert fetcher.calls == [TEST_CERT_URL, TEST_CERT_URL.replace("-test", "-other"), TEST_CERT_URL]


@on_module_loop
async def test_a_certificate_that_cannot_be_fetched_answers_502_and_is_remembered(
    signer: Signer, harness: MakeHarness
) -> None:
    fetcher = raising(OSError("network down"))
    async with harness(cert_fetcher=fetcher) as h:
        for _ in range(2):
            response = await h.post(signer.sign(notification()))
            assert response.status_code == 502
            assert "network down" in response.json()["message"]
        assert "not fetched again for 60 s" in response.json()["message"]
    assert len(fetcher.calls) == 1
    assert dict(h.endpoint.statistics().refused) == {"certificate_unavailable": 2}


@on_module_loop
async def test_a_fetched_file_that_is_no_certificate_is_refused(
    signer: Signer, harness: MakeHarness
) -> None:
    async with harness(cert_fetcher=returning(b"<html>not found</html>")) as h:
        response = await h.post(signer.sign(notification()))
        assert response.status_code == 403
    assert dict(h.endpoint.statistics().refused) == {"bad_certificate": 1}


class CertificateHost:
    """A local HTTP server standing in for the SNS certificate host; it counts requests.

    ``fetcher`` is a cert_fetcher that asks it, with the default fetcher, for the path of
    the (checked) SNS URL it is given.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.hits: list[str] = []
        self.url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.hits.append(scope["path"])
        body = self.files.get(scope["path"])
        status = 404 if body is None else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body or b"no such file"})

    async def fetcher(self, url: str) -> bytes:
        return await fetch_certificate(self.url + urlsplit(url).path)


@pytest_asyncio.fixture(loop_scope="module")
async def cert_host(signer: Signer) -> AsyncIterator[CertificateHost]:
    host = CertificateHost(
        {
            urlsplit(TEST_CERT_URL).path: signer.pem,
            "/SimpleNotificationService-html.pem": b"<html>a login page</html>",
        }
    )
    async with serve(host) as url:
        host.url = url
        yield host


def _naming(message: dict[str, Any], path: str) -> dict[str, Any]:
    return {**message, "SigningCertURL": f"https://sns.us-east-1.amazonaws.com{path}"}


@on_module_loop
async def test_forged_messages_naming_new_certificate_urls_are_fetched_at_a_bounded_rate(
    signer: Signer, harness: MakeHarness, cert_host: CertificateHost
) -> None:
    clock = VirtualClock()
    options = {"cert_fetch_burst": 3, "cert_fetch_rate": 0.5}
    async with harness(clock=clock, cert_fetcher=cert_host.fetcher, **options) as h:
        # Given forged messages, each naming a new certificate URL on an SNS host
        answers = []
        for n in range(8):
            forged = _naming(signer.sign(notification()), f"/SimpleNotificationService-{n}.pem")
            answers.append(await h.post(forged))
        # Then only the burst is fetched; the rest are answered 503 unfetched
        assert [a.status_code for a in answers] == [502] * 3 + [503] * 5
        assert all(a.headers["retry-after"] == "1" for a in answers[3:])
        assert len(cert_host.hits) == 3
        # When time passes, the bucket refills: a genuine message is fetched and accepted
        assert (await h.post(signer.sign(notification()))).status_code == 503
        await clock.advance(2.0)
        assert (await h.post(signer.sign(notification()))).status_code == 200
        assert cert_host.hits[-1] == urlsplit(TEST_CERT_URL).path
        # and its cached certificate serves whatever the bucket holds
        forged = _naming(signer.sign(notification()), "/SimpleNotificationService-x.pem")
        assert (await h.post(forged)).status_code == 503
        assert (await h.post(signer.sign(notification()))).status_code == 200
        assert len(await h.handled()) == 2
    assert len(cert_host.hits) == 4
    stats = h.endpoint.statistics()
    assert stats.cert_fetches == 4
    assert dict(stats.refused) == {"certificate_unavailable": 3, "cert_fetch_rate_limited": 7}


@on_module_loop
async def test_a_certificate_url_that_failed_is_remembered_for_a_while(
    signer: Signer, harness: MakeHarness, cert_host: CertificateHost
) -> None:
    clock = VirtualClock()
    missing = _naming(signer.sign(notification()), "/SimpleNotificationService-gone.pem")
    html = _naming(signer.sign(notification()), "/SimpleNotificationService-html.pem")
    async with harness(clock=clock, cert_fetcher=cert_host.fetcher, cert_failure_ttl=30) as h:
        # Given a URL that answers 404 and one that serves no certificate, three times each
        for _ in range(3):
            assert (await h.post(missing)).status_code == 502
            refused = await h.post(html)
            assert (refused.status_code, refused.json()["error"]) == (403, "bad_certificate")
        # Then each was fetched once, and is remembered
        assert sorted(cert_host.hits) == [
            "/SimpleNotificationService-gone.pem",
            "/SimpleNotificationService-html.pem",
        ]
        assert "not fetched again for 30 s" in refused.json()["message"]
        assert h.endpoint.statistics().cert_failures_kept == 2
        # When the failure has been remembered long enough, the URL is fetched again
        await clock.advance(29.0)
        assert (await h.post(missing)).status_code == 502
        assert len(cert_host.hits) == 2
        await clock.advance(1.0)
        assert (await h.post(missing)).status_code == 502
        assert len(cert_host.hits) == 3
    assert h.endpoint.statistics().cert_fetches == 3


async def test_the_default_fetchers_speak_http_without_following_redirects() -> None:
    async def files(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        status, headers, body = 404, [], b"no such file"
        if scope["path"] == "/cert.pem":
            status, body = 200, AWS_PEM
        elif scope["path"] == "/big.pem":
            status, body = 200, AWS_PEM * 50  # about 85 KB
        elif scope["path"] == "/moved.pem":
            status, headers, body = 302, [(b"location", b"/cert.pem")], b""
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async with serve(files) as url:
        assert await fetch_certificate(f"{url}/cert.pem") == AWS_PEM
        with pytest.raises(AWSError, match="answered 404"):
            await fetch_certificate(f"{url}/missing.pem")
        with pytest.raises(AWSError, match="larger than 65536 bytes"):
            await fetch_certificate(f"{url}/big.pem")
        with pytest.raises(AWSError, match="answered 302"):
            await fetch_certificate(f"{url}/moved.pem")
        assert await http_get_status(f"{url}/cert.pem") == 200
        assert await http_get_status(f"{url}/moved.pem") == 302


# --------------------------------------------------------------------------- who runs a fetch


class Deadline:
    """ASGI middleware: a request with ``x-test-deadline: <seconds>`` is cancelled after that
    long and answered 504, as a server's request timeout would; ``expired`` counts them, and
    ``deadlines`` holds their cancel scopes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.expired = 0
        self.deadlines: list[anyio.CancelScope] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", ())) if scope["type"] == "http" else {}
        seconds = headers.get(b"x-test-deadline")
        if seconds is None:
            await self.inner(scope, receive, send)
            return
        with anyio.move_on_after(float(seconds)) as deadline:
            self.deadlines.append(deadline)
            await self.inner(scope, receive, send)
        if deadline.cancelled_caught:
            self.expired += 1
            await send({"type": "http.response.start", "status": 504, "headers": []})
            await send({"type": "http.response.body", "body": b""})


class Gate:
    """A cert_fetcher that waits until opened, then serves ``pem``; it records its calls."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.calls: list[str] = []
        self.open = asyncio.Event()

    async def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        await self.open.wait()
        return self.pem


async def _post(
    client: httpx.AsyncClient, message: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    sent = {"x-amz-sns-message-type": str(message["Type"]), **(headers or {})}
    return await client.post("/sns", content=json.dumps(message), headers=sent)


@pytest.mark.parametrize("entered", [True, False], ids=["entered", "not-entered"])
async def test_a_waiting_request_that_is_cancelled_does_not_cancel_the_shared_fetch(
    signer: Signer, entered: bool
) -> None:
    @eventflow.handler(max_retries=0)
    async def on_sns(event: Any, context: eventflow.Context) -> None:
        return None

    gate = Gate(signer.pem)
    app = eventflow.App(handlers=[on_sns], concurrency=2)
    endpoint = SNSEndpoint(app, on_sns, cert_fetcher=gate)
    # served with the lifespan, the endpoint is entered; mounted without one, it is not
    served = Deadline(endpoint) if entered else Deadline(NoLifespan(endpoint))
    async with (
        app,
        serve(served) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        # Given a request that starts a certificate fetch and gives up waiting for it
        first = asyncio.create_task(
            _post(
                client,
                signer.sign(notification(MessageId="gives-up")),
                {"x-test-deadline": "0.3"},
            )
        )
        await until(lambda: bool(gate.calls), timeout=5)
        # and another that waits for the same certificate
        second = asyncio.create_task(_post(client, signer.sign(notification(MessageId="waits"))))
        await until(lambda: any(d.cancel_called for d in served.deadlines), timeout=5)
        # When the certificate arrives
        gate.open.set()
        # Then the first was cancelled, and the second is answered from the one fetch
        assert (await first).status_code == 504
        assert served.expired == 1
        assert (await second).status_code == 200
        assert (
            await _post(client, signer.sign(notification(MessageId="later")))
        ).status_code == 200
        await app.drain(timeout=5)
    assert gate.calls == [TEST_CERT_URL]
    assert endpoint.statistics().cert_fetches == 1
    assert endpoint.statistics().accepted == 2


class NoLifespan:
    """Forwards requests only, as a mount in a framework that gives mounts no lifespan."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.inner(scope, receive, send)


@on_module_loop
async def test_a_fetch_that_takes_too_long_fails_and_is_remembered(
    signer: Signer, harness: MakeHarness
) -> None:
    never = Gate(signer.pem)  # never opened: the fetch hangs
    async with harness(cert_fetcher=never, cert_fetch_timeout=0.2) as h:
        answers = [await h.post(signer.sign(notification())) for _ in range(2)]
    assert [a.status_code for a in answers] == [502, 502]
    assert "no answer within 0.2 s" in answers[0].json()["message"]
    assert "not fetched again" in answers[1].json()["message"]
    assert never.calls == [TEST_CERT_URL]
    assert h.endpoint.statistics().cert_failures_kept == 1


@on_module_loop
async def test_leaving_the_endpoint_cancels_its_fetches_and_their_requests_get_502(
    signer: Signer, server: tuple[Switch, httpx.AsyncClient]
) -> None:
    switch, client = server
    app = eventflow.App(handlers=[], concurrency=1)
    gate = Gate(signer.pem)
    endpoint = SNSEndpoint(app, "on_sns", cert_fetcher=gate)
    switch.target = endpoint
    try:
        async with endpoint:
            # Given a request waiting for a certificate fetch
            waiting = asyncio.create_task(_post(client, signer.sign(notification())))
            await until(lambda: bool(gate.calls), timeout=5)
        # When the endpoint is left (its lifespan ends), the fetch is cancelled
        answer = await waiting
    finally:
        switch.target = None
    # Then the request is answered 502, so SNS delivers it again; nothing is remembered
    assert answer.status_code == 502
    assert "stopped while fetching" in answer.json()["message"]
    assert endpoint.statistics().cert_failures_kept == 0
    with pytest.raises(RuntimeError, match="entered already"):
        async with endpoint, endpoint:
            pass


# --------------------------------------------------------------------------- ASGI and options


async def test_lifespan_startup_fails_for_a_handler_the_app_does_not_serve() -> None:
    app = eventflow.App(handlers=[])
    endpoint = SNSEndpoint(app, "missing")
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: Any) -> None:
        sent.append(message)

    await endpoint({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed", "lifespan.shutdown.complete"]
    assert "'missing' is not served" in sent[0]["message"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"topic_arns": TEST_TOPIC}, "write topic_arns=\\[...\\]"),
        ({"topic_arns": []}, "topic_arns is empty"),
        ({"cert_fetch_timeout": 0}, "cert_fetch_timeout must be a positive number"),
        ({"topic_arns": ["orders"]}, "must hold topic ARNs"),
        ({"max_body_bytes": 0}, "max_body_bytes must be an integer"),
        ({"cert_cache_size": 0}, "cert_cache_size must be an integer"),
        ({"cert_fetch_burst": 0}, "cert_fetch_burst must be an integer"),
        ({"cert_fetch_rate": 0}, "cert_fetch_rate must be a positive number"),
        ({"cert_failure_ttl": float("inf")}, "cert_failure_ttl must be a positive number"),
        ({"http_get": "https://example.com"}, "http_get must be an async function"),
    ],
)
def test_wrong_options_are_refused_when_given(options: dict[str, Any], match: str) -> None:
    with pytest.raises(eventflow.ConfigurationError, match=match):
        SNSEndpoint(eventflow.App(handlers=[]), "h", **options)


def test_statistics_are_a_frozen_snapshot() -> None:
    stats = SNSEndpoint(eventflow.App(handlers=[]), "h").statistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.accepted = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.refused["bad_signature"] = 1  # type: ignore[index]
    assert stats.refused_total == 0

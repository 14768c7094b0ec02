"""The SNS signature rules without I/O (``eventflow.aws._sns_signature``): the text SNS
signs, SignatureVersion 1 and 2, the certificate URL rules and the checks made before a
fetch; vectors signed with the tests' own key (``sns_support``)."""

from __future__ import annotations

import ast
import base64
from pathlib import Path
from typing import Any

import pytest

from eventflow.aws import AWSError
from eventflow.aws._sns_signature import (
    SignatureError,
    check_before_fetch,
    check_signing_cert_url,
    message_field,
    public_key,
    signature_of,
    string_to_sign,
    verify_sns_signature,
    verify_with_key,
)
from sns_support import Signer, make_signer

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:orders"
MODULE = Path(__file__).resolve().parents[2] / "src" / "eventflow" / "aws" / "_sns_signature.py"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return make_signer(CERT_URL)


NOTIFICATION = {
    "Type": "Notification",
    "MessageId": "m-1",
    "TopicArn": TOPIC,
    "Subject": "hello",
    "Message": "line one\nline two",
    "Timestamp": "2026-01-02T03:04:05.678Z",
    "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    "MessageAttributes": {"kind": {"Type": "String", "Value": "created"}},
}
CONFIRMATION = {
    "Type": "SubscriptionConfirmation",
    "MessageId": "m-2",
    "Token": "t0k3n",
    "TopicArn": TOPIC,
    "Message": "You have chosen to subscribe.",
    "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
    "Timestamp": "2026-01-02T03:04:05.678Z",
}


# --------------------------------------------------------------------------- the signed text


def test_a_notification_signs_its_fields_in_order_and_not_its_attributes() -> None:
    assert string_to_sign(NOTIFICATION) == (
        b"Message\nline one\nline two\nMessageId\nm-1\nSubject\nhello\n"
        b"Timestamp\n2026-01-02T03:04:05.678Z\nTopicArn\n" + TOPIC.encode() + b"\n"
        b"Type\nNotification\n"
    )


def test_a_notification_without_subject_leaves_the_subject_out() -> None:
    for absent in ({}, {"Subject": None}):  # the Lambda event's "Subject": null
        message = {**{k: v for k, v in NOTIFICATION.items() if k != "Subject"}, **absent}
        assert b"Subject" not in string_to_sign(message)


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_confirmations_sign_the_subscribe_url_and_token(kind: str) -> None:
    assert string_to_sign({**CONFIRMATION, "Type": kind}) == (
        b"Message\nYou have chosen to subscribe.\nMessageId\nm-2\n"
        b"SubscribeURL\nhttps://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription\n"
        b"Timestamp\n2026-01-02T03:04:05.678Z\nToken\nt0k3n\nTopicArn\n" + TOPIC.encode() + b"\n"
        b"Type\n" + kind.encode() + b"\n"
    )


def test_the_lambda_events_spelling_of_the_urls_is_read_too() -> None:
    lambda_style = {**CONFIRMATION, "SubscribeUrl": CONFIRMATION["SubscribeURL"]}
    del lambda_style["SubscribeURL"]
    assert string_to_sign(lambda_style) == string_to_sign(CONFIRMATION)
    assert message_field({"SigningCertUrl": CERT_URL}, "SigningCertURL") == CERT_URL


@pytest.mark.parametrize(
    "message",
    [{**NOTIFICATION, "Type": "Other"}, {**NOTIFICATION, "Message": 42}],
    ids=["unknown-type", "not-a-string"],
)
def test_a_message_whose_signed_text_is_unknown_is_malformed(message: dict[str, Any]) -> None:
    with pytest.raises(SignatureError) as refused:
        string_to_sign(message)
    assert refused.value.reason == "malformed_message"


# --------------------------------------------------------------------------- versions 1 and 2


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("base", [NOTIFICATION, CONFIRMATION], ids=["notification", "confirm"])
def test_both_signature_versions_verify_with_the_certificate(
    signer: Signer, version: str, base: dict[str, Any]
) -> None:
    signed = signer.sign(base, version)
    verify_sns_signature(signed, signer.pem)
    verify_with_key(signed, public_key(signer.pem))
    assert signature_of(signed) == (version, base64.b64decode(signed["Signature"]))


def test_a_signature_checked_under_the_other_version_fails(signer: Signer) -> None:
    signed = signer.sign(NOTIFICATION, "1")
    with pytest.raises(SignatureError) as refused:
        verify_sns_signature({**signed, "SignatureVersion": "2"}, signer.pem)
    assert refused.value.reason == "bad_signature"


@pytest.mark.parametrize(
    "change",
    [{"Message": "changed"}, {"Subject": "other"}, {"Type": "UnsubscribeConfirmation"}],
)
def test_a_changed_signed_field_fails(signer: Signer, change: dict[str, Any]) -> None:
    signed = {**signer.sign(NOTIFICATION), **change}
    with pytest.raises(SignatureError) as refused:
        verify_sns_signature(signed, signer.pem)
    assert refused.value.reason in ("bad_signature", "malformed_message")


def test_an_unsigned_field_may_change(signer: Signer) -> None:
    signed = {**signer.sign(NOTIFICATION), "MessageAttributes": {}, "UnsubscribeURL": "x"}
    verify_sns_signature(signed, signer.pem)


def test_another_key_fails_and_no_certificate_is_no_key(signer: Signer) -> None:
    other = make_signer(CERT_URL)
    with pytest.raises(SignatureError) as refused:
        verify_sns_signature(signer.sign(NOTIFICATION), other.pem)
    assert refused.value.reason == "bad_signature"
    with pytest.raises(SignatureError) as not_pem:
        public_key(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert not_pem.value.reason == "bad_certificate"
    assert isinstance(not_pem.value, AWSError)


# --------------------------------------------------------------------------- before a fetch


def test_the_checks_before_a_fetch_return_the_certificate_url(signer: Signer) -> None:
    assert check_before_fetch(signer.sign(NOTIFICATION, "2")) == CERT_URL


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Signature": None}, "missing_signature"),
        ({"SignatureVersion": None}, "missing_signature"),
        ({"SigningCertURL": None}, "missing_signature"),
        ({"SignatureVersion": "3"}, "unsupported_signature_version"),
        ({"SignatureVersion": 1}, "unsupported_signature_version"),
        ({"Signature": "not base64!"}, "bad_signature"),
        ({"SigningCertURL": "http://sns.eu-west-1.amazonaws.com/a.pem"}, "bad_certificate_url"),
        ({"SigningCertURL": "https://sns.eu-west-1.evil.com/a.pem"}, "bad_certificate_url"),
        ({"SigningCertURL": "https://sns.eu-west-1.amazonaws.com/a.txt"}, "bad_certificate_url"),
    ],
)
def test_the_checks_before_a_fetch_name_what_is_wrong(
    signer: Signer, change: dict[str, Any], reason: str
) -> None:
    message = {k: v for k, v in {**signer.sign(NOTIFICATION), **change}.items() if v is not None}
    with pytest.raises(SignatureError) as refused:
        check_before_fetch(message)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem",
        "https://sns.us-gov-west-1.amazonaws.com:443/a.pem",
    ],
)
def test_sns_hosts_pass_the_url_check(url: str) -> None:
    assert check_signing_cert_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com.evil.com/a.pem",
        "https://user@sns.us-east-1.amazonaws.com/a.pem",
        "https://sns.us-east-1.amazonaws.com:8443/a.pem",
        "https://s3.amazonaws.com/a.pem",
        "https://sns.us-east-1.amazonaws.com/a.pem extra",
    ],
)
def test_other_hosts_ports_and_shapes_fail_the_url_check(url: str) -> None:
    with pytest.raises(SignatureError) as refused:
        check_signing_cert_url(url)
    assert refused.value.reason == "bad_certificate_url"


def test_the_module_does_no_io() -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(MODULE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            imported.add((node.module or "").split(".")[0])
    assert "cryptography" in imported  # the scan sees the imports
    io = {"aiohttp", "asyncio", "anyio", "socket", "ssl", "http", "urllib3", "requests"}
    assert not imported & io

"""SNS message signatures, verified without I/O: what SNS signs, and how to check it.

SNS signs every message it delivers over HTTP(S) (and the envelopes it sends to SQS): the
signature covers a canonical text built from some of the message's fields
(:func:`string_to_sign`), made with the RSA key of a certificate that SNS serves at the
message's ``SigningCertURL``. ``SignatureVersion`` "1" hashes with SHA1, "2" with SHA256.

This module holds the rules and the cryptography; it fetches nothing. The order of use,
as :class:`eventflow.aws.SNSEndpoint` follows it:

1. :func:`check_before_fetch`: the message is signed with a known version, its signature
   is base64, and its certificate URL is one SNS would use (https, an SNS host, a
   ``.pem`` path: :func:`check_signing_cert_url`); it returns that URL;
2. fetch the certificate at the URL (the caller's I/O), :func:`public_key` reads it;
3. :func:`verify_with_key` checks the signature against the message.

:func:`verify_sns_signature` does 2 and 3 for a certificate already in hand.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._errors import AWSError

__all__ = (
    "SignatureError",
    "check_before_fetch",
    "check_signing_cert_url",
    "message_field",
    "public_key",
    "signature_of",
    "sns_url_problem",
    "string_to_sign",
    "verify_sns_signature",
    "verify_with_key",
)

_NOTIFICATION_KEYS: Final = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS: Final = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
# The Lambda event spells these URLs differently from the HTTP(S) and SQS envelopes.
_SPELLINGS: Final = {
    "SigningCertURL": ("SigningCertURL", "SigningCertUrl"),
    "UnsubscribeURL": ("UnsubscribeURL", "UnsubscribeUrl"),
    "SubscribeURL": ("SubscribeURL", "SubscribeUrl"),
}
_HASHES: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}
_SNS_HOST: Final = re.compile(r"sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?")


class SignatureError(AWSError):
    """An SNS message failed signature verification.

    Attributes:
        reason: Which check failed: ``missing_signature``, ``unsupported_signature_version``,
            ``bad_certificate_url``, ``bad_certificate``, ``bad_signature`` or
            ``malformed_message`` (a signed field is not a string, or ``Type`` is unknown).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def message_field(message: Mapping[str, Any], key: str) -> Any:
    """The value of ``key`` under any of its spellings, or None (absent and null alike)."""
    for spelling in _SPELLINGS.get(key, (key,)):
        value = message.get(spelling)
        if value is not None:
            return value
    return None


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical text SNS signs: ``key\\nvalue\\n`` for each signed key present."""
    message_type = message.get("Type")
    if message_type == "Notification":
        keys: tuple[str, ...] = _NOTIFICATION_KEYS
    elif message_type in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        keys = _CONFIRMATION_KEYS
    else:
        raise SignatureError(
            f"The message has Type {message_type!r}, so its signed fields are unknown; SNS sends "
            "Notification, SubscriptionConfirmation and UnsubscribeConfirmation messages.",
            reason="malformed_message",
        )
    parts: list[str] = []
    for key in keys:
        value = message_field(message, key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise SignatureError(
                f"The message's {key!r} is a {type(value).__name__}, not a string, so it cannot "
                "have been signed by SNS; pass the message exactly as decoded from its JSON.",
                reason="malformed_message",
            )
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def public_key(certificate_pem: bytes) -> rsa.RSAPublicKey:
    """The RSA public key of a PEM certificate.

    Raises:
        SignatureError: Not a PEM X.509 certificate, or its key is not RSA
            (reason ``bad_certificate``).
    """
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as exc:
        raise SignatureError(
            f"The signing certificate is not a PEM-encoded X.509 certificate ({exc}); pass the "
            "bytes served at the message's SigningCertURL.",
            reason="bad_certificate",
        ) from exc
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError(
            f"The signing certificate holds a {type(key).__name__}, but SNS signs with RSA "
            "keys; this certificate cannot belong to SNS.",
            reason="bad_certificate",
        )
    return key


def signature_of(message: Mapping[str, Any]) -> tuple[str, bytes]:
    """The message's signature version and decoded signature, checked before any fetch."""
    version = message.get("SignatureVersion")
    signature = message.get("Signature")
    if version is None or signature is None:
        missing = "SignatureVersion" if version is None else "Signature"
        raise SignatureError(
            f"The message has no {missing!r}, so it cannot be verified; SNS signs every "
            "message it delivers over HTTP(S).",
            reason="missing_signature",
        )
    if not isinstance(version, str) or version not in _HASHES:
        raise SignatureError(
            f"The message has SignatureVersion {version!r}; only '1' (SHA1) and '2' (SHA256) "
            "are SNS signature versions.",
            reason="unsupported_signature_version",
        )
    if not isinstance(signature, str):
        raise SignatureError(
            f"The message's 'Signature' is a {type(signature).__name__}, not base64 text.",
            reason="bad_signature",
        )
    try:
        return version, base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(
            f"The message's 'Signature' is not valid base64 ({exc}).", reason="bad_signature"
        ) from exc


def verify_with_key(message: Mapping[str, Any], key: rsa.RSAPublicKey) -> None:
    """Check the message's signature with ``key``.

    Raises:
        SignatureError: The message is not signed with a known version, or the signature
            does not match its signed fields (reason ``bad_signature``).
    """
    version, raw = signature_of(message)
    data = string_to_sign(message)
    try:
        key.verify(raw, data, padding.PKCS1v15(), _HASHES[version]())
    except InvalidSignature:
        raise SignatureError(
            f"The signature of message {message.get('MessageId')!r} does not match its content "
            "and certificate: the message was altered, or not signed by SNS.",
            reason="bad_signature",
        ) from None


def verify_sns_signature(message: Mapping[str, Any], certificate_pem: bytes) -> None:
    """Verify the signature of an SNS message against its signing certificate.

    Accepts HTTP(S)/SQS envelopes (``SigningCertURL``) and the ``Sns`` object of a Lambda
    event (``SigningCertUrl``, ``"Subject": null`` when there is no subject) alike. The
    certificate URL is not checked here: check it with :func:`check_signing_cert_url` before
    fetching the certificate it names.

    Args:
        message: The message as decoded from JSON.
        certificate_pem: The PEM certificate served at the message's signing certificate URL.

    Raises:
        SignatureError: The message is unsigned, has an unknown ``SignatureVersion``, the
            certificate is unusable, or the signature does not match; ``reason`` says which.
    """
    verify_with_key(message, public_key(certificate_pem))


def sns_url_problem(url: object) -> str | None:
    """Why ``url`` is not an https URL on an SNS host (a sentence's predicate), or None."""
    if not isinstance(url, str):
        return f"is a {type(url).__name__}, not a URL"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme != "https":
        return f"uses {parts.scheme or 'no'} scheme instead of https"
    if parts.username is not None or parts.password is not None:
        return "carries user information before its host"
    if port not in (None, 443):
        return f"names port {port} instead of the https default"
    host = parts.hostname or ""
    if not _SNS_HOST.fullmatch(host):
        return (
            f"has host {host!r}, which is not an SNS host "
            "(sns.<region>.amazonaws.com or sns.<region>.amazonaws.com.cn)"
        )
    return None


def check_signing_cert_url(url: object) -> str:
    """Check that a signing certificate URL is one SNS would use, before fetching it.

    The rules are those of AWS's message validators: scheme https, host matching
    ``sns.<region>.amazonaws.com`` (or ``.com.cn``), path ending in ``.pem``.

    Args:
        url: The ``SigningCertURL`` (or ``SigningCertUrl``) of a message.

    Returns:
        The URL, for chaining.

    Raises:
        SignatureError: The URL breaks a rule (reason ``bad_certificate_url``).
    """
    problem = sns_url_problem(url)
    if problem is None and not urlsplit(str(url)).path.endswith(".pem"):
        problem = "does not name a .pem file"
    if problem is not None:
        raise SignatureError(
            f"The signing certificate URL {url!r} {problem}; SNS certificates are served over "
            "https from sns.<region>.amazonaws.com as .pem files, so this message is refused.",
            reason="bad_certificate_url",
        )
    return str(url)


def check_before_fetch(message: Mapping[str, Any]) -> str:
    """Everything about a message's signature that needs no certificate; its certificate URL.

    Args:
        message: The message as decoded from JSON.

    Returns:
        The message's ``SigningCertURL``, checked by :func:`check_signing_cert_url`.

    Raises:
        SignatureError: The message is unsigned, has an unknown ``SignatureVersion``, a
            signature that is not base64, no certificate URL, or one SNS would not use.
    """
    signature_of(message)
    url = message_field(message, "SigningCertURL")
    if url is None:
        raise SignatureError(
            "The message has no 'SigningCertURL', so its signature cannot be verified; "
            "SNS names its certificate in every message it delivers over HTTP(S).",
            reason="missing_signature",
        )
    return check_signing_cert_url(url)

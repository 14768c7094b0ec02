"""AWS Signature Version 4 verification for the Lambda API, by re-signing with botocore.

The verifier rebuilds the request exactly as the client signed it (method, raw path,
query, the headers listed in ``SignedHeaders``, the body's SHA-256) and signs it again
with botocore's own :class:`botocore.auth.SigV4Auth`, using the request's ``X-Amz-Date``;
the two signatures are compared with :func:`hmac.compare_digest`.
:meth:`SigV4Verifier.check_headers` makes every check that needs no body, so that a server
can refuse a client before receiving its body. Anything that does not
verify raises :class:`SignatureRejected`, whose ``code`` is the error code AWS answers
with (always HTTP 403):

=======================================  ==================================================
code                                     cause
=======================================  ==================================================
``MissingAuthenticationTokenException``  no ``Authorization`` header
``IncompleteSignatureException``         not ``AWS4-HMAC-SHA256``, or a part is missing
``UnrecognizedClientException``          an unknown access key ID or security token
``InvalidSignatureException``            a wrong signature, a date more than 5 minutes off,
                                         a body that does not match its hash, or a
                                         credential scope for another region or service
=======================================  ==================================================
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials, ReadOnlyCredentials

from .._errors import EventflowError

__all__ = ("SigV4Verifier", "SignatureRejected", "as_credentials")

_ALGORITHM: Final = "AWS4-HMAC-SHA256"
_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)


class SignatureRejected(EventflowError):
    """A request's Signature V4 did not verify.

    Attributes:
        code: The AWS error code to answer with (``x-amzn-ErrorType``).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def as_credentials(credentials: Any) -> Credentials:
    """Accept botocore ``Credentials`` or an ``(access_key, secret_key[, token])`` tuple.

    Raises:
        TypeError: ``credentials`` is neither.
    """
    if hasattr(credentials, "access_key") and hasattr(credentials, "secret_key"):
        if isinstance(credentials, Credentials):
            return credentials
        return Credentials(
            credentials.access_key, credentials.secret_key, getattr(credentials, "token", None)
        )
    if (
        isinstance(credentials, tuple)
        and len(credentials) in (2, 3)
        and all(isinstance(part, str | None) for part in credentials)
        and credentials[0]
        and credentials[1]
    ):
        return Credentials(*credentials)
    raise TypeError(
        "credentials must be botocore Credentials or an (access_key, secret_key) tuple of "
        f"non-empty strings, got {type(credentials).__name__}."
    )


class _Resigner(SigV4Auth):  # type: ignore[misc]
    """botocore's signer, signing exactly the headers the request says it signed."""

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name, value in request.headers.items():
            headers[name.lower()] = value
        return headers


def _received(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """The request's header values by lower-case name, in order."""
    received: dict[str, list[str]] = {}
    for raw_name, raw_value in headers:
        received.setdefault(raw_name.decode("latin-1").lower(), []).append(
            raw_value.decode("latin-1")
        )
    return received


def _fmt(timestamp: float) -> str:
    return time.strftime(_DATE_FORMAT, time.gmtime(timestamp))


class SigV4Verifier:
    """Verifies AWS Signature V4 ``Authorization`` headers for one set of credentials.

    Args:
        credentials: botocore ``Credentials`` or an ``(access_key, secret_key)`` tuple.
        region: The region requests must be signed for.
        service: The signing name requests must be signed for.
        max_skew: Seconds ``X-Amz-Date`` may differ from now (AWS allows 5 minutes).
        clock: Returns the current time in epoch seconds.
    """

    def __init__(
        self,
        credentials: Any,
        *,
        region: str,
        service: str = "lambda",
        max_skew: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = as_credentials(credentials)
        self._region = region
        self._service = service
        self._max_skew = max_skew
        self._clock = clock

    def check_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Check everything about a request's signature that needs no body.

        Call it before reading the body, so that a client without a key cannot make the
        server receive one: it checks the ``Authorization`` header's form, the access key
        and security token, ``X-Amz-Date`` (present, well formed, within ``max_skew``), the
        credential scope (date, region, service) and that every signed header is present.
        :meth:`verify` makes the same checks again, then the body's.

        Args:
            headers: The request's headers, as ASGI gives them.

        Raises:
            SignatureRejected: One of these checks failed.
        """
        self._checked(_received(headers))

    def verify(
        self,
        *,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        """Check the request's signature.

        Args:
            method: The HTTP method.
            raw_path: The path as sent (percent-encoded).
            query: The query string as sent, without ``?``.
            headers: The request's headers, as ASGI gives them.
            body: The whole request body.

        Raises:
            SignatureRejected: The signature is missing or does not verify.
        """
        received = _received(headers)
        frozen, amz_date, signed_names, signature = self._checked(received)
        content_hash = received.get("x-amz-content-sha256")
        if content_hash is not None and not hmac.compare_digest(
            content_hash[0].encode("latin-1"), hashlib.sha256(body).hexdigest().encode()
        ):
            raise SignatureRejected(
                "InvalidSignatureException",
                "The X-Amz-Content-SHA256 header does not match the SHA-256 of the body; "
                "the body was changed or is not signed.",
            )
        request = AWSRequest(
            method=method,
            url="http://localhost"
            + raw_path.decode("latin-1")
            + ("?" + query.decode("latin-1") if query else ""),
            data=body,
        )
        request.headers = HTTPHeaders()
        for name in signed_names:
            for value in received[name]:  # present: _checked made sure
                request.headers[name] = value
        request.context["timestamp"] = amz_date
        signer = _Resigner(frozen, self._service, self._region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
            raise SignatureRejected("InvalidSignatureException", _MISMATCH)

    def _checked(
        self, received: dict[str, list[str]]
    ) -> tuple[ReadOnlyCredentials, str, list[str], str]:
        """The header checks; the credentials, X-Amz-Date, signed names and signature."""
        authorization = received.get("authorization")
        if not authorization:
            raise SignatureRejected(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token: sign the request with AWS Signature V4.",
            )
        if len(authorization) > 1:
            raise SignatureRejected(
                "IncompleteSignatureException",
                "The request has more than one Authorization header.",
            )
        credential, signed_names, signature = self._parse_authorization(authorization[0])
        frozen = self._credentials.get_frozen_credentials()
        parts = credential.split("/")
        if len(parts) != 5:
            raise SignatureRejected(
                "IncompleteSignatureException",
                "The Credential of the Authorization header must be "
                "'<access key>/<date>/<region>/<service>/aws4_request'.",
            )
        access_key, scope_date, scope_region, scope_service, terminator = parts
        if not hmac.compare_digest(access_key.encode(), str(frozen.access_key).encode()):
            raise SignatureRejected(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        token = received.get("x-amz-security-token", [None])[0]
        expected_token = frozen.token
        if (token is None) != (expected_token is None) or (
            token is not None
            and expected_token is not None
            and not hmac.compare_digest(token.encode(), str(expected_token).encode())
        ):
            raise SignatureRejected(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        amz_date = self._check_date(received)
        if scope_date != amz_date[:8]:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date: the scope has "
                f"{scope_date!r} and X-Amz-Date is {amz_date!r}.",
            )
        if scope_region != self._region:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region: the request is signed for "
                f"{scope_region!r} but this endpoint serves {self._region!r}.",
            )
        if scope_service != self._service or terminator != "aws4_request":
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Credential should be scoped to the service {self._service!r} with the "
                f"terminator 'aws4_request', got {scope_service!r} and {terminator!r}.",
            )
        if "host" not in signed_names:
            raise SignatureRejected(
                "InvalidSignatureException", "The Host header must be among the signed headers."
            )
        for name in signed_names:
            if name not in received:
                raise SignatureRejected(
                    "InvalidSignatureException",
                    f"The signed header {name!r} is not in the request.",
                )
        return frozen, amz_date, signed_names, signature

    @staticmethod
    def _parse_authorization(value: str) -> tuple[str, list[str], str]:
        algorithm, _, rest = value.strip().partition(" ")
        if algorithm != _ALGORITHM:
            raise SignatureRejected(
                "IncompleteSignatureException",
                f"Only {_ALGORITHM} signatures are accepted, got {algorithm!r}.",
            )
        fields: dict[str, str] = {}
        for item in rest.split(","):
            key, sep, val = item.strip().partition("=")
            if sep:
                fields[key] = val
        missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
        if missing:
            raise SignatureRejected(
                "IncompleteSignatureException",
                f"Authorization header requires {', '.join(repr(m) for m in missing)}.",
            )
        names = fields["SignedHeaders"].split(";")
        return fields["Credential"], names, fields["Signature"]

    def _check_date(self, received: dict[str, list[str]]) -> str:
        values = received.get("x-amz-date")
        if not values:
            raise SignatureRejected(
                "IncompleteSignatureException",
                "Authorization requires an X-Amz-Date header (format YYYYMMDD'T'HHMMSS'Z').",
            )
        amz_date = values[0]
        try:
            signed_at = calendar.timegm(time.strptime(amz_date, _DATE_FORMAT))
        except ValueError:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"X-Amz-Date must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z'), "
                f"got {amz_date!r}.",
            ) from None
        now = self._clock()
        if signed_at < now - self._max_skew:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than "
                f"{_fmt(now - self._max_skew)} ({_fmt(now)} - {self._max_skew / 60:g} min.).",
            )
        if signed_at > now + self._max_skew:
            raise SignatureRejected(
                "InvalidSignatureException",
                f"Signature not yet current: {amz_date} is still later than "
                f"{_fmt(now + self._max_skew)} ({_fmt(now)} + {self._max_skew / 60:g} min.).",
            )
        return amz_date

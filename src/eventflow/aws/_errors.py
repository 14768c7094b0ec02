"""AWS errors, translated at the adapter boundary into eventflow's own exceptions."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
)

from .._errors import EventflowError

__all__ = (
    "ACCESS_CODES",
    "CREDENTIAL_CODES",
    "ENTRY_INVALID_CODES",
    "MISSING_CODES",
    "THROTTLING_CODES",
    "AWSError",
    "ResourceCheckFailed",
    "check_resource",
    "error_code",
    "failure_hint",
    "http_status",
    "is_throttling",
    "is_transient",
    "maybe_about_entries",
)

# the credentials do not have the permission
ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "OptInRequired",
    }
)
# the credentials themselves were refused: unknown, expired, or the request badly signed
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidSecurity",
        "IncompleteSignature",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "RequestExpired",
        "RequestTimeTooSkewed",
    }
)
MISSING_CODES = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "NonExistentQueue",
        "NotFound",
        "NotFoundException",
        "ResourceNotFoundException",
        "NoSuchBucket",
    }
)
# whole-call errors that mean "slow down"
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "KMSThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
# whole-call codes that, for a call with a single entry, say that entry can never be sent
ENTRY_INVALID_CODES = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameter",
        "InvalidArgumentException",
        "InvalidMessageContents",
        "InvalidAttributeName",
        "InvalidAttributeValue",
        "MessageTooLong",
        "BatchRequestTooLong",
        "AWS.SimpleQueueService.BatchRequestTooLong",
        "AWS.SimpleQueueService.InvalidMessageContents",
        "ValidationException",
    }
)
_TRANSIENT_CODES = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "InternalServerError"}
)


class AWSError(EventflowError):
    """An AWS call made by an eventflow adapter failed."""


class ResourceCheckFailed(AWSError):
    """An adapter's start-up check found its AWS resource missing, forbidden or unreachable.

    Attributes:
        resource: The queue URL, topic ARN or bus name.
        operation: The API operation that failed.
        iam_action: The IAM action the adapter needs for its work.
    """

    def __init__(self, message: str, *, resource: str, operation: str, iam_action: str) -> None:
        super().__init__(message)
        self.resource = resource
        self.operation = operation
        self.iam_action = iam_action


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def http_status(exc: BaseException) -> int:
    """The HTTP status of a botocore ``ClientError`` (0 for anything else)."""
    if not isinstance(exc, ClientError):
        return 0
    try:
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    except (TypeError, ValueError):
        return 0


def is_throttling(exc: BaseException) -> bool:
    """Whether a failed call was throttled (the caller should slow down and call again).

    By its code alone: botocore marks ``MaxAttemptsReached`` on any error of a client that
    makes one attempt, so that mark says nothing about throttling.
    """
    return error_code(exc) in THROTTLING_CODES


def is_transient(exc: BaseException) -> bool:
    """Whether a failed call may pass if made again: a 5xx answer or a broken connection."""
    if isinstance(exc, ClientError):
        return http_status(exc) >= 500 or error_code(exc) in _TRANSIENT_CODES
    return isinstance(exc, EndpointConnectionError | ConnectionClosedError)


def maybe_about_entries(exc: BaseException) -> bool:
    """Whether a failed batch call may have failed because of one of its entries."""
    code = error_code(exc)
    return (
        http_status(exc) == 400
        and code not in ACCESS_CODES
        and code not in CREDENTIAL_CODES
        and code not in MISSING_CODES
        and not is_throttling(exc)
    )


def failure_hint(exc: BaseException) -> str:
    """What to do about a failed AWS call, by the kind of its error ('' if unknown)."""
    code = error_code(exc)
    if code in CREDENTIAL_CODES:
        return (
            f"AWS refused these credentials ({code}): refresh them (an expired session token "
            "needs a new one) or configure others."
        )
    if code in ACCESS_CODES:
        return f"The call was denied ({code}): grant these credentials the IAM action it needs."
    if code in MISSING_CODES:
        return f"The resource does not exist ({code}): create it, or correct its name."
    if is_throttling(exc):
        return f"AWS throttled the call ({code}); raise the quota if this persists."
    if is_transient(exc):
        return "AWS or the network failed for a moment; the call is made again."
    return ""


async def check_resource(
    client: Any,
    operation: str,
    params: dict[str, Any],
    *,
    what: str,
    resource: str,
    iam_action: str,
    check_hint: str = "pass check=False to skip this check for a resource created later",
) -> dict[str, Any]:
    """Call ``operation`` to prove ``resource`` exists and is reachable; raise a clear error.

    Args:
        client: The aiobotocore client.
        operation: The client method name, such as ``get_queue_attributes``.
        params: Its keyword arguments.
        what: A phrase for the message, such as "dead-letter queue".
        resource: The resource's URL, ARN or name.
        iam_action: The IAM action the adapter needs, such as ``sqs:SendMessage``.
        check_hint: How to skip the check.
    """
    api = "".join(part.title() for part in operation.split("_"))
    try:
        result: dict[str, Any] = await getattr(client, operation)(**params)
    except ClientError as exc:
        code = error_code(exc)
        if code in CREDENTIAL_CODES:
            message = (
                f"The {what} {resource} cannot be used: AWS refused these credentials on "
                f"{api} ({code}). Refresh them (an expired session token needs a new one) or "
                f"configure others, or {check_hint}."
            )
        elif code in ACCESS_CODES:
            message = (
                f"The {what} {resource} cannot be used: {api} was denied ({code}). Grant "
                f"these credentials the IAM action {iam_action} on it (this check calls "
                f"{api}), or {check_hint}."
            )
        elif code in MISSING_CODES:
            message = (
                f"The {what} {resource} does not exist ({api} answered {code}); create it "
                f"first, or {check_hint}."
            )
        else:
            message = f"The {what} {resource} could not be checked: {api} failed with {code}: {exc}"
        raise ResourceCheckFailed(
            message, resource=resource, operation=api, iam_action=iam_action
        ) from exc
    except BotoCoreError as exc:
        raise ResourceCheckFailed(
            f"The {what} {resource} is unreachable: {api} failed: {exc}. Check endpoint_url, "
            f"region_name and the network, or {check_hint}.",
            resource=resource,
            operation=api,
            iam_action=iam_action,
        ) from exc
    return result

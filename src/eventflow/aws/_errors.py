"""AWS errors, translated at the adapter boundary into eventflow's own exceptions."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .._errors import EventflowError

__all__ = ("AWSError", "ResourceCheckFailed", "check_resource", "error_code")

_ACCESS = {
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
}
_MISSING = {
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NonExistentQueue",
    "NotFound",
    "NotFoundException",
    "ResourceNotFoundException",
    "NoSuchBucket",
}


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
        if code in _ACCESS:
            message = (
                f"The {what} {resource} cannot be used: {api} was denied ({code}). Grant "
                f"these credentials the IAM action {iam_action} on it (this check calls "
                f"{api}), or {check_hint}."
            )
        elif code in _MISSING:
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

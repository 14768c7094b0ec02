"""The one AWS error map: every adapter classifies an error code the same way."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from eventflow.aws._errors import (
    failure_hint,
    is_throttling,
    is_transient,
    maybe_about_entries,
)


def client_error(code: str, status: int = 400) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "SendMessageBatch")


@pytest.mark.parametrize(
    ("code", "status", "hint"),
    [
        ("ExpiredToken", 403, "AWS refused these credentials (ExpiredToken)"),
        ("ExpiredTokenException", 400, "an expired session token needs a new one"),
        ("AccessDeniedException", 400, "grant these credentials the IAM action"),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, "does not exist"),
        ("ThrottlingException", 400, "AWS throttled the call"),
        ("InternalError", 500, "failed for a moment"),
        ("InvalidParameterValue", 400, ""),
    ],
)
def test_each_kind_of_error_has_one_hint(code: str, status: int, hint: str) -> None:
    text = failure_hint(client_error(code, status))
    assert hint in text and (text == "") == (hint == "")


def test_only_an_entry_level_400_may_be_about_the_entries() -> None:
    assert maybe_about_entries(client_error("InvalidParameterValue"))
    for code in ("ExpiredToken", "AccessDenied", "QueueDoesNotExist", "Throttling"):
        assert not maybe_about_entries(client_error(code))
    assert not maybe_about_entries(client_error("InternalError", 500))


def test_throttling_and_passing_failures_are_told_apart() -> None:
    assert is_throttling(client_error("ProvisionedThroughputExceededException"))
    assert not is_throttling(client_error("ExpiredToken"))
    assert is_transient(client_error("ServiceUnavailable", 503))
    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert not is_transient(client_error("AccessDenied", 403))

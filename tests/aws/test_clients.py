"""Shared clients and start-up checks against the moto server."""

from __future__ import annotations

from typing import Any

import pytest

from eventflow.aws import ResourceCheckFailed
from eventflow.aws._clients import _entries, shared_client
from eventflow.aws._errors import check_resource


async def test_clients_are_shared_per_service_and_region_and_closed_last(
    moto_endpoint: str,
) -> None:
    async with shared_client("sqs", endpoint_url=moto_endpoint) as a:
        async with shared_client("sqs", endpoint_url=moto_endpoint) as b:
            assert a is b
            async with shared_client(
                "sqs", endpoint_url=moto_endpoint, region_name="eu-west-1"
            ) as c:
                assert c is not a
        assert len(_entries) == 1
        await a.list_queues()  # still open while one user remains
    assert _entries == {}


async def test_missing_queue_fails_the_check_with_its_name(
    aws: dict[str, Any], unique_name: str
) -> None:
    url = f"{aws['endpoint']}/123456789012/{unique_name}"
    with pytest.raises(ResourceCheckFailed, match=rf"queue {url} does not exist") as info:
        await check_resource(
            aws["sqs"],
            "get_queue_attributes",
            {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
            what="queue",
            resource=url,
            iam_action="sqs:SendMessage",
        )
    assert info.value.operation == "GetQueueAttributes"
    assert info.value.iam_action == "sqs:SendMessage"

"""A real AWS-compatible endpoint for the adapter tests: a moto server on 127.0.0.1.

As in aiobotocore's own suite: the server runs in this process on a random port, the
environment is stripped of every AWS_* variable and config file so nothing reaches a real
account, and each test uses uniquely named resources.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import AioSession

from aws_support import isolate_aws_environment

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _isolate_aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    isolate_aws_environment(monkeypatch, tmp_path_factory)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def unique_name() -> str:
    return f"ef-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def aws(moto_endpoint: str, aio_session: AioSession) -> AsyncIterator[dict[str, Any]]:
    """Plain aiobotocore clients on the moto server, for arranging and checking tests."""
    session = aio_session
    kw: dict[str, Any] = {"region_name": REGION, "endpoint_url": moto_endpoint}
    async with (
        session.create_client("sqs", **kw) as sqs,
        session.create_client("sns", **kw) as sns,
        session.create_client("events", **kw) as events,
        session.create_client("s3", **kw) as s3,
    ):
        yield {"sqs": sqs, "sns": sns, "events": events, "s3": s3, "endpoint": moto_endpoint}

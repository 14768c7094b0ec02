"""One harness, four event queues: the default in-memory queue, the in-memory shared queue
(``eventflow.queues.MemoryQueue``), the SQLite queue (``eventflow.queues.SQLiteQueue``) and
``eventflow.aws.SQSEventQueue`` on a moto server.

The same test functions run on each. The in-memory and SQLite kinds run on a virtual clock (a
retry delay of 60 s passes in an instant); the SQS kind runs on real time, because its
retry delays are SQS visibility timeouts kept by the server, so its tests use 1-second
delays (the shortest SQS can keep).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aws_support import isolate_aws_environment
from queue_support import KINDS, REGION, Harness


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def _aws_env(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    if kind == "sqs":
        isolate_aws_environment(monkeypatch, tmp_path_factory)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    yield


@pytest.fixture
async def harness(
    kind: str, _aws_env: None, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Harness]:
    if kind != "sqs":
        yield Harness(kind, None, None, tmp_path)
        return
    endpoint: str = request.getfixturevalue("moto_endpoint")
    session = request.getfixturevalue("aio_session")
    async with session.create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:

        async def new_queue() -> str:
            created = await sqs.create_queue(
                QueueName=f"ef-q-{uuid.uuid4().hex[:12]}", Attributes={"VisibilityTimeout": "10"}
            )
            return str(created["QueueUrl"])

        yield Harness(kind, endpoint, new_queue)

"""Fixtures of the fuzz suite: an AWS environment that can reach nothing but the tests' moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from aws_support import isolate_aws_environment


@pytest.fixture(scope="module", autouse=True)
def _isolate_aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_aws_environment(monkeypatch, tmp_path_factory)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        # anything not given the tests' moto explicitly meets a closed port, at once
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("AWS_RETRY_MODE", "standard")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        yield


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    # the adapters log every refusal through structlog's default printer: hundreds of
    # generated requests would bury a failure's report
    with capture_logs():
        yield

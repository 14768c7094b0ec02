"""A moto server in a child process for the benchmarks (shared by scale_out, sqs_pipeline,
sqs_batch and idempotency), so that the server and the code measured do not share one GIL;
and the set-up the SQS benchmarks share (:func:`sqs_arguments`, :func:`sqs_benchmark`,
:func:`rounds`).

``patched=True`` (the benchmarks' default) changes two things in moto 5.2's SQS, in the
child process only. Its clock: moto computes the queue's whole attribute set (three scans
of every message in the queue, in flight ones included, with slow datetime clock reads)
for every message it stores or returns, so its CPU per call grows with the queue's depth:
about 150 ms per SendMessageBatch and over 500 ms per ReceiveMessage of ten with a few
hundred messages queued; reading the clock with ``time.time()`` (the same values) cuts
that to 10-40 ms. And atomicity: moto serves requests on threads, and its ReceiveMessage
(scan, then mark) and DeleteMessage (rebuild the list, then assign it) take no lock, so
concurrent receives can return one message twice and concurrent deletes can be lost;
real SQS does neither, and the patch holds the queue's own lock around both. And FIFO
order: moto counts a message group as in flight while any of its messages is in its
pending set, even one whose visibility timeout has lapsed, and drops such a message from
the set only when its receive loop reaches it, so after a failed batch it delivers a
group's last message first; the patch counts only invisible messages, as SQS does.
``patched=False`` runs moto as it is. The ThreadedMotoServer is used either way: the
``moto_server`` command's default server answered about 20 times slower here.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

__all__ = ("free_port", "rounds", "sqs_arguments", "sqs_benchmark", "start_moto")

REGION = "us-east-1"

_SERVER = """
import sys, threading, time
from moto.server import ThreadedMotoServer
if sys.argv[2] == "patched":
    import moto.sqs.models as models
    slow = models.unix_time
    def unix_time(dt=None):
        return time.time() if dt is None else slow(dt)
    def unix_time_millis(dt=None):
        return unix_time(dt) * 1000.0
    models.unix_time, models.unix_time_millis = unix_time, unix_time_millis
    receive, delete = models.SQSBackend.receive_message, models.Queue.delete_message
    def pending_message_groups(self):
        # a group is in flight while one of its messages is invisible, as in SQS
        return {m.group_id for m in self._pending_messages
                if m.group_id is not None and not m.visible}
    models.Queue.pending_message_groups = property(pending_message_groups)
    def receive_message(self, queue_name, *args, **kwargs):
        queue = self.get_queue(queue_name)
        # the long poll's wait (a Condition on this lock) releases it
        with queue._messages_lock:
            # messages visible again are no longer in flight: one receive may return a
            # group's messages in order, as SQS does
            queue._pending_messages = {m for m in queue._pending_messages if not m.visible}
            return receive(self, queue_name, *args, **kwargs)
    def delete_message(self, receipt_handle):
        with self._messages_lock:  # the lock add_message takes
            return delete(self, receipt_handle)
    models.SQSBackend.receive_message = receive_message
    models.Queue.delete_message = delete_message
s = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
s.start()
threading.Event().wait()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(patched: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server; return its process and endpoint URL once it accepts connections."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port), "patched" if patched else "stock"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the moto server did not start within 30 s")


def sqs_arguments(description: str) -> argparse.ArgumentParser:
    """The options every SQS benchmark takes: messages, rounds, queue depth, SQSSource
    pollers and stock moto; add the benchmark's own to the parser returned."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds the messages are split in (5)"
    )
    parser.add_argument(
        "--depth",
        type=int,
        default=30,
        help="messages kept in the queue by the feeder: moto's receive costs grow with it (30)",
    )
    parser.add_argument("--pollers", type=int, default=2, help="SQSSource pollers (2)")
    parser.add_argument(
        "--stock-moto",
        action="store_true",
        help="run moto unpatched (see benchmarks/_moto_server.py)",
    )
    return parser


@contextmanager
def sqs_benchmark(patched: bool) -> Iterator[str]:
    """Quiet logs, an environment that reaches no AWS account, and a moto server for the
    run: yields its endpoint, and stops it after."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION
    )
    proc, endpoint = start_moto(patched=patched)
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def rounds(n: int, count: int, sides: tuple[str, str]) -> Iterator[tuple[int, int, list[str]]]:
    """``n`` messages in ``count`` rounds: (round, its messages, the sides in the order they
    run), the order alternating so that neither side always follows the other."""
    for r in range(count):
        yield (
            r,
            n // count + (1 if r < n % count else 0),
            list(sides if r % 2 == 0 else sides[::-1]),
        )

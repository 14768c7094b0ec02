"""Sinks: where dead letters, destination records and spilled events go.

A sink is any object with ``async def send(self, message: Message) -> None``. eventflow
calls ``send`` once per message and treats an exception as a failed send, which it
retries with backoff (see :class:`eventflow.App`'s ``sink_timeout``), except
:class:`SinkRejected`, which says retrying cannot help. A sink that is
also an async context manager is entered when the app starts and exited when it stops,
so it can open and close connections there (the AWS sinks do).

The in-memory :class:`MemorySink` is what tests and docs use; :class:`JsonlSink`
appends one JSON line per message to a local file, the embedded default for dead
letters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import anyio

from ._errors import EventflowError

__all__ = ("JsonlSink", "MemorySink", "Message", "Sink", "SinkRejected")


@dataclass(frozen=True, slots=True)
class Message:
    """One message handed to a sink.

    Attributes:
        body: The message body: the event payload as JSON for a dead letter or a spilled
            event, the invocation record as JSON for a destination.
        attributes: String attributes, such as ``RequestID``, ``ErrorCode`` and
            ``ErrorMessage`` on a dead letter (Lambda's DLQ message attributes).
    """

    body: str
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class SinkRejected(EventflowError):
    """Raised by a sink for a message that can never be sent (too large for the target, say).

    eventflow does not retry it: the message is counted as a dead-letter or destination
    error at once and logged at error level with its whole body.
    """


@runtime_checkable
class Sink(Protocol):
    """Receives messages. ``send`` raises on failure; eventflow retries it."""

    async def send(self, message: Message) -> None: ...


class MemorySink:
    """Keeps every message in :attr:`messages`, in order. For tests and examples."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        return f"<MemorySink {len(self.messages)} messages>"


class JsonlSink:
    """Appends one JSON line per message, ``{"body": ..., "attributes": {...}}``, to a file.

    Writes happen in a worker thread, one at a time, each flushed and fsynced
    (``fsync=False`` to skip the fsync), so a line that was sent survives a crash.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._lock = anyio.Lock()

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())

    async def send(self, message: Message) -> None:
        line = json.dumps(
            {"body": message.body, "attributes": dict(message.attributes)}, ensure_ascii=False
        )
        async with self._lock:
            await anyio.to_thread.run_sync(self._append, line + "\n")

    def read(self) -> list[Message]:
        """Every message in the file so far (blocking; for tests and tools)."""
        if not self.path.exists():
            return []
        out: list[Message] = []
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    out.append(Message(d["body"], MappingProxyType(dict(d["attributes"]))))
        return out

    def __repr__(self) -> str:
        return f"JsonlSink({str(self.path)!r})"

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
from pathlib import Path
from types import MappingProxyType

import anyio

from ._contracts import Message, Sink, SinkRejected
from ._file_lock import locked

__all__ = ("JsonlSink", "MemorySink", "Message", "Sink", "SinkRejected")


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
    (``fsync=False`` to skip the fsync), so a line that was sent survives a crash. Each
    append holds an exclusive ``flock`` on the file, which ``eventflow redrive`` takes too
    when it rewrites the file: processes may append while a redrive runs.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._lock = anyio.Lock()

    def _append(self, line: str) -> None:
        # locked: eventflow redrive may be renaming a rewritten file over the path
        with locked(self.path, "a", encoding="utf-8") as f:
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

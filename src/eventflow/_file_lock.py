"""A file opened under an exclusive lock, and still the file at its path once locked.

A JSONL dead-letter file has appenders (``JsonlSink``, in any process) and a rewriter
(``eventflow redrive``, which writes a new file and renames it over the path). An appender
that opened the old file just before the rename would write into a file no path names any
more: its line would be lost. So both sides lock (``flock``) the file they opened, and an
appender that finds, once it holds the lock, that the path now names another file opens the
path again. The rewriter renames while it holds the lock on the old file.

Where ``fcntl`` does not exist (Windows), or the file system has no ``flock``, the file is
opened without a lock.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ("locked",)

# what flock() raises on a file system that has no locks
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})


@contextmanager
def locked(path: Path, mode: str, **kwargs: Any) -> Iterator[IO[Any]]:
    """``path`` opened with ``mode`` (``open()``'s arguments), held under an exclusive lock
    until the block ends; the file is the one ``path`` names while the lock is held."""
    while True:
        f = path.open(mode, **kwargs)
        try:
            if fcntl is None:
                break
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    raise
                break  # a file system without flock: as before, unlocked
            mine = os.fstat(f.fileno())
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None  # renamed away and not replaced: open (create) the path again
            if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
                break
        except BaseException:
            f.close()
            raise
        f.close()  # the path names another file now: lock that one
    try:
        yield f
    finally:
        f.close()  # closing releases the lock

"""Request IDs: UUID-shaped, unique across the blocks they are made in, and re-drawn after fork."""

from __future__ import annotations

import os
import re
import sys
import warnings

import pytest

from eventflow._ids import REQUEST_IDS, new_request_id

UUID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_ids_are_uuid_shaped_and_unique_across_blocks() -> None:
    ids = [new_request_id() for _ in range(700)] + [next(REQUEST_IDS) for _ in range(700)]
    assert len(set(ids)) == len(ids)
    assert all(UUID_SHAPE.fullmatch(i) for i in ids)
    # made 256 at a time: consecutive IDs share the process prefix
    assert len({i[:24] for i in ids}) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")
def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    new_request_id()  # the parent is in the middle of a block
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: its next IDs, then exit at once
        os.write(write, " ".join(new_request_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    assert status == 0
    parent = [new_request_id() for _ in range(300)]
    assert len(child) == 3
    assert not set(child) & set(parent)
    assert child[0][:24] != parent[0][:24]

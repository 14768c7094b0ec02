"""GroupCommit's one-statement batches: a batch its ``single`` hook writes whole commits in
one statement outside BEGIN; an operation that cannot be written still fails alone."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from eventflow._sqlite_commit import GroupCommit


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")


def _apply(conn: sqlite3.Connection, ops: Sequence[tuple[Any, ...]]) -> list[Any]:
    conn.executemany("INSERT INTO t (v) VALUES (?)", [op[1:] for op in ops])
    return [None] * len(ops)


def _single(ops: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    statement = "INSERT INTO t (v) VALUES " + ",".join(["(?)"] * len(ops))
    return statement, [op[1] for op in ops]


async def _burst(db: GroupCommit, values: list[str]) -> list[BaseException | None]:
    outcomes: list[BaseException | None] = [None] * len(values)

    async def write(i: int) -> None:
        try:
            await db.submit(("put", values[i]))
        except OSError as exc:
            outcomes[i] = exc

    async with anyio.create_task_group() as tg:
        for i in range(len(values)):
            tg.start_soon(write, i)
    return outcomes


def _stored(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [v for (v,) in conn.execute("SELECT v FROM t ORDER BY id")]


async def test_a_batch_the_hook_writes_whole_is_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    statements: list[int] = []

    def single(ops: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
        statements.append(len(ops))
        return _single(ops)

    db = GroupCommit(path, setup=_setup, apply=_apply, single=single, what="The test file")
    try:
        outcomes = await _burst(db, [f"v{i}" for i in range(50)])
    finally:
        await db.aclose()
    assert outcomes == [None] * 50
    assert statements == [50] and (db.commits, db.rows) == (1, 50)
    assert _stored(path) == [f"v{i}" for i in range(50)]


async def test_an_operation_that_cannot_be_written_fails_alone_in_a_one_statement_batch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "g.db"
    db = GroupCommit(path, setup=_setup, apply=_apply, single=_single, what="The test file")
    values = [f"v{i}" for i in range(30)]
    values[7] = "\ud800"  # UTF-8 cannot encode a lone surrogate: binding it fails
    try:
        outcomes = await _burst(db, values)
    finally:
        await db.aclose()
    failed = [i for i, o in enumerate(outcomes) if o is not None]
    assert failed == [7]
    assert "only this operation fails" in str(outcomes[7])
    assert _stored(path) == values[:7] + values[8:]
    assert (db.commits, db.rows) == (1, 29)

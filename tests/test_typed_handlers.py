"""Decorated handlers keep their function's signature for type checkers (``Handler[P, R]``),
so that unit tests calling them directly are checked: mypy run on a snippet, as users would."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SNIPPET = """
from typing import Any

import eventflow

app = eventflow.App()


@eventflow.handler
async def bare(event: dict[str, Any], context: eventflow.Context) -> int:
    return 1


@eventflow.handler(max_retries=0)
def with_options(event: dict[str, Any], context: object) -> str:
    return "ok"


@app.handler
async def on_app(event: dict[str, Any], context: object) -> bool:
    return True


async def unit_test(context: eventflow.Context) -> None:
    reveal_type(await bare({"k": 1}, context))
    reveal_type(with_options({}, None))
    reveal_type(await on_app({}, None))
    with_options("not a dict", None)  # wrong: the event is a dict
    with_options({})  # wrong: context missing
    handler: eventflow.Handler = bare  # a bare Handler still accepts any handler
    print(handler.name)
"""


def test_decorated_handlers_keep_their_signature(tmp_path: Path) -> None:
    path = tmp_path / "user_code.py"
    path.write_text(textwrap.dedent(SNIPPET))
    out, _, status = api.run(["--strict", "--no-incremental", str(path)])
    assert status == 1, out
    lines = out.splitlines()
    assert any('Revealed type is "int"' in line for line in lines), out
    assert any('Revealed type is "str"' in line for line in lines), out
    assert any('Revealed type is "bool"' in line for line in lines), out
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 2, out
    assert 'Argument 1 to "__call__" of "Handler" has incompatible type "str"' in errors[0]
    assert 'Missing positional argument "context"' in errors[1]

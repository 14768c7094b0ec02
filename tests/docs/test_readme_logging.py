"""The README's production logging block runs as written, and is what the benchmark measures."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import structlog

ROOT = Path(__file__).resolve().parents[2]


def _production_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("For production, filter below warning", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's production logging block is gone"
    return match.group(1)


def _shape(processors: list[object]) -> list[str]:
    """Each processor by what it is (a function's name, else its class's), with arguments
    where they change the output."""
    shape = []
    for p in processors:
        name = getattr(p, "__qualname__", None) or type(p).__qualname__
        if isinstance(p, structlog.processors.TimeStamper):
            name += f"({p.fmt!r}, utc={p.utc})"
        if isinstance(p, structlog.processors.ExceptionRenderer):
            name += f"({p.format_exception!r})"
        shape.append(name)
    return shape


@pytest.mark.usefixtures("restore_structlog")
def test_the_production_block_configures_what_failure_path_measures() -> None:
    exec(compile(_production_block(), "README.md", "exec"), {})  # the docs' code, as written
    readme = structlog.get_config()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import failure_path
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    failure_path.configure_logging("warning")
    bench = structlog.get_config()
    assert _shape(readme["processors"]) == _shape(bench["processors"])
    assert readme["cache_logger_on_first_use"] and bench["cache_logger_on_first_use"]
    assert readme["wrapper_class"] is bench["wrapper_class"]  # the same level's class


@pytest.mark.usefixtures("restore_structlog")
def test_the_production_block_logs_a_failure_as_a_json_line_with_its_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exec(compile(_production_block(), "README.md", "exec"), {})  # the docs' code, as written
    log = structlog.get_logger()
    log.info("attempt.succeeded")  # filtered away
    try:
        raise ConnectionError("the downstream service is unavailable")
    except ConnectionError as exc:
        log.error("attempt.failed", exc_info=exc)
    out = capsys.readouterr().out
    assert "attempt.succeeded" not in out
    assert '"event": "attempt.failed"' in out
    assert "Traceback (most recent call last):" in out
    assert "ConnectionError: the downstream service is unavailable" in out

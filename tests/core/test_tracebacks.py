"""eventflow.logs' traceback formatting: the standard library's text, each stack formatted once."""

from __future__ import annotations

import io
import sys
import threading
import traceback
from collections.abc import Callable
from functools import partial

import pytest
import structlog

from eventflow.logs import (
    TracebackFormatter,
    TracebackStats,
    format_exc_info,
    plain_traceback,
    tracebacks,
)


class _Custom(Exception):
    """An exception from this module: its printed type is module-qualified."""


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


def _deep(n: int) -> None:
    if n == 0:
        raise ValueError(f"bottom {n}")
    _deep(n - 1)  # the same line many times: printed as "[Previous line repeated N more times]"


def _multiline() -> None:
    values = {"a": 1}
    print(
        values["b"],
        file=io.StringIO(),
    )


def _caught(raiser: Callable[[], object]) -> BaseException:
    try:
        raiser()
    except BaseException as exc:
        return exc
    raise AssertionError("the raiser did not raise")


def _plain() -> None:
    raise ValueError("plain")


def _with_cause() -> None:
    try:
        {"present": 1}["missing"]
    except KeyError as exc:
        raise _Custom("wrapped") from exc


def _with_context() -> None:
    try:
        1 / 0  # noqa: B018 - the first error
    except ZeroDivisionError:
        raise RuntimeError("while handling")  # noqa: B904 - the implicit context is the case


def _suppressed() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        raise RuntimeError("suppressed") from None


def _cause_and_context() -> None:
    try:
        _with_context()
    except RuntimeError as exc:
        raise LookupError("outer") from exc


def _cycle() -> None:
    a = ValueError("a")
    b = ValueError("b")
    a.__context__ = b
    b.__context__ = a
    raise a


def _notes() -> None:
    exc = ValueError("with notes")
    exc.add_note("first note")
    exc.add_note("second\nline")
    raise exc


def _syntax() -> None:
    compile("x = = 1", "<generated>", "exec")


def _bad_str() -> None:
    raise _BadStr()


def _empty_message() -> None:
    raise ValueError()


def _group() -> None:
    raise ExceptionGroup("many", [ValueError("one"), TypeError("two")])


def _cause_is_group() -> None:
    try:
        _group()
    except ExceptionGroup as exc:
        raise RuntimeError("after a group") from exc


def _lambda_in_comprehension() -> None:
    fns = [lambda: 1 / 0 for _ in range(1)]
    fns[0]()


SHAPES: dict[str, Callable[[], object]] = {
    "plain": _plain,
    "cause": _with_cause,
    "context": _with_context,
    "suppressed context": _suppressed,
    "cause and context": _cause_and_context,
    "context cycle": _cycle,
    "notes": _notes,
    "syntax error": _syntax,
    "str raises": _bad_str,
    "empty message": _empty_message,
    "recursion": lambda: _deep(40),
    "expression over lines": _multiline,
    "lambda": _lambda_in_comprehension,
    "group": _group,
    "group as cause": _cause_is_group,
    "keyboard interrupt": lambda: (_ for _ in ()).throw(KeyboardInterrupt()),
}


@pytest.fixture(params=sorted(SHAPES))
def exc(request: pytest.FixtureRequest) -> BaseException:
    return _caught(SHAPES[request.param])


def test_the_standard_librarys_text_byte_for_byte(exc: BaseException) -> None:
    formatter = TracebackFormatter()
    expected = "".join(traceback.format_exception(exc))
    assert formatter.format_exception(exc) == expected
    assert formatter.format_exception(exc) == expected  # formatted again, from the kept stacks


def test_the_same_site_with_another_message_keeps_its_own_message() -> None:
    formatter = TracebackFormatter()

    def fail(n: int) -> None:
        raise ConnectionError(f"attempt {n} refused")

    first, second = _caught(partial(fail, 1)), _caught(partial(fail, 2))
    assert formatter.format_exception(first).endswith("ConnectionError: attempt 1 refused\n")
    assert formatter.format_exception(second) == "".join(traceback.format_exception(second))
    assert "attempt 2 refused" in formatter.format_exception(second)
    stats = formatter.stats()
    assert (stats.misses, stats.hits) == (1, 2)


def test_each_failure_site_is_formatted_once() -> None:
    formatter = TracebackFormatter()
    sites = [_caught(_plain) for _ in range(5)] + [_caught(_with_cause) for _ in range(5)]
    for exc in sites:
        formatter.format_exception(exc)
    stats = formatter.stats()
    # _plain: one stack; _with_cause: its own stack and its cause's
    assert stats == TracebackStats(hits=12, misses=3, fallbacks=0, size=3, maxsize=1024)


def test_groups_and_a_traceback_limit_are_left_to_the_standard_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    formatter = TracebackFormatter()
    group = _caught(_group)
    assert formatter.format_exception(group) == "".join(traceback.format_exception(group))
    plain = _caught(lambda: _deep(3))
    monkeypatch.setattr(sys, "tracebacklimit", 2, raising=False)
    assert formatter.format_exception(plain) == "".join(traceback.format_exception(plain))
    assert formatter.stats().fallbacks == 2
    assert formatter.stats().size == 0


def test_it_keeps_at_most_maxsize_stacks_dropping_the_oldest() -> None:
    formatter = TracebackFormatter(maxsize=2)
    plain, again, deep = _caught(_plain), _caught(_plain), _caught(lambda: _deep(2))
    other = _caught(_empty_message)
    for exc in (plain, deep, other):
        formatter.format_exception(exc)
    assert formatter.stats().size == 2
    formatter.format_exception(again)  # the plain site was the oldest: formatted again
    assert formatter.stats().misses == 4
    assert formatter.format_exception(again) == "".join(traceback.format_exception(again))


def test_maxsize_below_one_is_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match=r"keeps no stack: give 1 or more"):
        TracebackFormatter(maxsize=0)


def test_an_exc_info_tuple_uses_its_own_traceback() -> None:
    formatter = TracebackFormatter()
    exc = _caught(lambda: _deep(2))
    assert exc.__traceback__ is not None
    shorter = exc.__traceback__.tb_next
    expected = "".join(traceback.format_exception(type(exc), exc, shorter)).removesuffix("\n")
    assert formatter.exc_info((type(exc), exc, shorter)) == expected
    assert formatter.exc_info((None, None, None)) == "NoneType: None"


def test_the_structlog_processor_and_console_formatter_write_what_structlogs_do(
    exc: BaseException,
) -> None:
    ours = format_exc_info(None, "error", {"event": "x", "exc_info": exc})
    theirs = structlog.processors.format_exc_info(None, "error", {"event": "x", "exc_info": exc})
    assert ours == theirs
    info = (type(exc), exc, exc.__traceback__)
    ours_sio, theirs_sio = io.StringIO(), io.StringIO()
    plain_traceback(ours_sio, info)
    structlog.dev.plain_traceback(theirs_sio, info)
    assert ours_sio.getvalue() == theirs_sio.getvalue()


def test_a_console_renderer_with_it_renders_what_the_default_one_does() -> None:
    exc = _caught(_with_cause)
    entry = {"event": "attempt.failed", "request_id": "r-1", "exc_info": exc}
    ours = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=plain_traceback)
    theirs = structlog.dev.ConsoleRenderer(
        colors=False, exception_formatter=structlog.dev.plain_traceback
    )
    assert ours(None, "error", dict(entry)) == theirs(None, "error", dict(entry))


def test_the_shared_formatter_reports_reuse() -> None:
    before = tracebacks.stats()
    exc = _caught(_plain)
    for _ in range(3):
        format_exc_info(None, "error", {"event": "x", "exc_info": exc})
    after = tracebacks.stats()
    # >=: another thread of the process may format through the shared one meanwhile
    assert after.hits + after.misses - before.hits - before.misses >= 3
    assert after.hits - before.hits >= 2


def test_threads_share_a_formatter() -> None:
    formatter = TracebackFormatter(maxsize=4)
    excs = [_caught(partial(_deep, n)) for n in range(8)]
    expected = ["".join(traceback.format_exception(e)) for e in excs]
    wrong: list[int] = []

    def run() -> None:
        for _ in range(50):
            for i, e in enumerate(excs):
                if formatter.format_exception(e) != expected[i]:
                    wrong.append(i)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert formatter.stats().size <= 4


def test_a_failed_attempts_log_line_carries_the_same_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exc = _caught(_with_context)
    log = structlog.wrap_logger(
        structlog.PrintLogger(sys.stdout),
        processors=[format_exc_info, structlog.processors.JSONRenderer()],
    )
    log.error("attempt.failed", exc_info=exc)
    out = capsys.readouterr().out
    assert "During handling of the above exception" in out
    assert "RuntimeError: while handling" in out


@pytest.mark.usefixtures("restore_structlog")
@pytest.mark.parametrize("fmt", ["json", "console", "lambda"])
def test_the_command_lines_logging_formats_tracebacks_with_it(fmt: str) -> None:
    from eventflow._cli_common import configure_logging

    out = io.StringIO()
    configure_logging("info", fmt, stream=out)
    exc = _caught(_with_cause)
    before = tracebacks.stats()
    log = structlog.get_logger()
    log.error("attempt.failed", exc_info=exc)
    log.error("attempt.failed", exc_info=exc)
    after = tracebacks.stats()
    assert after.hits + after.misses - before.hits - before.misses >= 4  # two stacks, twice
    text = out.getvalue().replace("\\n", "\n").replace('\\"', '"')
    assert text.count("The above exception was the direct cause") == 2
    assert text.count("_Custom: wrapped") == 2


def test_an_exc_info_tuple_without_a_traceback_prints_none(exc: BaseException) -> None:
    formatter = TracebackFormatter()
    expected = "".join(traceback.format_exception(type(exc), exc, None)).removesuffix("\n")
    assert formatter.exc_info((type(exc), exc, None)) == expected

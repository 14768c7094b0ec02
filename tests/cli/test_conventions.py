"""What users expect of a command line (uvicorn, Celery, Dramatiq do the same): ``--version``,
an unknown option answered with the subcommand's own usage, quiet Ctrl-C (130), a start-up
failure as one line (1) with the traceback behind ``--log-level debug``, shell completion."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import eventflow
from cli_support import Cli

BROKEN_MODULE = """
import os

import eventflow

SETTING = os.environ["EVENTFLOW_TEST_MISSING_SETTING"]  # a service's settings, read at import
app = eventflow.App()
"""

IDLE_MODULE = """
import eventflow


@eventflow.handler
async def noop(event, context):
    return None


app = eventflow.App()
"""


def _module(tmp_path: Path, name: str, text: str) -> dict[str, str]:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    env.pop("EVENTFLOW_TEST_MISSING_SETTING", None)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"eventflow {eventflow.__version__}"


@pytest.mark.parametrize(
    "command",
    [("serve", "m:app"), ("worker", "m:app"), ("generate-event", "s3", "put"), ("demo",)],
    ids=" ".join,
)
def test_unknown_option_prints_the_subcommands_usage(cli: Cli, command: tuple[str, ...]) -> None:
    result = cli(*command, "--no-such-option")
    assert result.returncode == 2
    assert f"usage: eventflow {' '.join(c for c in command if ':' not in c)}" in result.stderr
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_startup_failure_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = _module(tmp_path, "broken_settings", BROKEN_MODULE)
    result = _run(["invoke", "broken_settings:app", "h"], env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "eventflow invoke: error: KeyError: 'EVENTFLOW_TEST_MISSING_SETTING'" in result.stderr
    assert "--log-level debug" in result.stderr


def test_startup_failure_shows_the_traceback_at_debug(tmp_path: Path) -> None:
    env = _module(tmp_path, "broken_settings", BROKEN_MODULE)
    result = _run(["invoke", "broken_settings:app", "h", "--log-level", "debug"], env)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'os.environ["EVENTFLOW_TEST_MISSING_SETTING"]' in result.stderr


def test_worker_with_nothing_to_consume_says_so_and_exits_2(tmp_path: Path) -> None:
    env = _module(tmp_path, "idle_app", IDLE_MODULE)
    result = _run(["worker", "idle_app:app"], env)
    assert result.returncode == 2
    assert "has no shared event queue and no sources" in result.stderr


def _interrupt_after(args: list[str], ready: str, *, on_stderr: bool = False) -> str:
    """Start ``eventflow ARGS``, wait for ``ready`` in its output, send SIGINT; return stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "eventflow", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watched = proc.stderr if on_stderr else proc.stdout
    assert watched is not None
    deadline = time.monotonic() + 60
    seen = ""
    while ready not in seen:
        line = watched.readline()
        assert line or proc.poll() is None, f"exited before {ready!r}: {seen}"
        seen += line
        assert time.monotonic() < deadline, f"{ready!r} never printed: {seen}"
    proc.send_signal(signal.SIGINT)
    try:
        # the app drains for at most its shutdown_timeout (30 s); a loaded machine adds more
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reap it and close its pipes: no warnings in later tests
    err = (seen if on_stderr else "") + err
    assert proc.returncode == 130, err
    return err


@pytest.mark.timeout(240)
def test_ctrl_c_on_serve_drains_quietly_with_130(free_port: int) -> None:
    err = _interrupt_after(
        ["serve", "examples.demo_lambda:app", "--port", str(free_port)], "serve.started"
    )
    assert "Traceback" not in err


@pytest.mark.timeout(240)
def test_ctrl_c_on_the_demo_ends_quietly_with_130(tmp_path: Path) -> None:
    # a demo long enough to be interrupted while its progress bar runs
    err = _interrupt_after(
        [
            "demo",
            "--events",
            "200000",
            "--retry-delays",
            "30,60",
            "--dead-letters",
            str(tmp_path / "dl.jsonl"),
        ],
        "/200000",  # the progress bar has started
        on_stderr=True,
    )
    assert "Traceback" not in err


def _complete(script: str, shell: str, words: list[str]) -> list[str]:
    """COMPREPLY for the cursor after ``words`` (the last word is the one being completed)."""
    array = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\nCOMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; _eventflow; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run([shell, "-c", program], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completion_knows_subcommands_options_and_choices(cli: Cli) -> None:
    script = cli("completion", "bash").stdout
    assert _complete(script, "bash", ["eventflow", "gen"]) == ["generate-event"]
    assert "--processes" in _complete(script, "bash", ["eventflow", "worker", "--"])
    assert _complete(script, "bash", ["eventflow", "generate-event", "s3", "d"]) == ["delete"]
    assert _complete(script, "bash", ["eventflow", "serve", "--log-level", "w"]) == ["warning"]
    # an option's choices are the subcommand's own: only serve and worker log as Lambda does
    assert _complete(script, "bash", ["eventflow", "serve", "--log-format", "l"]) == ["lambda"]
    assert _complete(script, "bash", ["eventflow", "invoke", "--log-format", "l"]) == []
    redrive = ["eventflow", "redrive", "app:app", "--"]
    assert {"--from-jsonl", "--from-sqs", "--handler", "--max", "--dry-run"} <= set(
        _complete(script, "bash", redrive)
    )


def test_zsh_completion_loads_in_zsh(cli: Cli) -> None:
    zsh = shutil.which("zsh")
    if zsh is None:
        if os.environ.get("CI"):
            pytest.fail("zsh is missing: .ci/run installs it so that this test runs in CI.")
        pytest.skip("zsh is not installed here (CI installs it).")
    script = cli("completion", "zsh").stdout
    result = subprocess.run(
        [zsh, "-f", "-c", f"{script}\nprint -r -- ${{+_comps[eventflow]}}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"  # the completion is registered for eventflow

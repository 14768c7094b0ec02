"""Every shell command in README.md and examples/README.md runs as written.

Each fenced ``bash`` block is run as one bash script (``set -euo pipefail``), in a temporary
copy of the files the commands read (README.md and examples/), with this virtual
environment's ``bin`` first on PATH (``eventflow``, the AWS CLI v1 that ``.[dev]``
installs, ``moto_server``, ``uvicorn``) and a clean environment: no AWS_* variable and an
empty HOME, so a block must set what it needs itself. What the test changes, and why:

* the ports the docs name (5000 moto, 9000 ``eventflow serve``, 8000 uvicorn) become free
  ones, so that runs beside other servers on the machine do not collide;
* ``moto_server -p 5000 &`` is the test's own moto server (started once, reset before
  each block);
* a long-running command (a server or a worker) must end in ``&`` in the docs; the test
  waits until a server answers on its port before the next command, checks at the end
  of the block that each such process is still running, then stops it;
* a command whose comment says "exit status N" must end with that status;
* the commands in EXEMPT are not run, each for the reason given there (checked to still
  be in the docs), and those in REPLACED run in the form given there;
* the "Wiring the AWS side" block is written for a real account: its bucket, topics and
  queues are created first in moto, which it reaches through the standard environment.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "examples/README.md")
BIN = Path(sys.executable).parent

SUITE = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/python -m pytest"
)
EXEMPT = {
    SUITE: "It runs the whole suite this test is part of, in the environment it runs in.",
    "pip install 'moto[server]' awscli": (
        "The '.[dev]' extra this test runs under installs both; the test installs nothing."
    ),
    "pip install -e '.[examples]'": (
        "The '.[dev]' extra this test runs under includes the examples extra's FastAPI."
    ),
}
REPLACED = {
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/eventflow demo": (
        "eventflow demo",
        "The venv and the install are the environment this test runs in; the demo is run.",
    ),
    "pip install 'moto[server]' && moto_server -p 5000 &": (
        ":",
        "The test's own moto server stands in for it (the install is the '.[dev]' extra).",
    ),
    "moto_server -p 5000 &": (":", "The test's own moto server stands in for it."),
}
# commands that do not return: each must be backgrounded with '&' in the docs
LONG_RUNNING = re.compile(
    r"(^|\s)(eventflow (serve|worker)|uvicorn|moto_server|python examples/s3_sqs_worker\.py)\s"
)
SERVER_PORT = (
    (re.compile(r"eventflow serve(?!.*--port)"), "9000"),
    (re.compile(r"--port (\d+)"), None),
)

PRELUDE = r"""
set -euo pipefail
__pids=()
__stop() {
    for pid in "${__pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${__pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap __stop EXIT
__wait_port() {  # a server's port answers, bounded: 30 s
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { echo "the server for port $1 exited" >&2; return 1; }
        sleep 0.05
    done
    echo "nothing answered on port $1 within 30 s" >&2; return 1
}
__check_running() {
    for pid in "${__pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "background command $pid exited early" >&2; exit 1; }
    done
}
"""


@dataclass
class Block:
    doc: str
    line: int
    commands: list[str]  # logical commands: continuation lines joined

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _blocks() -> list[Block]:
    blocks: list[Block] = []
    for doc in DOCS:
        lines = (ROOT / doc).read_text().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == "```bash":
                start, body = i + 1, []
                i += 1
                while lines[i].strip() != "```":
                    body.append(lines[i])
                    i += 1
                commands: list[str] = []
                pending = ""
                for raw in body:
                    pending += raw
                    if pending.endswith("\\"):
                        pending = pending[:-1] + " "
                        continue
                    text = re.sub(r"\s+", " ", pending).strip()
                    pending = ""
                    if text and not text.startswith("#"):
                        commands.append(text)
                blocks.append(Block(doc, start, commands))
            i += 1
    return blocks


BLOCKS = _blocks()


def _strip_comment(command: str) -> str:
    """The command without a trailing ``# comment`` (a ``#`` outside quotes after a space)."""
    quote = ""
    for i, char in enumerate(command):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].strip()
    return command.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_exemptions_and_replacements_are_current() -> None:
    commands = {_strip_comment(c) for b in BLOCKS for c in b.commands}
    for command, reason in [*EXEMPT.items(), *((k, v[1]) for k, v in REPLACED.items())]:
        assert command in commands, f"{command!r} is no longer in the docs: drop its entry"
        assert reason.endswith(".") and len(reason) > 20, f"no reason given for {command!r}"


def test_every_bash_block_is_found() -> None:
    # the README's setup, wiring, moto and hands-on blocks; the examples' four
    assert [b.doc for b in BLOCKS].count("README.md") >= 4
    assert [b.doc for b in BLOCKS].count("examples/README.md") >= 4


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server of this module's own: it is reset before each block."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _script(block: Block, ports: dict[str, str]) -> str:
    out = [PRELUDE]
    for command in block.commands:
        bare = _strip_comment(command)
        if bare in EXEMPT:
            continue
        if bare in REPLACED:
            command = bare = REPLACED[bare][0]
        for documented, free in ports.items():
            command = re.sub(rf"\b127\.0\.0\.1:{documented}\b", f"127.0.0.1:{free}", command)
            command = re.sub(rf"(-p|--port) {documented}\b", rf"\1 {free}", command)
        background = bare.endswith("&") and not bare.endswith("&&")
        if LONG_RUNNING.search(bare + " ") and not background:
            pytest.fail(f"{block.id}: {bare!r} does not return: end it with '&' in the docs.")
        if "eventflow serve" in bare and "--port" not in bare:
            command = command.replace(
                "eventflow serve", f"eventflow serve --port {ports['9000']}", 1
            )
        expected = re.search(r"# .*exit status (\d+)", command)
        if expected is not None:  # the docs say it fails, and how: it must, that way
            out.append(f"set +e\n{command}\n__status=$?\nset -e")
            out.append(
                f'[ "$__status" -eq {expected[1]} ] || {{ echo "exit $__status, '
                f'not {expected[1]}: {bare}" >&2; exit 1; }}'
            )
        else:
            out.append(command)
        if background:
            out.append("__pids+=($!)")
            port: str | None = None
            if "eventflow serve" in bare:
                port = ports["9000"]
            elif (found := re.search(r"--port (\d+)", command)) is not None:
                port = found[1]
            if port is not None:
                out.append(f'__wait_port {port} "$!"')
    out.append("__check_running")
    return "\n".join(out) + "\n"


def _setup_wiring(moto_url: str) -> None:
    session = dict(
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    boto3.client("s3", **session).create_bucket(Bucket="photos")
    sqs = boto3.client("sqs", **session)
    for name in ("uploads", "orders-queue"):
        sqs.create_queue(QueueName=name)
    boto3.client("sns", **session).create_topic(Name="orders")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block_runs_as_written(block: Block, moto_url: str, tmp_path: Path) -> None:
    if all(_strip_comment(c) in EXEMPT for c in block.commands):
        pytest.skip(f"every command of {block.id} is exempt: {EXEMPT}")
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    work = tmp_path / "work"
    shutil.copytree(
        ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "README.md", work / "README.md")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    env.pop("VIRTUAL_ENV", None)
    moto_port = moto_url.rsplit(":", 1)[1]
    ports = {"5000": moto_port, "9000": str(_free_port()), "8000": str(_free_port())}
    if any(
        "# S3 -> SQS" in line
        for line in (ROOT / block.doc).read_text().splitlines()[block.line : block.line + 2]
    ):
        _setup_wiring(moto_url)
        env.update(
            AWS_ENDPOINT_URL=moto_url,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
        )
    script = _script(block, ports)
    result = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=170
    )
    assert result.returncode == 0, (
        f"{block.id} failed (exit {result.returncode}).\n--- script\n{script}\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}"
    )

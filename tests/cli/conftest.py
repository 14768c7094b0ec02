"""Fixtures for the command-line tests: run ``python -m eventflow`` from the project root."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from cli_support import ROOT, Cli


@pytest.fixture
def cli() -> Cli:
    """Run the installed command in a subprocess, from the root (so ``examples.*`` imports)."""

    def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "eventflow", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port

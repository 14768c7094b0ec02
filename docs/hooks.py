"""MkDocs hooks: pages take their text from the README's sections, and the CLI reference
is generated from eventflow's own argument parsers, so neither is written twice."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"
# README anchors and paths as the site names them
LINKS = {
    "](#scale-out-the-event-queue-on-sqs)": "](scale-out.md)",
    "](#lambda-style-logs)": "](concepts.md#lambda-style-logs)",
    "](docs/": "](",
}
_SECTION = re.compile(r"<!-- readme: (.+?) -->")


def _section(title: str) -> str:
    """The README section whose ``## `` heading starts with ``title``, heading included."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"## {title}")), None)
    if start is None:
        raise ValueError(f"README.md has no section '## {title}...'; fix the page's marker.")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    text = "\n".join(lines[start:end])
    for old, new in LINKS.items():
        text = text.replace(old, new)
    return text


def _parsers(
    parser: argparse.ArgumentParser, prefix: str
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(prefix, parser)]
    for action in parser._actions:  # argparse has no public walk of its subcommands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, f"{prefix} {name}")
    return found


def _cli_reference() -> str:
    from eventflow._cli import build_parser

    parts = []
    for name, parser in _parsers(build_parser(), "eventflow"):
        parser.prog = name
        parts.append(f"## `{name}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Fill ``<!-- readme: Title -->`` and ``<!-- cli-reference -->`` markers."""
    markdown = _SECTION.sub(lambda m: _section(m[1]), markdown)
    if "<!-- cli-reference -->" in markdown:
        markdown = markdown.replace("<!-- cli-reference -->", _cli_reference())
    return markdown

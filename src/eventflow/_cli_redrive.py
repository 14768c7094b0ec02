"""``eventflow redrive``: send dead letters back as new asynchronous invocations, once fixed.

The dead letters come from a JSONL file (``--from-jsonl``, the format of
eventflow.sinks.JsonlSink: one ``{"body": ..., "attributes": {...}}`` per line) or an SQS
queue (``--from-sqs``, Lambda's DLQ format; the region is the queue URL's, else the AWS
configuration's, and AWS_ENDPOINT_URL points it at a local emulator); either way a
dead letter is the event's payload as JSON in the body, with the attributes
``RequestID``, ``ErrorCode`` and ``ErrorMessage``. Each one becomes a new ``Event``
invocation with a new request ID, logged beside the original one (``redrive.invoked``).

Which handler: a dead letter, as Lambda writes it, does not name its function (the DLQ
belongs to one function). So a message's ``Handler`` attribute is used when it has one
(the messages eventflow spills at shutdown do); else ``--handler``; else the one handler
of the app whose ``dead_letter`` sink is this file or queue.

Left in place and reported, never invoked: a message that is not a dead letter of this
app (no ``RequestID`` attribute, a body or line that is not JSON, a handler the app does
not have, no handler found), and one dead-lettered again by this very run.

Where they run: in this process, in a private in-memory copy of the app (as in eventflow
invoke), whatever queue the app is configured with; its sources do not run. Handlers run
with their own options (retries, timeout, dead letter). The command waits for every
redriven event's final outcome, at most --wait seconds, then stops the app as a shutdown
does (it drains for up to the app's shutdown_timeout and spills what is left).

Removal: an SQS message is deleted once its new invocation was accepted. The JSONL file
is rewritten once the app has stopped, atomically (a temporary file renamed over it),
without the redriven lines and with any line appended meanwhile (an event that failed
again), under the exclusive ``flock`` that JsonlSink takes for each append: apps may keep
writing to the file while a redrive runs. If the command dies before, the file is
unchanged and its dead letters are redriven again next time (at least once).

--dry-run invokes nothing and removes nothing: it reports what would happen (SQS
messages are received, which counts in their receive count, and made visible again).

Output: a progress bar on stderr, a summary on stdout. Exit status 0, or 1 when an
invocation was refused, a message could not be removed, or a redriven event failed again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import structlog

from ._app import App
from ._cli_common import (
    CommandError,
    add_log_options,
    configure_logging,
    describe,
    load_app,
    private_copy,
)
from ._contracts import Outcome
from ._errors import EventflowError
from ._file_lock import locked
from ._progress import ProgressBar
from .sinks import JsonlSink

__all__ = ("add_parser",)

DEFAULT_WAIT = 900.0  # Lambda's longest timeout: enough for a retry at Lambda's delays
FINISH_TIMEOUT = 60.0  # seconds for the removals at the end (a rewrite, SQS calls)


@dataclass
class Letter:
    """One message of the source, as read; ``problem`` says why it is not a dead letter."""

    where: str
    body: str
    attributes: Mapping[str, str]
    token: Any
    problem: str | None = None


class Source(Protocol):
    """Where dead letters are read from and removed."""

    description: str

    async def count(self) -> int:
        """How many messages there are (for SQS an estimate); proves the source is there."""
        ...

    def letters(self, room: Callable[[], int]) -> AsyncIterator[Letter]:
        """The messages, while ``room()`` (how many more may be redriven) is above 0."""
        ...

    async def remove(self, letter: Letter) -> None:
        """Take ``letter`` out of the source: its new invocation was accepted."""
        ...

    async def leave(self, letter: Letter) -> None:
        """Keep ``letter`` where it is."""
        ...

    async def finish(self) -> None:
        """Apply what is still pending (the JSONL rewrite, SQS visibility), once."""
        ...


class JsonlSource:
    """A JSONL dead-letter file; removals are applied by one atomic rewrite in :meth:`finish`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)
        self._data = b""
        self._lines: list[bytes] = []
        self._removed: set[int] = set()

    def _read(self) -> None:
        try:
            self._data = self.path.read_bytes()
        except OSError as exc:
            raise CommandError(
                f"Cannot read the dead-letter file {str(self.path)!r}: {exc.strerror}; pass "
                "the file a JsonlSink writes to."
            ) from None
        self._lines = self._data.splitlines(keepends=True)

    async def count(self) -> int:
        await anyio.to_thread.run_sync(self._read)
        return sum(1 for line in self._lines if line.strip())

    async def letters(self, room: Callable[[], int]) -> AsyncIterator[Letter]:
        for index, raw in enumerate(self._lines):
            if not raw.strip():
                continue
            if not room():
                return
            yield _jsonl_letter(index, raw)

    async def remove(self, letter: Letter) -> None:
        self._removed.add(letter.token)

    async def leave(self, letter: Letter) -> None:
        """A line left in place stays as it is."""

    async def finish(self) -> None:
        if self._removed:
            await anyio.to_thread.run_sync(self._rewrite)

    def _rewrite(self) -> None:
        # under the appenders' lock (JsonlSink's), so no line lands in the file replaced
        with locked(self.path, "rb") as held:
            current = held.read()
            if not current.startswith(self._data):
                raise RedriveError(
                    f"The dead-letter file {str(self.path)!r} was rewritten by something "
                    f"else during the redrive, so its {len(self._removed)} redriven lines "
                    "were not removed; remove them by hand (their new request IDs are in "
                    "the log)."
                )
            kept = [line for i, line in enumerate(self._lines) if i not in self._removed]
            if kept and not kept[-1].endswith(b"\n"):
                kept[-1] += b"\n"
            # lines appended since the start (an event that failed again) are kept as they are
            content = b"".join(kept) + current[len(self._data) :]
            temporary = self.path.with_name(f".{self.path.name}.redrive-{os.getpid()}")
            try:
                with temporary.open("wb") as f:
                    f.write(content)
                    f.flush()
                    os.fsync(f.fileno())
                with contextlib.suppress(OSError):
                    os.chmod(temporary, os.fstat(held.fileno()).st_mode)
                os.replace(temporary, self.path)
            finally:
                temporary.unlink(missing_ok=True)


def _jsonl_letter(index: int, raw: bytes) -> Letter:
    where = f"line {index + 1}"
    try:
        entry = json.loads(raw)
    except ValueError:
        return Letter(where, "", {}, index, "the line is not JSON")
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("body"), str)
        or not isinstance(entry.get("attributes", {}), dict)
    ):
        return Letter(
            where, "", {}, index, 'the line is not a dead letter ({"body": ..., "attributes": ...})'
        )
    attributes = {str(k): str(v) for k, v in entry.get("attributes", {}).items()}
    return Letter(where, entry["body"], attributes, index)


class SQSSource:
    """An SQS dead-letter queue: a message is deleted as soon as its invoke was accepted."""

    def __init__(self, queue_url: str) -> None:
        from .aws._redrive import SQSDeadLetters

        self.queue_url = queue_url
        self.description = queue_url
        self._queue = SQSDeadLetters(queue_url)
        self._left: list[Any] = []
        self._seen: set[str] = set()
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> SQSSource:
        await self._stack.enter_async_context(self._queue)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def count(self) -> int:
        return await self._queue.approximate_count()

    async def letters(self, room: Callable[[], int]) -> AsyncIterator[Letter]:
        while (wanted := room()) > 0:
            batch = await self._queue.receive(wanted)
            if not batch:
                return  # a long poll found nothing: the queue has no visible message left
            for message in batch:
                if message.message_id in self._seen:
                    self._left.append(message)  # seen already: its visibility ran out
                    continue
                self._seen.add(message.message_id)
                if not room():
                    self._left.append(message)  # received beyond --max: put it back
                    continue
                where = f"message {message.message_id}"
                yield Letter(where, message.body, message.attributes, message)

    async def remove(self, letter: Letter) -> None:
        await self._queue.delete(letter.token)

    async def leave(self, letter: Letter) -> None:
        # kept hidden until the end: made visible now, it would be received again
        self._left.append(letter.token)

    async def finish(self) -> None:
        for message in self._left:
            await self._queue.release(message)


class RedriveError(EventflowError):
    """The redrive could not finish its removals."""


@dataclass
class Summary:
    """What the redrive did, for the summary and the exit status."""

    looked_at: int = 0
    redriven: int = 0
    skipped: int = 0
    left: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    new_ids: set[str] = field(default_factory=set)
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def default_handler(app: App, source: Source, chosen: str | None) -> str | None:
    """``--handler``, else the one handler whose dead-letter sink is ``source``, else None."""
    if chosen is not None:
        if chosen not in app.handlers:
            names = ", ".join(sorted(app.handlers)) or "none"
            raise CommandError(f"The app has no handler named {chosen!r}; it serves: {names}.")
        return chosen
    owners = [name for name, h in app.handlers.items() if _is_source(h.dead_letter, source)]
    return owners[0] if len(owners) == 1 else None


def _is_source(sink: object, source: Source) -> bool:
    if isinstance(source, JsonlSource):
        return isinstance(sink, JsonlSink) and sink.path.resolve() == source.path.resolve()
    return isinstance(source, SQSSource) and getattr(sink, "queue_url", None) == source.queue_url


def decide(
    app: App, letter: Letter, handler: str | None, new_ids: set[str]
) -> tuple[str, Any] | str:
    """The handler and payload to invoke for ``letter``, or why it is left in place."""
    if letter.problem is not None:
        return letter.problem
    request_id = letter.attributes.get("RequestID")
    if not request_id:
        return "it has no RequestID attribute, so it is not a dead letter"
    if request_id in new_ids:
        return f"it was dead-lettered again by this redrive (request ID {request_id})"
    name = letter.attributes.get("Handler") or handler
    if name is None:
        return (
            "it does not name its handler and the app has no single handler with this "
            "dead-letter source; pass --handler"
        )
    if name not in app.handlers:
        return f"the app has no handler named {name!r}"
    try:
        payload = json.loads(letter.body)
    except ValueError as exc:
        return f"its body is not JSON ({exc})"
    return name, payload


async def redrive(
    app: App, source: Source, handler: str | None, args: argparse.Namespace, summary: Summary
) -> None:
    """Invoke every dead letter of ``source`` (at most ``args.max``) and wait for them."""
    log = structlog.get_logger("eventflow.redrive")
    limit = args.max if args.max is not None else float("inf")
    total = await source.count()
    everything_settled = anyio.Event()
    done_submitting = False

    def settle(request_id: str, outcome: Outcome) -> None:
        summary.outcomes[request_id] = outcome
        if done_submitting and len(summary.outcomes) >= len(summary.new_ids):
            everything_settled.set()

    def room() -> int:
        left = limit - summary.redriven
        return int(min(left, 10)) if left > 0 else 0

    def status() -> str:
        return (
            f"redriven {summary.redriven}  left {len(summary.left)}  "
            f"failed {len(summary.failed)}  finished {len(summary.outcomes)}"
        )

    bar = ProgressBar(int(min(total, limit)), lambda: summary.looked_at, status, stream=sys.stderr)
    try:
        async with private_copy(app) as private, anyio.create_task_group() as tg:
            tg.start_soon(bar.run)
            async for letter in source.letters(room):
                summary.looked_at += 1
                decided = decide(private, letter, handler, summary.new_ids)
                if isinstance(decided, str):
                    summary.left.append((letter.where, decided))
                    await source.leave(letter)
                    continue
                name, payload = decided
                original = letter.attributes["RequestID"]
                if args.dry_run:
                    summary.redriven += 1
                    log.info("redrive.would_invoke", original_request_id=original, handler=name)
                    await source.leave(letter)
                    continue
                try:
                    accepted = await private.submit(name, payload, settle=settle)
                except EventflowError as exc:
                    summary.failed.append((letter.where, f"the invoke was refused: {exc}"))
                    await source.leave(letter)
                    continue
                summary.new_ids.add(accepted.request_id)
                log.info(
                    "redrive.invoked",
                    original_request_id=original,
                    request_id=accepted.request_id,
                    handler=name,
                )
                try:
                    await source.remove(letter)
                except Exception as exc:  # the invoke stands: say the message is still there
                    summary.failed.append(
                        (
                            letter.where,
                            f"invoked as {accepted.request_id}, but it could not be removed "
                            f"from the source ({type(exc).__name__}: {exc}); it stays there",
                        )
                    )
                    continue
                summary.redriven += 1
            if summary.redriven >= limit:  # stopped by --max: the rest was not looked at
                summary.skipped = max(0, total - summary.looked_at)
            done_submitting = True
            if len(summary.outcomes) >= len(summary.new_ids):
                everything_settled.set()
            with anyio.move_on_after(args.wait):
                await everything_settled.wait()
            tg.cancel_scope.cancel()
    finally:
        # accepted ones leave the source (and the rest is put back) after an error or Ctrl-C too
        with anyio.CancelScope(shield=True), anyio.move_on_after(FINISH_TIMEOUT):
            await source.finish()


def format_summary(summary: Summary, source: Source, args: argparse.Namespace) -> str:
    """The summary printed on stdout."""
    verb = "would be redriven" if args.dry_run else "redriven"
    lines = [
        f"eventflow redrive from {source.description}"
        + (" (dry run: nothing was invoked or removed)" if args.dry_run else ""),
        f"  {verb}: {summary.redriven}",
        f"  skipped (--max): {summary.skipped}",
        f"  left in place: {len(summary.left)}",
        f"  failed: {len(summary.failed)}",
    ]
    if not args.dry_run and summary.new_ids:
        counts = {o: 0 for o in Outcome}
        for outcome in summary.outcomes.values():
            counts[outcome] += 1
        running = len(summary.new_ids) - len(summary.outcomes)
        lines.append(
            f"  the redriven events: {counts[Outcome.SUCCEEDED]} succeeded, "
            f"{counts[Outcome.FAILED]} failed again, "
            f"{counts[Outcome.RELEASED] + counts[Outcome.UNDELIVERED]} not finished "
            f"(spilled), {running} still running when the command stopped waiting"
        )
    for title, items in (("left in place:", summary.left), ("failed:", summary.failed)):
        if items:
            lines.append(title)
            lines.extend(f"  {where}: {why}" for where, why in items)
    return "\n".join(lines)


async def _run(app: App, args: argparse.Namespace) -> tuple[Summary, Source]:
    summary = Summary()
    if args.from_jsonl is not None:
        jsonl = JsonlSource(args.from_jsonl)
        await redrive(app, jsonl, default_handler(app, jsonl, args.handler), args, summary)
        return summary, jsonl
    async with SQSSource(args.from_sqs) as sqs:
        await redrive(app, sqs, default_handler(app, sqs, args.handler), args, summary)
    return summary, sqs


def _cmd(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format, stream=sys.stderr)
    app, _ = load_app(args.app)
    summary, source = asyncio.run(_run(app, args))
    print(format_summary(summary, source, args))
    failed_again = any(o is Outcome.FAILED for o in summary.outcomes.values())
    return 1 if summary.failed or failed_again else 0


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redrive``."""
    p = sub.add_parser(
        "redrive",
        help="send dead letters back as new asynchronous invocations of an App",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "app", metavar="MODULE:APP", help="the eventflow.App, e.g. examples.demo_lambda:app"
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--from-jsonl", type=Path, metavar="PATH", help="a dead-letter file (JsonlSink's format)"
    )
    where.add_argument("--from-sqs", metavar="QUEUE_URL", help="an SQS dead-letter queue")
    p.add_argument(
        "--handler",
        metavar="NAME",
        help="the handler for dead letters that do not name one (default: the one handler "
        "whose dead_letter is this source)",
    )
    p.add_argument(
        "--max", type=_positive_int, metavar="N", help="redrive at most N dead letters (all)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="change nothing; say what would be redriven"
    )
    p.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for the redriven events to finish ({DEFAULT_WAIT:g})",
    )
    add_log_options(p)
    p.set_defaults(func=_cmd)

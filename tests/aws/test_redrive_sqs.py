"""``eventflow redrive --from-sqs``: an SQS dead-letter queue on moto, drained once fixed."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from redrive_support import dead_letter, effects, invoked, load_app, redrive


async def _visible(sqs: Any, url: str) -> int:
    attributes = await sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


async def test_redrive_from_sqs_dry_run_max_then_the_rest_leaving_a_foreign_message(
    aws: dict[str, Any],
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sqs = aws["sqs"]
    url = (await sqs.create_queue(QueueName=unique_name))["QueueUrl"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws["endpoint"])
    monkeypatch.setenv("EF_DLQ_URL", url)
    monkeypatch.setenv("EF_EFFECTS", str(tmp_path / "effects.log"))
    monkeypatch.setenv("EF_BUG", "1")
    # Given three events dead-lettered to SQS by a bug, and a message of someone else's
    originals = await dead_letter(load_app(tmp_path), 3)
    await sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert await _visible(sqs, url) == 4
    fixed = dict(os.environ, EF_BUG="0")

    async def run(*args: str) -> Any:
        command = functools.partial(
            redrive, tmp_path, fixed, "--from-sqs", url, "--log-format", "json", *args
        )
        return await anyio.to_thread.run_sync(command)

    # When a dry run looks at the queue, nothing is invoked and every message is back
    dry = await run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would be redriven: 3\n" in dry.stdout and "left in place: 1\n" in dry.stdout
    assert not effects(tmp_path / "effects.log") and await _visible(sqs, url) == 4
    # When --max 2 redrives two of them, after the bug is fixed
    first = await run("--max", "2")
    assert first.returncode == 0, first.stderr
    assert len(invoked(first)) == 2 and set(invoked(first)) <= set(originals)
    assert sum(effects(tmp_path / "effects.log").values()) == 2
    assert await _visible(sqs, url) == 2
    # and a run without it the rest
    rest = await run()
    assert rest.returncode == 0, rest.stderr
    mapping = invoked(first) | invoked(rest)
    assert sorted(mapping) == sorted(originals)
    # Then every dead letter ran exactly once, under the new request ID logged for it
    assert effects(tmp_path / "effects.log") == {
        (mapping[rid], str(n)): 1 for n, rid in enumerate(originals)
    }
    # and only the foreign message is left, reported with its reason
    left = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [m["Body"] for m in left.get("Messages", [])] == ["hello"]
    assert "it has no RequestID attribute" in rest.stdout

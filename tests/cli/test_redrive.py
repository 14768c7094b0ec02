"""``eventflow redrive --from-jsonl``: dead letters run again once the bug is fixed, and leave."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from redrive_support import dead_letter, effects, invoked, load_app, redrive


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("EF_DLQ_FILE", str(tmp_path / "dead.jsonl"))
    monkeypatch.setenv("EF_EFFECTS", str(tmp_path / "effects.log"))
    monkeypatch.setenv("EF_BUG", "1")
    fixed = dict(os.environ, EF_BUG="0")
    fixed.pop("EF_DLQ_URL", None)
    return fixed


async def test_every_dead_letter_runs_once_and_the_file_is_left_empty(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # Given three events dead-lettered by a bug
    originals = await dead_letter(load_app(tmp_path), 3)
    dead = tmp_path / "dead.jsonl"
    assert [
        json.loads(line)["attributes"]["RequestID"] for line in dead.read_text().splitlines()
    ] == originals
    assert not effects(tmp_path / "effects.log")
    # When the bug is fixed and they are redriven (the handler found by its dead-letter sink)
    result = redrive(tmp_path, env, "--from-jsonl", "dead.jsonl", "--log-format", "json")
    # Then each ran once, under a new request ID logged beside its original one
    assert result.returncode == 0, result.stderr
    mapping = invoked(result)
    assert sorted(mapping) == sorted(originals)
    assert effects(tmp_path / "effects.log") == {
        (mapping[rid], str(n)): 1 for n, rid in enumerate(originals)
    }
    # and the file holds nothing any more
    assert dead.read_text() == ""
    assert "  redriven: 3\n" in result.stdout, result.stdout


async def test_dry_run_then_max_then_the_rest_and_foreign_lines_stay(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # Given three dead letters, a line that is not JSON, a message with no RequestID and one
    # for a handler the app does not have
    originals = await dead_letter(load_app(tmp_path), 3)
    dead = tmp_path / "dead.jsonl"
    foreign = ["not json at all\n", json.dumps({"body": "{}", "attributes": {"Other": "x"}}) + "\n"]
    elsewhere = {"RequestID": "r-1", "Handler": "shipping"}  # another app's spilled event
    foreign.append(json.dumps({"body": "{}", "attributes": elsewhere}) + "\n")
    with dead.open("a") as f:
        f.writelines(foreign)
    before = dead.read_bytes()
    # When a dry run looks at them, it changes nothing and says what would happen
    dry = redrive(tmp_path, env, "--from-jsonl", str(dead), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dead.read_bytes() == before and not effects(tmp_path / "effects.log")
    assert "would be redriven: 3\n" in dry.stdout and "left in place: 3\n" in dry.stdout
    # When --max 2 redrives two of them
    first = redrive(
        tmp_path, env, "--from-jsonl", "dead.jsonl", "--max", "2", "--log-format", "json"
    )
    assert first.returncode == 0, first.stderr
    assert sorted(invoked(first)) == sorted(originals[:2])
    assert sum(effects(tmp_path / "effects.log").values()) == 2
    kept = dead.read_text().splitlines(keepends=True)
    assert [json.loads(line)["attributes"]["RequestID"] for line in kept[:1]] == originals[2:]
    assert kept[1:] == foreign
    # and the next run the last one
    rest = redrive(tmp_path, env, "--from-jsonl", "dead.jsonl", "--log-format", "json")
    assert rest.returncode == 0, rest.stderr
    assert sorted(invoked(rest)) == originals[2:]
    done = effects(tmp_path / "effects.log")
    assert sorted(int(n) for _, n in done) == [0, 1, 2] and set(done.values()) == {1}
    # Then only the foreign lines are left, and each was reported with its reason
    assert dead.read_text().splitlines(keepends=True) == foreign
    assert "line 2: the line is not JSON" in rest.stdout
    assert "line 3: it has no RequestID attribute" in rest.stdout
    assert "line 4: the app has no handler named 'shipping'" in rest.stdout


async def test_a_dead_letter_that_fails_again_stays_in_the_file_once(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # Given a dead letter, and the bug not fixed
    [original] = await dead_letter(load_app(tmp_path), 1)
    # When it is redriven
    result = redrive(
        tmp_path, dict(env, EF_BUG="1"), "--from-jsonl", "dead.jsonl", "--log-format", "json"
    )
    # Then it fails again (exit 1) and the file holds its new dead letter only
    assert result.returncode == 1, result.stderr
    new = invoked(result)[original]
    lines = (tmp_path / "dead.jsonl").read_text().splitlines()
    assert [json.loads(line)["attributes"]["RequestID"] for line in lines] == [new]
    assert "1 failed again" in result.stdout


async def test_a_copied_file_needs_handler_to_name_the_handler(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # Given dead letters copied to a file that no handler's dead_letter sink writes to
    originals = await dead_letter(load_app(tmp_path), 2)
    copy = tmp_path / "saved.jsonl"
    copy.write_bytes((tmp_path / "dead.jsonl").read_bytes())
    # When they are redriven without --handler, nothing says which handler: they stay
    unnamed = redrive(tmp_path, env, "--from-jsonl", "saved.jsonl")
    assert unnamed.returncode == 0, unnamed.stderr
    assert "left in place: 2\n" in unnamed.stdout and "pass --handler" in unnamed.stdout
    assert not effects(tmp_path / "effects.log")
    # Then --handler names it, and they run
    named = redrive(
        tmp_path, env, "--from-jsonl", "saved.jsonl", "--handler", "process", "--log-format", "json"
    )
    assert named.returncode == 0, named.stderr
    assert sorted(invoked(named)) == sorted(originals) and copy.read_text() == ""
    # and an unknown --handler is a usage error
    wrong = redrive(tmp_path, env, "--from-jsonl", "dead.jsonl", "--handler", "nope")
    assert wrong.returncode == 2 and "no handler named 'nope'" in wrong.stderr

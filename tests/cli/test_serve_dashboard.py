"""``eventflow serve``'s dashboard over a real socket: its JSON, its log lines, its page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from dashboard_support import get, invoke, poll, serving, settled


def test_the_stats_api_counts_per_handler_what_the_app_counts(
    tmp_path: Path, free_port: int
) -> None:
    with serving(tmp_path, free_port) as base:
        # Given 4 resizes (1 fails: dead letter) and 3 notifications (2 fail: retry in 90 s)
        resized = [invoke(base, "resize", {"key": f"k{i}", "fail": i == 2}) for i in range(4)]
        notified = [invoke(base, "notify", {"to": f"u{i}", "fail": i > 0}) for i in range(3)]
        # When they have run
        snap = poll(lambda: settled(base, 7), "7 events run")

    # Then each handler's counts are what happened, and add up to the app's
    rows = {h["name"]: h for h in snap["handlers"]}
    picked = ("received", "succeeded", "failed", "retrying", "dead_lettered", "errors", "running")
    assert {n: tuple(r[f] for f in picked) for n, r in rows.items()} == {
        "resize": (4, 3, 1, 0, 1, 1, 0),
        "notify": (3, 1, 0, 2, 0, 2, 0),
    }
    totals = snap["totals"]
    assert (totals["received"], totals["succeeded"], totals["failed"]) == (7, 4, 1)
    assert (totals["scheduled"], totals["dead_lettered"], totals["errors"]) == (2, 1, 3)
    assert snap["queue"] == {
        "queued": 0,
        "in_flight": 0,
        "scheduled": 2,
        "maxsize": 10_000,
        "concurrency": 1_000,
    }
    # the two retries are due 90 s after their failure: in the second minute from now
    retries = snap["retries"]
    assert sum(retries["buckets"]) == retries["watched"] == 2 and len(retries["buckets"]) == 10
    assert retries["buckets"][0] + retries["buckets"][1] == 2
    # and the latest failures, newest first, carry the request ID, attempt, type and message
    latest = snap["failures"]["latest"]
    assert {(f["request_id"], f["handler"], f["attempt"], f["error_type"]) for f in latest} == {
        (resized[2], "resize", 1, "ValueError"),
        (notified[1], "notify", 1, "ConnectionError"),
        (notified[2], "notify", 1, "ConnectionError"),
    }
    assert [f["time"] for f in latest] == sorted((f["time"] for f in latest), reverse=True)
    assert {f["error_message"] for f in latest} >= {"cannot resize k2", "SMTP refused u1"}
    assert snap["schema"] == 1 and snap["app"] == "shop"
    assert snap["logs"]["recorded"] >= snap["logs"]["size"] > 0


def test_a_failures_log_link_answers_its_log_lines(tmp_path: Path, free_port: int) -> None:
    with serving(tmp_path, free_port) as base:
        failing = invoke(base, "resize", {"key": "broken.png", "fail": True})
        invoke(base, "resize", {"key": "fine.png"})
        snap = poll(lambda: settled(base, 2), "2 events run")
        link = snap["failures"]["latest"][0]["logs"]
        answer = httpx.get(base + link, timeout=5)
        everything = httpx.get(f"{base}/_eventflow/api/logs?limit=1000", timeout=5).json()
        bad_limit = httpx.get(f"{base}/_eventflow/api/logs?limit=many", timeout=5)

    assert link == f"/_eventflow/api/logs?request_id={failing}"
    body = answer.json()
    assert answer.status_code == 200 and body["request_id"] == failing
    # the handler's own line, the engine's failure with its traceback, and the dead letter
    events = [line["event"] for line in body["lines"]]
    assert events[:3] == ["attempt.started", "resizing", "attempt.failed"]
    assert "event.dead_lettered" in events
    assert {line["request_id"] for line in body["lines"]} == {failing}
    failed = body["lines"][events.index("attempt.failed")]
    assert failed["error_type"] == "ValueError" and failed["attempt"] == 1
    assert "ValueError: cannot resize broken.png" in failed["exception"]
    assert body["lines"][1]["key"] == "broken.png"
    # without a request ID: every kept line, of both requests and of the server
    assert {line.get("request_id") for line in everything["lines"]} >= {failing, None}
    assert everything["statistics"]["size"] == len(everything["lines"])
    assert bad_limit.status_code == 400 and "limit" in bad_limit.json()["message"]


def test_the_page_is_served_with_its_own_script_only(tmp_path: Path, free_port: int) -> None:
    with serving(tmp_path, free_port) as base:
        page = httpx.get(f"{base}/_eventflow/", timeout=5)
        bare = httpx.get(f"{base}/_eventflow", timeout=5)
        head = httpx.head(f"{base}/_eventflow/api/stats", timeout=5)
        missing = httpx.get(f"{base}/_eventflow/nothing", timeout=5)
        post = httpx.post(f"{base}/_eventflow/api/stats", timeout=5)

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    # offline and on a phone: no external resource, a viewport, a poll of the relative API
    assert '<meta name="viewport"' in html and 'fetch("api/stats"' in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp
    assert (bare.status_code, bare.headers["location"]) == (308, "/_eventflow/")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert missing.status_code == 404 and "/_eventflow/" in missing.json()["message"]
    assert post.status_code == 405


@pytest.mark.parametrize(
    "options",
    [("--no-dashboard",), ("--host", "0.0.0.0", "--insecure")],
    ids=["no-dashboard", "not-loopback"],
)
def test_no_dashboard_leaves_the_path_to_the_lambda_api(
    tmp_path: Path, free_port: int, options: tuple[str, ...]
) -> None:
    with serving(tmp_path, free_port, *options) as base:
        answer = get(f"{base}/_eventflow/api/stats")
        health = get(f"{base}/healthz")
    assert answer is not None and answer.status_code == 404
    assert "x-amzn-errortype" in answer.headers  # the Lambda API's own answer
    assert health is not None and health.status_code == 200

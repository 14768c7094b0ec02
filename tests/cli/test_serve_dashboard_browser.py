"""The dashboard in a real headless browser: Debian's chromium, driven through chromedriver.

Outside CI the test skips when chromium or chromedriver is missing; under ``CI=true`` it
fails instead (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from dashboard_support import WAIT, invoke, poll, serving, settled, stats

# what the page shows, read in one script so that it is one moment's state
READ_PAGE = """
const totals = {};
for (const el of document.querySelectorAll('[id^="total-"]')) {
  totals[el.id.slice(6)] = el.textContent;
}
const handlers = {};
for (const tr of document.querySelectorAll("#handlers tbody tr")) {
  const row = {};
  for (const td of tr.cells) row[td.dataset.field] = td.textContent;
  handlers[tr.dataset.handler] = row;
}
return {totals, handlers, status: document.getElementById("status").dataset.state};
"""
READ_FAILURE = """
const tr = document.querySelector(`#failures tr[data-request-id="${arguments[0]}"]`);
if (!tr) return null;
const row = {};
for (const td of tr.cells) row[td.dataset.field] = td.innerText;
row.href = tr.querySelector("a").href;
return row;
"""
READ_CHART = """
let n = 0;
for (const el of document.querySelectorAll("#retry-chart .col .n")) {
  n += Number(el.textContent || 0);
}
return n;
"""
HANDLER_FIELDS = ("received", "succeeded", "failed", "retrying", "dead_lettered", "running")


def _find(name: str) -> str | None:
    for candidate in (name, f"/usr/lib/chromium/{name}"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromium, driver = _find("chromium"), _find("chromedriver")
    if chromium is None or driver is None:
        missing = "chromium" if chromium is None else "chromedriver"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is missing: .ci/run installs Debian's chromium and driver.")
        pytest.skip(f"{missing} is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        chrome.set_page_load_timeout(WAIT)
        chrome.set_script_timeout(WAIT)
        yield chrome
    finally:
        chrome.quit()


def _expected(snap: dict[str, Any]) -> dict[str, Any]:
    """What the page should show for this ``/api/stats`` answer."""
    t, q = snap["totals"], snap["queue"]
    totals = {
        "received": t["received"],
        "succeeded": t["succeeded"],
        "failed": t["failed"],
        "retrying": t["scheduled"],
        "dead-lettered": t["dead_lettered"],
        "queued": q["queued"],
        "in-flight": q["in_flight"],
    }
    handlers = {
        h["name"]: {"name": h["name"], **{f: str(h[f]) for f in HANDLER_FIELDS}}
        for h in snap["handlers"]
    }
    return {"totals": {k: f"{v:,}" for k, v in totals.items()}, "handlers": handlers}


def _shows(chrome: webdriver.Chrome, base: str) -> dict[str, Any] | None:
    """The page's state once it shows what the API answers now."""
    page = chrome.execute_script(READ_PAGE)
    expected = _expected(stats(base))
    handlers = {
        name: {k: row.get(k) for k in ("name", *HANDLER_FIELDS)}
        for name, row in page["handlers"].items()
    }
    same = page["totals"] == expected["totals"] and handlers == expected["handlers"]
    return page if same and page["status"] == "live" else None


def _failure_row(chrome: webdriver.Chrome, request_id: str) -> dict[str, str] | None:
    """The cells of the failure's row (and its link's address), read in one script: the
    page replaces its rows at every update, so an element found earlier may be gone."""
    row: dict[str, str] | None = chrome.execute_script(READ_FAILURE, request_id)
    return row


def _click(chrome: webdriver.Chrome, selector: str) -> bool:
    try:
        chrome.find_element(By.CSS_SELECTOR, selector).click()
    except StaleElementReferenceException:
        return False  # replaced by an update between finding and clicking: find it again
    return True


def test_the_page_shows_what_the_api_counts_follows_new_events_and_fits_a_phone(
    tmp_path: Path, free_port: int, browser: webdriver.Chrome
) -> None:
    with serving(tmp_path, free_port) as base:
        # Given resizes (one dead-lettered) and notifications (two waiting for a retry)
        resized = [invoke(base, "resize", {"key": f"k{i}", "fail": i == 2}) for i in range(4)]
        for i in range(3):
            invoke(base, "notify", {"to": f"u{i}", "fail": i > 0})
        poll(lambda: settled(base, 7), "7 events run")

        # When the dashboard is opened
        browser.get(f"{base}/_eventflow/")

        # Then it shows the counts the JSON API reports, per handler and in total
        page = poll(lambda: _shows(browser, base), "the page showing the API's counts")
        assert page["totals"]["received"] == "7" and page["totals"]["dead-lettered"] == "1"
        assert page["handlers"]["notify"]["retrying"] == "2"
        # and the failed resize, with its attempt, error and a link to its log lines
        row = poll(lambda: _failure_row(browser, resized[2]), "the failure's row")
        assert (row["handler"], row["attempt"], row["error_type"]) == ("resize", "1", "ValueError")
        assert row["error_message"] == "cannot resize k2" and row["request_id"] == resized[2]
        assert row["href"] == f"{base}/_eventflow/api/logs?request_id={resized[2]}"
        link = f'#failures a[data-request-id="{resized[2]}"]'
        poll(lambda: _click(browser, link), "a click on the failure's logs link")

        def log_text() -> str | None:
            text: str = browser.find_element(By.ID, "log-lines").text
            return text if "resizing" in text else None

        logs = poll(log_text, "the failure's log lines")
        assert "attempt.failed" in logs and "key=k2" in logs
        # its traceback folded under the exception's last line
        assert "ValueError: cannot resize k2" in logs and "Traceback" not in logs
        # and the chart has the two retries due in the next minutes
        assert browser.execute_script(READ_CHART) == 2

        # When more events run, the open page follows by itself
        more = invoke(base, "resize", {"key": "k9", "fail": True})
        invoke(base, "resize", {"key": "k10"})
        poll(lambda: settled(base, 9), "9 events run")
        page = poll(lambda: _shows(browser, base), "the page showing the new counts")
        assert page["totals"]["received"] == "9" and page["handlers"]["resize"]["failed"] == "2"
        assert poll(lambda: _failure_row(browser, more), "the new failure's row")

        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"dashboard screenshot: {shot}")

        # and on a phone's screen, the page is no wider than the screen (it scrolls down only)
        browser.set_window_size(390, 844)
        assert poll(
            lambda: browser.execute_script(
                "return innerWidth < 500 && document.documentElement.scrollWidth <= innerWidth"
            ),
            "the page fitting a phone's width",
        )
        shot = tmp_path / "dashboard-phone.png"
        assert browser.save_screenshot(str(shot))
        print(f"dashboard phone screenshot: {shot}")

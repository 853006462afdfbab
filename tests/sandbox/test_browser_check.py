"""The shadow stage's browser check on the real sandbox, with Debian's Chromium: its page loads and
the CSP reports they cause are counted by each service apart from users' (`source="browser"`), so
that the CSP signal's browser form (`Signal.in_browser`) reads only them; a canary whose page breaks its policy is seen
on every page the browser loaded there, stable at its usual rate."""

from __future__ import annotations

import shutil
import time

import pytest

from tasks.browser import start_browser_check, stop_browser_check
from tests.sandbox.helpers import counter, wait_until

pytestmark = [pytest.mark.sandbox,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")]
TRACKS = ("stable", "canary")


def _counts(sandbox) -> dict[str, dict[str, float]]:
    return {track: {
        "pages": counter(sandbox, track, "spark_http_requests_total", route="/app", source="browser"),
        "reports": counter(sandbox, track, "spark_csp_violations_total", source="browser"),
    } for track in TRACKS}


def test_the_browsers_pages_and_reports_are_counted_apart_and_a_broken_policy_shows_on_every_page(
        sandbox, canary_weight):
    sandbox.set_faults("canary", {"csp_inline_rate": 1})  # every canary page carries an inline script
    before = _counts(sandbox)
    check = start_browser_check.fn({track: sandbox.service_url(track) for track in TRACKS}, ("/app",), 240.0)
    assert check.problem is None, check.problem
    try:
        time.sleep(6)
    finally:
        report = stop_browser_check.fn(check)
    assert report.failed == {"stable": 0, "canary": 0}, report.first_failure
    assert all(report.loaded[track] >= 10 for track in TRACKS), report.loaded
    assert abs(report.loaded["stable"] - report.loaded["canary"]) <= 1  # the tracks take turns

    def settled() -> bool:  # a report is posted after its page's load event
        now = _counts(sandbox)
        return now["canary"]["reports"] - before["canary"]["reports"] >= report.loaded["canary"]
    assert wait_until(settled, timeout=10)
    seen = {track: {key: value - before[track][key] for key, value in counted.items()}
            for track, counted in _counts(sandbox).items()}
    assert {track: seen[track]["pages"] for track in TRACKS} == report.loaded
    # The canary's inline script on every page (and the third-party one on some); stable's only on
    # some. Each track against its own pages: the tracks' turns may differ by one page.
    assert seen["canary"]["reports"] >= seen["canary"]["pages"]
    assert seen["stable"]["reports"] < seen["stable"]["pages"]
    assert seen["stable"]["reports"] < seen["canary"]["reports"]


"""The Credentials page in headless Chromium (Debian's ``chromium``, driven by Playwright; no
browser download): log into Airflow, open "Credentials" from Airflow's navigation, see the three
credentials in their states, force a rotation that fails at TeamCity, reload: the row is red.

Screenshots go to the pytest temp dir (``credentials-*.png``). One browser, one page, one test:
the browser costs a few seconds to start and the Airflow UI a few more to load.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.ui.conftest import NAMES

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CHROMIUM = os.environ.get("ROTATOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 60_000
"""Airflow's UI is a large bundle: on 2 busy cores its first paint can take many seconds."""

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_the_page_shows_states_and_turns_red_after_a_failed_rotation(ui_stack, browser, tmp_path):
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{ui_stack.url}/")
    page.locator("input[name=username]").fill(ui_stack.admin[0])
    page.locator("input[name=password]").fill(ui_stack.admin[1])
    page.locator("input[type=submit], button[type=submit]").first.click()

    page.get_by_role("link", name="Credentials").click()
    # Airflow's UI may append the frame's own path to its URL: the route is what matters
    expect(page).to_have_url(re.compile(rf"^{ui_stack.url}/plugin/rotator-credentials\b"))
    frame = page.frame_locator("iframe")
    rows = frame.locator("tr[data-credential]")
    expect(rows).to_have_count(3, timeout=WAIT_MS)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.credential)") == list(NAMES)
    states = rows.evaluate_all("rs => rs.map(r => r.dataset.state)")
    assert states == ["green", "green", "amber"]
    page.screenshot(path=tmp_path / "credentials-before.png", full_page=True)

    ui_stack.sim.faults.fail_next(1, status=403, only="/tokens", method="POST")
    failed = ui_stack.rotator("rotate", "airflow-teamcity-token", "--force")
    assert failed.returncode == 1, failed.stdout + failed.stderr

    page.reload()
    token_row = frame.locator("tr[data-credential='airflow-teamcity-token']")
    expect(token_row).to_have_attribute("data-state", "red", timeout=WAIT_MS)
    expect(token_row.locator("td.state")).to_contain_text("last rotation failed at mint")
    expect(token_row.locator(".reason")).to_contain_text("403")
    page.screenshot(path=tmp_path / "credentials-after-failure.png", full_page=True)

    token_row.get_by_role("link", name="airflow-teamcity-token").click()
    events = frame.locator("#events tbody tr.red")
    expect(events.first).to_contain_text("mint")
    page.screenshot(path=tmp_path / "credentials-history.png", full_page=True)
    if os.environ.get("ROTATOR_README_SCREENSHOT"):  # refresh ops/docs/credentials-page.png
        shutil.copy(
            tmp_path / "credentials-after-failure.png", os.environ["ROTATOR_README_SCREENSHOT"]
        )
    page.close()

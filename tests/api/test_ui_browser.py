"""The web app in a real browser: Debian's chromium, driven by Selenium through chromium-driver,
against a real `triage serve` on a free loopback port and a seeded SQLite database.

Skips, saying why, where chromium, chromedriver or selenium is missing (`.ci/run` installs
chromium). Screenshots of each page go to ``$TRIAGE_UI_SCREENSHOTS`` when set, else the test's
temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_api_issues import seed
from tests.conftest import _free_port, auth
from triage import db, store
from triage.models import Issue, Scope

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[dev]' (selenium)")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver: apt-get install -y chromium "
    "chromium-driver",
)


TITLES = ["CSV export times out on large workspaces", "Summaries miss action items"]


def _dress(engine: Any, issue_ids: list[int]) -> None:
    """What a refresh would have written, so every section of the issue page has content."""
    with db.session_scope(engine) as session:
        for n, issue_id in enumerate(issue_ids):
            issue = session.get(Issue, issue_id)
            assert issue is not None
            issue.title = [
                "CSV export times out on large workspaces",
                "Summaries miss action items",
            ][n]
            issue.category_confidence = 0.72
            issue.quotes = ["The export spins for minutes and then nothing downloads."]
            issue.evidence = [
                {"reason": "'button', 'spinner' are interface words", "signal": "cues",
                 "category": "ui", "contribution": 0.41, "data": {}},
                {"reason": "close to 3 labelled ui examples", "signal": "examples",
                 "category": "ui", "contribution": 0.22, "data": {}},
            ]  # fmt: skip
            issue.priority_breakdown = {"reach": 0.2, "volume": 0.1, "trend": 0.05}
            issue.trend = {"this_week": 3, "trailing_mean": 1.0, "change": 2.0, "spiking": True}
            session.add(issue)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, list[int]]]:
    """(base URL, admin key, issue ids) of a `triage serve` subprocess."""
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    db.upgrade(url)
    engine = db.get_engine(url)
    ids, _ = seed(engine)
    _dress(engine, ids)
    with db.session_scope(engine) as session:
        _, secret = store.create_api_key(session, scope=Scope.admin, name="browser")
    port = _free_port()
    env = {**os.environ, "TRIAGE_DATABASE_URL": url, "TRIAGE_EMBEDDING_BACKEND": "fake"}
    triage = Path(sys.executable).parent / "triage"
    server = subprocess.Popen(
        [str(triage), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"triage serve did not start: {server.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.2)
        yield base, secret, ids
    finally:
        server.terminate()
        server.wait(10)


FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1360,1000",
)  # fmt: skip


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def test_ui_browser_sign_in_filter_open_and_recategorise(served, browser, tmp_path):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, secret, ids = served
    shots = Path(os.environ.get("TRIAGE_UI_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    def arrive(fragment: str) -> None:
        # A click returns before the next page has loaded.
        WebDriverWait(browser, 15).until(ec.url_contains(fragment))

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"{name}.png"))

    browser.get(f"{base}/ui/issues")
    assert "/ui/login" in browser.current_url  # not signed in yet
    shot("login")
    browser.find_element(By.ID, "key").send_keys(secret)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    arrive("/ui/issues")
    assert "CSV export times out" in browser.page_source
    shot("issues")

    browser.find_element(By.NAME, "q").send_keys("summaries")
    browser.find_element(By.XPATH, "//button[. = 'Apply']").click()
    arrive("q=summaries")
    shot("issues-filtered")
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1 and "Summaries miss action items" in rows[0].text

    rows[0].find_element(By.LINK_TEXT, "Summaries miss action items").click()
    arrive(f"/ui/issues/{ids[1]}")
    assert "Why this category" in browser.page_source
    shot("issue")

    form = browser.find_element(By.CSS_SELECTOR, f"form[action='/ui/issues/{ids[1]}/category']")
    Select(form.find_element(By.NAME, "category")).select_by_value("model")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    arrive("done=")
    assert "Saved the category" in browser.find_element(By.CSS_SELECTOR, ".notice.ok").text

    browser.find_elements(By.NAME, "unit_id")[0].click()
    browser.find_element(By.XPATH, "//button[contains(., 'Split selected')]").click()
    arrive("done=Split")
    assert "Split the selected statements" in browser.page_source
    shot("issue-corrected")

    api = httpx.get(f"{base}/v1/issues/{ids[1]}", headers=auth(secret)).json()
    assert api["category"] == "model" and api["size"] == 1

    for name in ("feedback", "digests", "keys"):
        browser.get(f"{base}/ui/{name}")
        assert browser.find_element(By.TAG_NAME, "h1").text
        shot(name)

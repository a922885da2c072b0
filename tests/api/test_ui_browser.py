"""The web app in a real browser: Debian's chromium, driven by Selenium through chromium-driver,
against a real `triage serve` on a free loopback port and a seeded SQLite database.

Skips, saying why, where chromium, chromedriver or selenium is missing (`.ci/run` installs
chromium). Screenshots of each page go to ``$TRIAGE_UI_SCREENSHOTS`` when set (`make
screenshots`: docs/screenshots/), else the test's temporary folder.

Every page is also checked with axe-core, pinned and installed from npm by `make test`
(``$TRIAGE_AXE_JS`` names another copy): a serious or critical violation fails the test. Without
axe-core the clicking still runs and the test then skips, saying why; in CI it fails instead.
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
from triage.embed import FakeEmbedder, text_hash, vector_to_bytes
from triage.models import Feedback, Issue, Scope, Unit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[dev]' (selenium)")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver: apt-get install -y chromium "
    "chromium-driver",
)


EMBEDDER = FakeEmbedder()
TITLES = ["CSV export times out on large workspaces", "Summaries miss action items"]
AXE_JS = Path(
    os.environ.get("TRIAGE_AXE_JS")
    or Path(sys.prefix) / "axe" / "node_modules" / "axe-core" / "axe.min.js"
)
# axe-core's impact levels that fail the test; "moderate" and "minor" are reported only.
BLOCKING = ("serious", "critical")
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))))
  .catch(e => done({error: String(e)}));
"""


def axe_violations(browser: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's violations on the page the browser shows, run inside it."""
    browser.execute_script(axe_source)
    assert browser.execute_script("return axe.version"), "axe-core did not load in the page"
    found = browser.execute_async_script(RUN_AXE)
    assert not isinstance(found, dict), f"axe-core failed: {found}"
    return list(found)


STATEMENTS = [
    [
        "The CSV export spins for minutes on our big workspace and then nothing downloads.",
        "Exporting the report to CSV times out every time since last week.",
        "Large workspaces cannot export at all, the download never starts.",
    ],
    [
        "The meeting summary left out every action item we agreed on.",
        "Summaries skip the follow-ups, so nobody knows who does what.",
    ],
]


def _dress(engine: Any, issue_ids: list[int], unit_ids: list[list[int]]) -> None:
    """What a refresh would have written, so every section of the issue page has content."""
    with db.session_scope(engine) as session:
        for n, issue_id in enumerate(issue_ids):
            # Real statements with their (fake) vectors, so a split is labelled at once.
            pairs = zip(STATEMENTS[n], EMBEDDER.embed(STATEMENTS[n]), strict=True)
            store.add_vectors(
                session,
                vectors={text_hash(t): vector_to_bytes(v) for t, v in pairs},
                model_id=EMBEDDER.model_id,
                dim=EMBEDDER.dim,
            )
            for unit_id, statement in zip(unit_ids[n], STATEMENTS[n], strict=True):
                unit = session.get(Unit, unit_id)
                assert unit is not None
                unit.text, unit.text_hash = statement, text_hash(statement)
                unit.lemmas = statement.lower().rstrip(".")
                ticket = session.get(Feedback, unit.feedback_id)
                assert ticket is not None
                ticket.text = ticket.redacted_text = statement
                session.add_all([unit, ticket])
            issue = session.get(Issue, issue_id)
            assert issue is not None
            issue.title = TITLES[n]
            issue.human_fields = ["title"]  # as if a person named it: relabelling keeps it
            issue.keywords = [["export", "csv", "workspace"], ["summary", "action item"]][n]
            issue.category_confidence = 0.72
            issue.quotes = STATEMENTS[n][:2]
            issue.evidence = [
                {"reason": "'button', 'spinner' are interface words", "signal": "cues",
                 "category": "ui", "contribution": 0.41, "data": {}},
                {"reason": "close to 3 labelled ui examples", "signal": "examples",
                 "category": "ui", "contribution": 0.22, "data": {}},
            ]  # fmt: skip
            issue.priority_breakdown = {"reach": 0.2, "volume": 0.1, "trend": 0.05}
            issue.trend = {"this_week": 3, "trailing_mean": 1.0, "change": 2.0, "spiking": True}
            session.add(issue)
        # A ticket the pipeline could not process, for the feedback page's retry button.
        session.add(
            Feedback(source="zendesk", external_id="48213", text="Ünïcode ☃ " * 3,
                     text_sha256="1" * 64, status="failed",
                     last_error="preprocess failed: ValueError: could not split the text")
        )  # fmt: skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, list[int]]]:
    """(base URL, admin key, issue ids) of a `triage serve` subprocess."""
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    db.upgrade(url)
    engine = db.get_engine(url)
    ids, units = seed(engine)
    _dress(engine, ids, units)
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

    axe_source = AXE_JS.read_text(encoding="utf-8") if AXE_JS.exists() else None
    browser.set_script_timeout(60)
    blocking: dict[str, list[dict[str, Any]]] = {}

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"{name}.png"))
        if axe_source is not None:
            found = axe_violations(browser, axe_source)
            if bad := [v for v in found if v["impact"] in BLOCKING]:
                blocking[name] = bad
            for v in found:  # shown with -s; moderate and minor ones do not fail the test
                print(f"axe {name}: {v['impact']} {v['id']}: {v['help']} {v['nodes']}")

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
    # The split-off issue is labelled and ranked at once, not left untitled until a refresh.
    new_id = api["lineage"][-1]["other_issue_id"]
    new = httpx.get(f"{base}/v1/issues/{new_id}", headers=auth(secret)).json()
    assert new["title"] and new["keywords"] and new["priority"] > 0 and new["category"]

    # Merge the other issue into this one, found by its title: no issue number to look up.
    browser.get(f"{base}/ui/issues/{ids[0]}")
    browser.find_element(By.NAME, "merge_q").send_keys("summaries")
    browser.find_element(By.XPATH, "//button[. = 'Find']").click()
    arrive("merge_q=summaries")
    choice = browser.find_element(By.CSS_SELECTOR, f"input[name=into][value='{ids[1]}']")
    assert choice.is_selected()
    shot("issue-merge-search")
    browser.find_element(By.XPATH, "//button[. = 'Merge into the selected issue']").click()
    arrive("done=Merged")
    merged = httpx.get(f"{base}/v1/issues/{ids[0]}", headers=auth(secret)).json()
    assert (merged["status"], merged["merged_into"]) == ("merged", ids[1])
    assert httpx.get(f"{base}/v1/issues/{ids[1]}", headers=auth(secret)).json()["size"] == 4

    # A failed ticket, retried from the feedback page.
    browser.get(f"{base}/ui/feedback?status=failed")
    shot("feedback")
    browser.find_element(By.XPATH, "//button[. = 'Retry']").click()
    arrive("done=")
    failed = httpx.get(f"{base}/v1/feedback?status=failed", headers=auth(secret)).json()
    assert failed["items"] == []

    for name in ("digests", "keys"):
        browser.get(f"{base}/ui/{name}")
        assert browser.find_element(By.TAG_NAME, "h1").text
        shot(name)

    assert not blocking, f"axe-core found serious or critical violations: {blocking}"
    if axe_source is None:
        message = f"axe-core is not installed at {AXE_JS}: `make test` installs it from npm"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message + "; the pages were clicked through but not checked")

"""report.html opened in the browser, as a person opens it: every section shows, nothing is fetched."""

from __future__ import annotations

from tests.browser.test_jupyterlab import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.runbook.test_report import SECTIONS, walkthrough_report

SCREENSHOT = ROOT / "test-artifacts" / "report.png"


def test_the_report_opens_in_the_browser_with_every_section_and_fetches_nothing(world, tmp_path):
    from playwright.sync_api import sync_playwright

    walkthrough_report(tmp_path / "run")
    page_file = tmp_path / "run" / "report.html"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            for anchor in SECTIONS:
                assert page.locator(f"h2#{anchor}").is_visible(), anchor
            picture = page.locator("#topology + svg")
            assert picture.is_visible() and picture.bounding_box()["width"] > 600
            assert "account 333333333333" in picture.text_content()
            durations = page.locator("h2#steps + style + table td:nth-child(3)").all_inner_texts()
            assert durations and all(text.endswith(" s") for text in durations)
        finally:
            browser.close()
    assert requests == [page_file.as_uri()], "the page loads nothing but itself"

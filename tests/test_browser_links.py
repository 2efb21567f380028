"""Links a teacher shares: each page's address opened as the very first request to a freshly started server
shows that page, with no "Page not found" dialog over it, and its buttons work (Streamlit's old-style
multipage detection, triggered by a folder named `pages/` beside app.py, used to answer the first request)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser_steps import SLOW, explaining, press_explain
from conftest import screenshot
from harness.live import LiveServer

PAGES = {
    "image": "Why did the image model say that?",
    "text": "Why did the text model say that?",
    "clip": "Why does this caption fit this photo?",
    "audit": "Audit a model on a labelled dataset",
}


@pytest.mark.parametrize("path", PAGES)
def test_a_shared_link_is_the_first_request_to_a_fresh_server(browser, path):
    server = LiveServer()  # fresh: no session has run st.navigation yet
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        page = context.new_page()
        page.goto(f"{server.url}/{path}")
        expect(page.get_by_role("heading", name=PAGES[path])).to_be_visible(timeout=SLOW)
        page.wait_for_timeout(2000)  # the old notice arrived with the page's first elements
        assert page.get_by_text("Page not found").count() == 0
        assert page.get_by_role("dialog").count() == 0
        if path == "image":  # the page answers, not only shows
            press_explain(page)
            explaining(page)
        else:
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Start here").click()
            expect(page.get_by_role("heading", name="See why a model predicts what it predicts")).to_be_visible(timeout=SLOW)
        screenshot(page, f"link-{path}")
        context.close()
    finally:
        server.stop()

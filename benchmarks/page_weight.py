"""What the pages send to the browser: bytes received over Streamlit's websocket for one Explain and for the
changes a student makes afterwards, measured in Debian's Chromium against a real server (production config,
offline, bundled models), one new browser session per page. Also the JSON size of each figure drawn.

- Images (the cat sample, the page's default methods: Grad-CAM, Integrated Gradients, faithfulness): Explain,
  then a move of the heatmap-opacity slider, then the switch to the side-by-side view.
- Text (the page's default sentence and methods): Explain.
- Image + text (the default photo and prompts): Explain.

The baseline that issue 13's "light pages" are measured against; every figure is a frame's worth of JSON
(Plotly's arrays may travel as base64), so the bytes are what a class's Wi-Fi carries.

    python benchmarks/page_weight.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.live import CHROMIUM_OPTIONS, LiveServer  # noqa: E402

TIMEOUT_MS = 300_000


class Received:
    """Bytes of every websocket frame the page received, counted from the last `start()`."""

    def __init__(self, page):
        self.total = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        self.total += len(payload if isinstance(payload, bytes) else payload.encode())

    def start(self) -> None:
        self.total = 0


def idle(page) -> None:
    """Wait until the script run the last action started has finished."""
    try:
        expect(page.get_by_test_id("stApp")).not_to_have_attribute("data-test-script-state", "notRunning", timeout=3_000)
    except AssertionError:  # the run may already be over
        pass
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # the last frames after the run's end


def figure_sizes(page) -> list[tuple[str, int]]:
    """(title, characters of JSON) of every Plotly figure on the page, as the browser holds it."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(p => [
        ((p.layout && p.layout.title && (p.layout.title.text || p.layout.title)) || '(untitled)')
            .toString().replace(/<br>/g, ' · ').replace(/<[^>]+>/g, '').slice(0, 60),
        JSON.stringify({data: p.data, layout: p.layout}).length])""")


def measure(page, received: Received, label: str, action) -> None:
    received.start()
    action()
    idle(page)
    print(f"  {label:<52} {received.total / 1024:9.1f} KB")


def open_page(page, link: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    expect(page.get_by_role("button", name="Explain", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    idle(page)


def explain(page) -> None:
    page.get_by_role("button", name="Explain", exact=True).click()


def image_page(page, received: Received) -> None:
    print("\nImages (cat sample, default methods)")
    open_page(page, "Images (ResNet)")
    measure(page, received, "Explain", lambda: explain(page))
    for title, size in figure_sizes(page):
        print(f"    figure: {title:<60} {size / 1024:9.1f} KB as JSON in the browser")
    slider = page.get_by_test_id("stSlider").filter(has_text="Heatmap opacity").get_by_role("slider")
    measure(page, received, "heatmap opacity moved one step", lambda: (slider.focus(), page.keyboard.press("ArrowRight")))
    expect(slider).to_have_value("0.65")  # the move happened
    measure(page, received, "view switched to side by side", lambda: page.get_by_text("Side by side", exact=True).click())
    expect(page.get_by_role("radio", name="Side by side")).to_be_checked()


def text_page(page, received: Received) -> None:
    print("\nText (default sentence and methods)")
    open_page(page, "Text (BERT)")
    measure(page, received, "Explain", lambda: explain(page))


def clip_page(page, received: Received) -> None:
    print("\nImage + text (default photo and prompts)")
    open_page(page, "Image + text (CLIP)")
    measure(page, received, "Explain", lambda: explain(page))


def main() -> None:
    server = LiveServer()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**CHROMIUM_OPTIONS)
            for run in (image_page, text_page, clip_page):
                context = browser.new_context(viewport={"width": 1400, "height": 2000})
                page = context.new_page()
                received = Received(page)
                page.goto(server.url)
                expect(page.get_by_role("link", name="Images (ResNet)").first).to_be_visible(timeout=TIMEOUT_MS)
                run(page, received)
                context.close()
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()

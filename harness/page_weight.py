"""What a page sends to the browser: bytes received over Streamlit's websocket, counted in Chromium
against a real server, for one Explain and for the changes a student makes after it.

Shared by `benchmarks/page_weight.py` (prints the table) and `tests/test_browser_weight.py` (holds the
budget). Every figure is a frame's worth of JSON (Plotly's arrays may travel as base64), so these bytes
are what a class's Wi-Fi carries.
"""

from __future__ import annotations

from contextlib import contextmanager

from playwright.sync_api import expect

TIMEOUT_MS = 300_000
# Measured with benchmarks/page_weight.py at 6b7fa22, before the light figures (KB per action).
BASELINE_KB = {"image Explain": 1504, "image opacity step": 1488, "image side by side": 1487,
               "text Explain": 152, "image + text Explain": 5318}


# The pictures the page's figures point at, as absolute URLs.
PICTURES = """() => [...document.querySelectorAll('.js-plotly-plot image')].map(i => i.getAttribute('href') || '')
    .filter(h => h.includes('/media/')).map(h => new URL(h, location.href).href)"""


class Received:
    """Bytes the page received since the last `start()`: every websocket frame (`total`) and the bodies of the
    pictures it fetched from the server's media files (`pictures`, the figures' photos and maps)."""

    def __init__(self, page):
        self.total = self.pictures = 0
        self.fetched: list[str] = []  # the pictures' URLs, in the order they arrived
        self.ever: set[str] = set()  # every picture URL fetched in this session
        self.log: list[list[str]] = []  # `fetched` of each action `kilobytes` weighed, in order
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("requestfinished", self._request)

    def _frame(self, payload) -> None:
        self.total += len(payload if isinstance(payload, bytes) else payload.encode())

    def _request(self, request) -> None:
        if "/media/" in request.url:
            self.pictures += request.sizes()["responseBodySize"]
            self.fetched.append(request.url)
            self.ever.add(request.url)

    def start(self) -> None:
        self.total = self.pictures = 0
        self.fetched = []


@contextmanager
def weighed_session(browser, url: str):
    """A new browser session on the home page, its websocket counted from the first frame: (page, received)."""
    context = browser.new_context(viewport={"width": 1400, "height": 2000})
    try:
        page = context.new_page()
        received = Received(page)  # before the page opens its websocket
        page.goto(url)
        expect(page.get_by_role("link", name="Images (ResNet)").first).to_be_visible(timeout=TIMEOUT_MS)
        yield page, received
    finally:
        context.close()


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


def kilobytes(page, received: Received, action) -> float:
    """KB received while `action` and the script run it starts go on: websocket and pictures."""
    received.start()
    action()
    idle(page)
    # Every picture the figures point at has arrived (the browser fetches them after drawing the figure).
    for _ in range(TIMEOUT_MS // 500):
        if set(page.evaluate(PICTURES)) <= received.ever:
            break
        page.wait_for_timeout(500)
    settled = -1
    while settled != received.total + received.pictures:  # pictures arrive after the run: wait for a quiet second
        settled = received.total + received.pictures
        page.wait_for_timeout(1000)
    received.log.append(list(received.fetched))
    return settled / 1024


def open_page(page, link: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    expect(page.get_by_role("button", name="Explain", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    idle(page)


def explain(page) -> None:
    page.get_by_role("button", name="Explain", exact=True).click()


def explain_all(page, figures: int) -> None:
    """Explain on the image page and wait for the whole request: its first maps come in a script run of their
    own, and the page may be idle between that run and the next (while the slower maps are computed)."""
    explain(page)
    expect(page.locator(".js-plotly-plot")).to_have_count(figures, timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("stProgress")).to_have_count(0, timeout=TIMEOUT_MS)


def image_page(page, received: Received) -> dict[str, float]:
    """The cat sample with the page's default methods (Grad-CAM, Integrated Gradients, faithfulness): Explain,
    a move of the heatmap-opacity slider, the switch to the side-by-side view."""
    open_page(page, "Images (ResNet)")
    # predictions, Grad-CAM, Integrated Gradients, the faithfulness curves
    sizes = {"image Explain": kilobytes(page, received, lambda: explain_all(page, 4))}
    slider = page.get_by_test_id("stSlider").filter(has_text="Heatmap opacity").get_by_role("slider")
    sizes["image opacity step"] = kilobytes(page, received, lambda: (slider.focus(), page.keyboard.press("ArrowRight")))
    expect(slider).to_have_value("0.65")  # the move happened
    sizes["image side by side"] = kilobytes(page, received, lambda: page.get_by_text("Side by side", exact=True).click())
    expect(page.get_by_role("radio", name="Side by side")).to_be_checked()
    return sizes


def text_page(page, received: Received) -> dict[str, float]:
    """The default sentence and methods: Explain."""
    open_page(page, "Text (BERT)")
    return {"text Explain": kilobytes(page, received, lambda: explain(page))}


def clip_page(page, received: Received) -> dict[str, float]:
    """The default photo and prompts: Explain."""
    open_page(page, "Image + text (CLIP)")
    return {"image + text Explain": kilobytes(page, received, lambda: explain(page))}

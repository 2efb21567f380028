"""Light pages in a real browser: what an Explain and a slider move send stays within a quarter of what it
was before the light figures, and the light figure looks like the full-resolution one and hovers raw values.

The byte counts come from harness/page_weight.py, the same flows `make weight` prints."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import screenshot
from explainers.figures.image import heatmap_figure
from explainers.tasks.image import ImageSettings, explain_image
from harness.page_weight import BASELINE_KB, clip_page, image_page, text_page, weighed_session
from ui.pictures import SHARP

pytestmark = pytest.mark.usefixtures("single_thread")
BUDGET_KB = {action: size / 4 for action, size in BASELINE_KB.items()}
BUDGET_KB["text Explain"] = BASELINE_KB["text Explain"] * 1.1  # already light: it must not regrow


def test_an_explain_and_a_slider_move_send_at_most_a_quarter_of_before(browser, live_server):
    sizes, pictures = {}, {}
    for run in (image_page, text_page, clip_page):
        with weighed_session(browser, live_server.url) as (page, received):
            names = run(page, received)
            sizes.update(names)
            pictures.update(zip(names, received.log))
            if run is image_page:  # the figures' pictures drawn a block of pixels per value, not blended
                style = page.evaluate("() => getComputedStyle(document.querySelector('.js-plotly-plot image')).imageRendering")
                assert style == "pixelated"
            screenshot(page, f"weight-{run.__name__}")
    over = {action: round(size) for action, size in sizes.items() if size > BUDGET_KB[action]}
    assert not over, f"KB over budget {BUDGET_KB}: {over}"
    assert set(sizes) == set(BASELINE_KB)
    # The photo once per result, a map once: two methods, the photo and two coloured maps; then nothing again.
    explain = pictures["image Explain"]
    assert sorted(url.rsplit(".", 1)[1] for url in explain) == ["jpg", "png", "png"], pictures
    assert pictures["image opacity step"] == pictures["image side by side"] == []
    assert pictures["text Explain"] == []


@pytest.fixture(scope="module")
def maps(bundled, chelsea):
    settings = ImageSettings(ig_steps=16, lime_samples=60)
    return explain_image(bundled, chelsea, ("gradcam", "integrated-gradients", "lime"), settings=settings).explanations


def drawn(page, figure) -> np.ndarray:
    figure.update_layout(width=760, height=560)
    page.set_content(figure.to_html(include_plotlyjs=True, full_html=True).replace("</head>", SHARP + "</head>"))
    page.wait_for_selector(".js-plotly-plot .main-svg")
    page.wait_for_timeout(500)  # the images decode
    return np.asarray(Image.open(io.BytesIO(page.locator(".js-plotly-plot").screenshot())).convert("RGB"), dtype=int)


def nearest_difference(full: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per screen pixel, the smallest colour difference to `seen` at that pixel or one of its 8 neighbours."""
    best = None
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            difference = np.abs(full - np.roll(seen, (dy, dx), axis=(0, 1))).max(axis=-1)
            best = difference if best is None else np.minimum(best, difference)
    return best


def test_the_light_figure_looks_like_the_full_one_and_hovers_raw_values(browser, maps):
    page = browser.new_page(viewport={"width": 800, "height": 600})
    try:
        for explanation in maps:
            for smoothed in (False, True) if explanation.method == "integrated-gradients" else (False,):
                light = heatmap_figure(explanation, 0.6, smoothed)
                full, seen = drawn(page, heatmap_figure(explanation, 0.6, smoothed, full=True)), drawn(page, light)
                difference = nearest_difference(full, seen)
                case = (explanation.method, smoothed, difference.mean())
                # The same colours: colour quantised to 256 levels and JPEG's photo, nothing an eye can tell.
                # (A picture's cells may start one screen pixel off a heatmap's: hence the nearest of 3 x 3.)
                assert difference.mean() < 2 and (difference > 24).mean() < 0.002, case
                box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
                page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
                hover = page.locator(".hovertext").first
                hover.wait_for(timeout=5_000)
                text = hover.text_content()
                assert "value" in text and ("block" in text) == (explanation.grid is None), text
        screenshot(page, "light-figure-lime")
    finally:
        page.close()

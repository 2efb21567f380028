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

pytestmark = pytest.mark.usefixtures("single_thread")
BUDGET_KB = {action: size / 4 for action, size in BASELINE_KB.items()}
BUDGET_KB["text Explain"] = BASELINE_KB["text Explain"] * 1.1  # already light: it must not regrow


def test_an_explain_and_a_slider_move_send_at_most_a_quarter_of_before(browser, live_server):
    sizes = {}
    for run in (image_page, text_page, clip_page):
        with weighed_session(browser, live_server.url) as (page, received):
            sizes.update(run(page, received))
            screenshot(page, f"weight-{run.__name__}")
    over = {action: round(size) for action, size in sizes.items() if size > BUDGET_KB[action]}
    assert not over, f"KB over budget {BUDGET_KB}: {over}"
    assert set(sizes) == set(BASELINE_KB)


@pytest.fixture(scope="module")
def maps(bundled, chelsea):
    settings = ImageSettings(ig_steps=16, lime_samples=60)
    return explain_image(bundled, chelsea, ("gradcam", "integrated-gradients", "lime"), settings=settings).explanations


def drawn(page, figure) -> np.ndarray:
    figure.update_layout(width=760, height=560)
    page.set_content(figure.to_html(include_plotlyjs=True, full_html=True))
    page.wait_for_selector(".js-plotly-plot .main-svg")
    page.wait_for_timeout(500)  # the images decode
    return np.asarray(Image.open(io.BytesIO(page.locator(".js-plotly-plot").screenshot())).convert("RGB"), dtype=int)


def test_the_light_figure_looks_like_the_full_one_and_hovers_raw_values(browser, maps):
    page = browser.new_page(viewport={"width": 800, "height": 600})
    try:
        for explanation in maps:
            for smoothed in (False, True) if explanation.method == "integrated-gradients" else (False,):
                light = heatmap_figure(explanation, 0.6, smoothed)
                full, seen = drawn(page, heatmap_figure(explanation, 0.6, smoothed, full=True)), drawn(page, light)
                difference = np.abs(full - seen).max(axis=-1)
                case = (explanation.method, smoothed, difference.mean())
                # The same colours: colour quantised to 256 levels and JPEG's photo, nothing an eye can tell.
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

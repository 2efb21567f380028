"""What the pages send to the browser (harness/page_weight.py): websocket bytes for one Explain and for the
changes a student makes afterwards, in Debian's Chromium against a real server (production config, offline,
bundled models), one new browser session per page, beside the baseline measured before the light figures.
Then, side by side in this run, each image map's figure as the page draws it against the download's
full-resolution figure (JSON characters).

    python benchmarks/page_weight.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import plotly.io as pio
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.live import CHROMIUM_OPTIONS, LiveServer  # noqa: E402
from harness.page_weight import BASELINE_KB, clip_page, figure_sizes, image_page, text_page, weighed_session  # noqa: E402


def pages() -> None:
    server = LiveServer()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**CHROMIUM_OPTIONS)
            print(f"{'received (websocket + pictures)':<34} {'now':>10} {'before':>10} {'ratio':>7}")
            for run in (image_page, text_page, clip_page):
                with weighed_session(browser, server.url) as (page, received):
                    for action, size in run(page, received).items():
                        print(f"{action:<34} {size:7.1f} KB {BASELINE_KB[action]:7d} KB {size / BASELINE_KB[action]:6.2f}x")
                    for title, characters in figure_sizes(page):
                        print(f"    figure on the page: {title:<52} {characters / 1024:7.1f} KB of JSON")
            browser.close()
    finally:
        server.stop()


def figures() -> None:
    """The same records drawn both ways, in this process."""
    from skimage import data

    from explainers.figures.image import heatmap_figure
    from explainers.tasks.image import explain_image
    from models.image_models import load_image_classifier
    from models.runtime import configure_torch

    configure_torch()
    methods = ("gradcam", "integrated-gradients", "smoothgrad", "lime", "occlusion")
    report = explain_image(load_image_classifier(None), data.chelsea(), methods)
    print(f"\n{'one figure, cat sample':<34} {'page':>10} {'download':>11} {'ratio':>7}")
    for explanation in report.explanations:
        for smoothed in (False, True) if explanation.method in ("integrated-gradients", "smoothgrad") else (False,):
            light, full = (len(pio.to_json(heatmap_figure(explanation, 0.6, smoothed, full=f), validate=False)) / 1024
                           for f in (False, True))
            name = explanation.method + (", smoothed" if smoothed else "")
            print(f"{name:<34} {light:7.1f} KB {full:8.1f} KB {light / full:6.2f}x")


if __name__ == "__main__":
    pages()
    figures()

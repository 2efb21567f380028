"""The report as PDF, printed by headless Chromium from the report's own HTML.

Why Chromium: it is the engine the browser tests already install, it runs the report's plotly.js
before printing (so the PDF holds the HTML's figures, as vectors), and print CSS lays it out.
Playwright drives it: the HTML goes to the browser over a pipe and the PDF comes back as bytes, so
a confidential report is not written to a file on its way (Chromium keeps only its temporary profile).
"""

from __future__ import annotations

import os
import shutil

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_MS = 120_000


class PdfError(RuntimeError):
    """No PDF could be printed; the message says what to do instead."""


def find_chromium() -> str | None:
    configured = os.environ.get("XAI_CHROMIUM")
    if configured:
        return configured
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def html_to_pdf(html: str) -> bytes:
    """A4 pages of the report, figures drawn; PdfError with a way out when no browser is there."""
    browser_path = find_chromium()
    if browser_path is None:
        raise PdfError("A PDF needs Chromium (`make browser` installs it); without it, open the HTML report "
                           "in a browser and print it to PDF.")
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.route("**/*", lambda route: route.abort())  # the report makes no requests: refuse any
                page.set_content(html, wait_until="load", timeout=TIMEOUT_MS)
                # Every figure drawn: plotly.js replaces each figure's div content with an SVG.
                page.wait_for_function(
                    "[...document.querySelectorAll('.plot .plotly-graph-div')].every(d => d.querySelector('svg'))",
                    timeout=TIMEOUT_MS)
                return page.pdf(format="A4", print_background=True,
                                margin={"top": "14mm", "bottom": "14mm", "left": "12mm", "right": "12mm"})
            finally:
                browser.close()
    except Error as error:
        raise PdfError(f"Chromium could not print the PDF: {str(error).splitlines()[0]}") from None

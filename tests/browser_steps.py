"""What a user does in the browser, as Playwright steps shared by the real-browser tests."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from playwright.sync_api import Page, expect

SLOW = 180_000  # ms: an explanation on a busy 2-core machine


@dataclass
class Download:
    label: str
    file_name: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@contextlib.contextmanager
def new_user(browser, url: str, viewport=(1400, 2400)):
    """A fresh browser context (its own cookies, so its own Streamlit session) on the home page.
    Any JavaScript dialog (an injected alert) fails the test."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    expect(page.get_by_role("link", name="Images (ResNet)").first).to_be_visible(timeout=60_000)
    try:
        yield page
        assert not dialogs, f"a script ran in the page: {dialogs}"
    finally:
        context.close()


def open_page(page: Page, link: str, ready_button: str = "Explain") -> None:
    """Navigate as a user does, through the sidebar link, and wait for the page's form."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    expect(page.get_by_role("button", name=ready_button, exact=True)).to_be_visible(timeout=SLOW)


def press_explain(page: Page) -> None:
    page.get_by_role("button", name="Explain", exact=True).click()


# The image page's default result: predictions, Grad-CAM, Integrated Gradients and the faithfulness curves.
DEFAULT_IMAGE_FIGURES = 4


def wait_for_figures(page: Page, count: int, timeout: float = SLOW) -> None:
    """`count` figures once the request is over: while the image page shows a request's first maps, its run
    goes on and what an earlier run drew beyond them may still be on the page. On a timeout the message says
    what the page showed (its progress bar, its messages)."""
    figures = page.locator(".js-plotly-plot")
    try:
        expect(figures).to_have_count(count, timeout=timeout)
        expect(page.get_by_test_id("stProgress")).to_have_count(0, timeout=timeout)
        expect(figures).to_have_count(count, timeout=timeout)
    except AssertionError as error:
        shown = page.locator("[data-testid=stProgress], [data-testid=stAlert], [data-testid=stException]")
        raise AssertionError(f"{error}\nThe page showed: {shown.all_inner_texts()}") from None


def add_options(page: Page, label: str, options) -> None:
    """Add options to a multiselect, as a user picks them from its list."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text=label)
    for option in options:
        box.get_by_role("combobox").click()
        page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def upload(page: Page, *paths) -> None:
    page.locator("input[type=file]").set_input_files([str(p) for p in paths])


def download(page: Page, button) -> Download:
    """Click a download button and return what the browser saved."""
    label = button.inner_text().strip()
    with page.expect_download(timeout=60_000) as event:
        button.click()
    saved = event.value
    with open(saved.path(), "rb") as handle:
        return Download(label, saved.suggested_filename, handle.read())


def every_download(page: Page) -> list[Download]:
    """Use every visible download button (those in hidden tabs are not), one after another."""
    buttons = page.get_by_test_id("stDownloadButton").locator("button")
    found = []
    for index in range(buttons.count()):
        button = buttons.nth(index)
        if button.is_visible():
            found.append(download(page, button))
    return found


def paragraph(page: Page, containing: str) -> str:
    """The whole text of the (single) Markdown block that contains `containing`."""
    return page.get_by_test_id("stMarkdownContainer").filter(has_text=containing).last.inner_text()


def explaining(page: Page) -> tuple[str, int, float]:
    """(label, class, probability) from the image page's "Explaining: LABEL (class N, probability P%)"."""
    text = paragraph(page, "Explaining:")
    match = re.search(r"Explaining: (.+) \(class (\d+), probability ([\d.]+)%\)", text)
    assert match, text
    return match.group(1), int(match.group(2)), float(match.group(3)) / 100

"""Hostile and unlucky input against a real server in a real browser: errors inside an explanation,
uploads over the cap sent straight to the server, markup in file names and text, a user who clicks
twice, and proof that uploads and typed text never reach the disk or the server's log."""

from __future__ import annotations

import sys
import uuid

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from browser_steps import DEFAULT_IMAGE_FIGURES, SLOW, explaining, new_user, open_page, press_explain, upload, wait_for_figures
from conftest import CAT_CLASSES, encode, screenshot
from harness.live import LiveServer

FRIENDLY = "Something went wrong while explaining"


def start(script: str):
    server = LiveServer(launcher=(sys.executable, f"tests/servers/{script}"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def faulty_server():
    """Every explainer fails on its first call with a traceback, a path and the user's input in its message."""
    yield from start("faulty.py")


@pytest.fixture(scope="module")
def audited_server():
    """Reports every file the server opens for writing, and every subprocess, on its output."""
    yield from start("audited.py")


def alerts(page) -> str:
    return " ".join(page.get_by_test_id("stAlert").all_inner_texts())


def assert_nothing_private_shown(page, *private: str) -> None:
    """No traceback, no server path, no exception display, and the user's input in no message."""
    content = page.content()
    for leak in ("Traceback", "/srv/app", "File \"", "RuntimeError"):
        assert leak not in content, f"{leak!r} is visible in the page"
    expect(page.get_by_test_id("stException")).to_have_count(0)
    for word in private:
        assert word not in alerts(page)


def test_an_error_inside_an_explanation_is_a_friendly_message_and_the_page_recovers(browser, faulty_server):
    secret = "Patient 4711 felt wonderful after the treatment."
    with new_user(browser, faulty_server.url) as page:
        open_page(page, "Images (ResNet)")
        press_explain(page)
        expect(page.get_by_text(f"{FRIENDLY} this image.")).to_be_visible(timeout=SLOW)
        assert_nothing_private_shown(page)
        screenshot(page, "image-page-forced-error")
        press_explain(page)  # the app still works: the same request now succeeds
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        expect(page.get_by_test_id("stAlert").filter(has_text=FRIENDLY)).to_have_count(0)

        open_page(page, "Text (BERT)")
        page.get_by_role("textbox", name="Text", exact=True).fill(secret)
        press_explain(page)
        expect(page.get_by_text(f"{FRIENDLY} this text.")).to_be_visible(timeout=SLOW)
        assert_nothing_private_shown(page, "4711", "Patient")
        screenshot(page, "text-page-forced-error")
        press_explain(page)
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=SLOW)

        open_page(page, "Image + text (CLIP)")
        page.get_by_role("textbox", name="Prompts, one per line").fill("a photo of patient 4711\nan astronaut")
        press_explain(page)
        expect(page.get_by_text(f"{FRIENDLY}.")).to_be_visible(timeout=SLOW)
        assert_nothing_private_shown(page, "4711")
        press_explain(page)
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=SLOW)
    log = "".join(faulty_server.output)
    assert "RuntimeError" in log and "4711" not in log and "/srv/app" not in log  # logged as a kind, not a story


def test_uploads_and_typed_text_never_reach_the_disk_or_the_log(browser, audited_server, tmp_path, coffee):
    marker = "confidential-4711"
    photo = tmp_path / f"{marker}.png"
    big = np.asarray(Image.fromarray(coffee).resize((1500, 1000)))
    noise = np.random.default_rng(0).integers(0, 24, big.shape, dtype=np.uint8)
    photo.write_bytes(encode(big + noise, "PNG"))  # several MB: large uploads used to be spooled to disk
    assert photo.stat().st_size > 2 * 2**20
    with new_user(browser, audited_server.url) as page:
        for link in ("Images (ResNet)", "Text (BERT)", "Image + text (CLIP)"):
            open_page(page, link)  # every model loads (and may touch its caches) before any user data arrives
        before = len(audited_server.output)

        open_page(page, "Images (ResNet)")
        page.get_by_text("Upload a photo", exact=True).click()
        upload(page, photo)
        expect(page.get_by_text(f"{marker}.png ·")).to_be_visible(timeout=60_000)
        press_explain(page)
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        with page.expect_download():
            page.get_by_role("button", name="Values (JSON)").first.click()

        open_page(page, "Text (BERT)")
        page.get_by_role("textbox", name="Text", exact=True).fill(f"The {marker} report was wonderful.")
        press_explain(page)
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=SLOW)

        open_page(page, "Image + text (CLIP)")
        page.get_by_text("Upload photos", exact=True).click()
        upload(page, photo)
        page.get_by_role("textbox", name="Prompts, one per line").fill(f"a {marker} cup\nan astronaut")
        press_explain(page)
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=SLOW)
    during = "".join(audited_server.output[before:])
    assert "AUDIT" not in during, during  # no file opened for writing, no subprocess, while handling user data
    assert marker not in "".join(audited_server.output)


def test_an_upload_over_the_cap_is_refused_in_the_browser_and_at_the_server(browser, live_server, tmp_path, chelsea):
    big = tmp_path / "huge.png"
    big.write_bytes(encode(chelsea, "PNG") + bytes(26 * 2**20))  # 26 MB, over the 25 MB cap
    small = tmp_path / "small.png"
    small.write_bytes(encode(chelsea, "PNG"))
    with new_user(browser, live_server.url) as page:
        sent = []
        page.on("request", lambda request: sent.append(request) if "/_stcore/upload_file/" in request.url else None)
        open_page(page, "Images (ResNet)")
        page.get_by_text("Upload a photo", exact=True).click()
        upload(page, big)
        expect(page.get_by_text("File must be 25.0MB or smaller.")).to_be_visible(timeout=30_000)
        assert not sent, "the browser itself refuses it"

        upload(page, small)  # shows where this session's uploads go, and its XSRF token
        expect(page.get_by_text("small.png ·")).to_be_visible(timeout=30_000)
        route = sent[-1].url.rsplit("/", 1)[0]
        token = sent[-1].headers["x-xsrftoken"]
        straight = page.request.put(f"{route}/{uuid.uuid4()}", headers={"X-Xsrftoken": token}, multipart={
            "file": {"name": "huge.png", "mimeType": "image/png", "buffer": big.read_bytes()}})
        assert straight.status == 413  # the server's own cap, whatever the browser does
        forged = page.request.put(f"{route}/{uuid.uuid4()}", multipart={
            "file": {"name": "small.png", "mimeType": "image/png", "buffer": small.read_bytes()}})
        assert forged.status == 403  # no XSRF token: refused
        assert live_server.healthy()

        press_explain(page)  # and the page still works
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        assert explaining(page)[1] in CAT_CLASSES


@pytest.mark.parametrize("name", [
    "![pixel](tracker.png).png",
    "[click me](javascript:alert(1)).png",
    "<img src=x onerror=alert(1)>.png",
    ":red[loud] $x^2$ **bold**.png",
])
def test_markup_in_a_file_name_is_shown_as_text(browser, live_server, tmp_path, chelsea, name):
    photo = tmp_path / name
    photo.write_bytes(encode(chelsea, "PNG"))
    with new_user(browser, live_server.url) as page:
        fetched = []
        page.on("request", lambda request: fetched.append(request.url))
        open_page(page, "Images (ResNet)")
        page.get_by_text("Upload a photo", exact=True).click()
        upload(page, photo)
        expect(page.get_by_text(f"{name} · 451 x 300")).to_be_visible(timeout=30_000)  # literally
        press_explain(page)
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        expect(page.get_by_text("Showing the last result")).to_have_count(0)
        for selector in ('img[src="x"]', 'img[src*="tracker"]', 'a[href^="javascript"]', "[data-testid=stMarkdownContainer] strong:text('bold')",
                         "[data-testid=stMarkdownContainer] .katex"):
            expect(page.locator(selector)).to_have_count(0)
        assert not [url for url in fetched if "tracker" in url]


def test_markup_in_typed_text_and_a_model_name_is_shown_as_text(browser, live_server):
    text = "The <img src=x onerror=alert(1)> film was **wonderful** [see](javascript:alert(1)) :red[really]."
    model = "![m](tracker.png)"
    with new_user(browser, live_server.url) as page:
        open_page(page, "Text (BERT)")
        page.get_by_role("textbox", name="Text", exact=True).fill(text)
        press_explain(page)
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=SLOW)
        page.get_by_role("textbox", name="Text model").fill(model)
        page.get_by_role("textbox", name="Text model").press("Enter")
        expect(page.get_by_text(f"{model}: ")).to_be_visible(timeout=SLOW)  # the fallback notice names it literally
        for selector in ('img[src="x"]', 'img[src*="tracker"]', 'a[href^="javascript"]'):
            expect(page.locator(selector)).to_have_count(0)
        screenshot(page, "text-page-markup-as-text")


def test_clicking_explain_twice_and_moving_a_slider_meanwhile_gives_one_clean_result(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Images (ResNet)")
        page.get_by_role("button", name="Explain", exact=True).dblclick()  # a new run starts while one computes
        press_explain(page)
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        slider = page.get_by_role("slider", name="Heatmap opacity")
        for key in ("ArrowLeft", "ArrowLeft", "ArrowRight", "End", "Home"):
            slider.press(key)
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page.get_by_test_id("stAlert").filter(has_text=FRIENDLY)).to_have_count(0)
        assert explaining(page)[1] in CAT_CLASSES

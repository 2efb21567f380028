"""A real browser (Playwright driving Debian's Chromium) against a real server on loopback."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the Streamlit server did not become healthy within 60 s")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def page(server):
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
        # Enter by the front door and use the navigation, as a student would. (A deep link as the
        # very first request of a fresh server meets a Streamlit relic of `pages/` folders: see README.)
        page.goto(server)
        page.get_by_role("link", name="Images (ResNet)").first.click()
        expect(page.get_by_role("button", name="Explain", exact=True)).to_be_visible(timeout=90_000)
        yield page
        browser.close()


def press_explain(page):
    page.get_by_role("button", name="Explain", exact=True).click()


def test_sample_photo_explained_in_the_browser(page):
    press_explain(page)
    figures = page.locator(".js-plotly-plot")
    expect(figures).to_have_count(3, timeout=120_000)  # predictions, Grad-CAM, Integrated Gradients
    expect(page.get_by_text("Completeness check: sum of")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "image-page-sample.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Values (JSON)").first.click()
    assert '"method": "gradcam"' in Path(download.value.path()).read_text()


def test_uploaded_photo_explained_and_bad_upload_rejected(page, tmp_path):
    import numpy as np
    import skimage.data
    from PIL import Image

    photo = tmp_path / "coffee.jpg"
    Image.fromarray(skimage.data.coffee()).save(photo)
    page.get_by_text("Upload a photo", exact=True).click()
    page.locator("input[type=file]").set_input_files(str(photo))
    expect(page.get_by_text("coffee.jpg ·")).to_be_visible(timeout=30_000)
    press_explain(page)
    expect(page.get_by_text("espresso").first).to_be_visible(timeout=120_000)
    expect(page.locator(".js-plotly-plot")).to_have_count(3, timeout=120_000)
    page.screenshot(path=ARTIFACTS / "image-page-upload.png", full_page=True)

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(np.random.default_rng(0).integers(0, 255, 200, dtype=np.uint8)))
    page.locator("input[type=file]").set_input_files(str(broken))
    expect(page.get_by_text("broken.png").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("not an image we can read")).to_be_visible(timeout=30_000)
    assert "Traceback" not in page.content()
    page.screenshot(path=ARTIFACTS / "image-page-bad-upload.png", full_page=True)


def test_typed_sentence_explained_and_overview_click_opens_a_head(page):
    page.get_by_role("link", name="Text (BERT)").first.click()
    box = page.get_by_label("Text", exact=True)
    expect(box).to_be_visible(timeout=90_000)
    box.fill("The soup was cold but the <b>dessert</b> was wonderful.")
    press_explain(page)
    expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=120_000)
    # predictions, coloured text, bars, attention detail, overview, rollout focus, rollout matrix
    expect(page.locator(".js-plotly-plot")).to_have_count(7, timeout=60_000)
    assert "<b>dessert</b>" not in page.locator(".js-plotly-plot").nth(1).inner_html()  # escaped, not rendered
    page.screenshot(path=ARTIFACTS / "text-page-attributions.png", full_page=True)

    page.get_by_role("tab", name="Attention maps").click()
    overview = page.get_by_test_id("stPlotlyChart").nth(4)
    overview.scroll_into_view_if_needed()
    # one marker per tile, layer by layer (MiniLM has 12 heads): marker 12 is layer 2, head 1
    tile = overview.locator(".scatterlayer .point").nth(12).bounding_box()
    page.mouse.move(tile["x"] + tile["width"] / 2, tile["y"] + tile["height"] / 2)
    page.mouse.click(tile["x"] + tile["width"] / 2, tile["y"] + tile["height"] / 2)
    expect(page.get_by_text("Layer 2, head 1: who attends to whom")).to_be_visible(timeout=30_000)
    page.screenshot(path=ARTIFACTS / "text-page-attention.png", full_page=True)


def test_prompts_matched_to_a_photo_in_the_browser(page):
    page.get_by_role("link", name="Image + text (CLIP)").first.click()
    prompts = page.get_by_role("textbox", name="Prompts, one per line")
    expect(prompts).to_be_visible(timeout=120_000)
    prompts.fill("an astronaut\na rocket\n<script>alert(1)</script>")
    press_explain(page)
    expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=120_000)
    # bars, Grad-CAM for the best prompt, one map per prompt, word relevance text + bars
    expect(page.locator(".js-plotly-plot")).to_have_count(5, timeout=60_000)
    assert "<script>alert(1)</script>" not in page.locator(".js-plotly-plot").first.inner_html()
    page.screenshot(path=ARTIFACTS / "clip-page.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Values (JSON Lines, one line per view)").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert [json.loads(line)["method"] for line in lines] == ["none", "gradcam", "text-integrated-gradients"]

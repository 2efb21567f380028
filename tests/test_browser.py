"""Every page as a new user in a real browser (Playwright driving Debian's Chromium) against a real
server on loopback: pick or upload, press Explain, find every figure, use every download button and
check what it saved, switch pages. Screenshots land in test-artifacts/."""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from browser_steps import (
    DEFAULT_IMAGE_FIGURES, SLOW, add_options, every_download, explaining, new_user, open_page, press_explain, upload, wait_for_figures,
)
from conftest import CAT_CLASSES, encode, screenshot

IMAGE_METHODS = {"Grad-CAM": "gradcam", "Grad-CAM++": "gradcam++", "Layer-CAM": "layercam",
                 "Integrated Gradients": "integrated-gradients", "SmoothGrad": "smoothgrad"}


def assert_self_contained_figure(html: str) -> None:
    """A figure export opens offline: plotly.js inlined, nothing fetched."""
    assert html.startswith("<html>") or html.lstrip().lower().startswith("<!doctype html>")
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # the library itself is inside
    assert not re.search(r"<script[^>]+src=", html)


def embedded_images(html: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))


def test_home_page_introduces_every_page(browser, live_server):
    with new_user(browser, live_server.url) as page:
        expect(page.get_by_role("heading", name="See why a model predicts what it predicts")).to_be_visible()
        for link in ("Explain an image", "Explain a sentence", "Match photos and prompts", "Audit a model on a dataset"):
            expect(page.get_by_role("link", name=link)).to_be_visible()
        screenshot(page, "home")


def test_image_page_every_method_figure_and_download(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Images (ResNet)")  # the cat is the first sample
        add_options(page, "Methods", ["Grad-CAM++", "Layer-CAM", "SmoothGrad"])
        press_explain(page)
        wait_for_figures(page, 2 + len(IMAGE_METHODS))  # predictions, every map, the faithfulness curves
        label, target, _ = explaining(page)
        assert target in CAT_CLASSES, label
        expect(page.get_by_role("heading", name="How faithful are these maps?")).to_be_visible()
        screenshot(page, "image-page-every-method")

        files = {d.file_name: d for d in every_download(page)}
        assert len(files) == 3 * len(IMAGE_METHODS) + 1, sorted(files)
        curves = files["Cat (Chelsea)-faithfulness.html"].text
        assert_self_contained_figure(curves)
        assert all(title in curves for title in IMAGE_METHODS) and "Random order (seeded)" in curves
        for title, method in IMAGE_METHODS.items():
            html = files[f"Cat (Chelsea)-{method}.html"].text
            assert_self_contained_figure(html)
            assert f"{title}" in html
            record = json.loads(files[f"Cat (Chelsea)-{method}.json"].text)
            assert record["method"] == method and record["target"]["index"] == target
            assert record["input"] == "Cat (Chelsea)" and record["model"]["name"].startswith("EfficientNet-Lite0")
            values = np.array(record["attribution"], dtype=float)
            rows = np.array(csv_rows(files[f"Cat (Chelsea)-{method}.csv"].text), dtype=float)
            assert values.ndim == 2 and np.allclose(rows, values, rtol=1e-5, atol=1e-6)  # CSV and JSON agree
            assert abs(values.shape[1] / values.shape[0] - 451 / 300) < 0.05  # the photo's aspect
            if method == "integrated-gradients":  # the completeness check, as exported
                assert abs(record["convergence_delta"]) <= 0.05 * abs(record["explained_output_difference"])
            faithfulness = record["faithfulness"]  # on by default, with the references beside it
            assert faithfulness["steps"] == 20 and faithfulness["replacement"] == "blurred"
            assert set(faithfulness["references"]) == {"random", "centre"}
            assert faithfulness["deletion"][0] == pytest.approx(record["target"]["score"], abs=1e-4)
            assert 0 <= faithfulness["deletion_auc"] <= 1 and 0 <= faithfulness["insertion_auc"] <= 1

        page.get_by_text("Side by side", exact=True).click()
        wait_for_figures(page, 4)  # predictions, the comparison, the agreement matrices, the faithfulness curves
        expect(page.get_by_text("are practically the same map here")).to_be_visible()
        side, curves = every_download(page)
        assert side.file_name == "Cat (Chelsea)-comparison.html"
        assert curves.file_name == "Cat (Chelsea)-faithfulness.html"
        assert_self_contained_figure(side.text)
        assert all(title in side.text for title in IMAGE_METHODS) and "How much do the methods agree?" in side.text
        screenshot(page, "image-page-side-by-side")


def test_image_page_sanity_check_with_its_figures_and_download(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Images (ResNet)")
        page.get_by_test_id("stMultiSelect").filter(has_text="Methods").get_by_role(
            "button", name="Remove Integrated Gradients").click()
        page.get_by_text("Sanity check: re-initialise", exact=False).click()
        press_explain(page)
        wait_for_figures(page, 5)  # predictions, Grad-CAM, faithfulness, the maps after each step, the similarity chart
        verdict = page.get_by_text("Passes: once head + head conv are random")
        expect(verdict).to_be_visible()
        verdict.scroll_into_view_if_needed()
        screenshot(page, "image-page-sanity-check")
        files = {d.file_name: d for d in every_download(page)}
        sanity = files["Cat (Chelsea)-gradcam-sanity.html"].text
        assert_self_contained_figure(sanity)
        assert sanity.count("Plotly.newPlot") == 2 and "edge detector" in sanity
        record = json.loads(files["Cat (Chelsea)-gradcam.json"].text)
        assert record["sanity"]["passed"] is True and record["sanity"]["steps"][0] == "head"
        assert record["sanity"]["reference"]["similarity"][-1] == 1.0


def test_uploaded_photo_is_explained_and_no_export_carries_its_exif(browser, live_server, tmp_path, coffee):
    exif = Image.Exif()
    exif[0x010F] = "SECRET-CAMERA-4711"  # camera make
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})  # GPS
    photo = tmp_path / "coffee.jpg"
    photo.write_bytes(encode(coffee, "JPEG", exif=exif, quality=92))
    assert Image.open(photo).getexif().get_ifd(0x8825), "the upload must really carry GPS data"

    with new_user(browser, live_server.url) as page:
        open_page(page, "Images (ResNet)")
        page.get_by_text("Upload a photo", exact=True).click()
        upload(page, photo)
        expect(page.get_by_text("coffee.jpg · 600 x 400")).to_be_visible(timeout=30_000)
        press_explain(page)
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        expect(page.get_by_text("Explaining: espresso")).to_be_visible()
        screenshot(page, "image-page-upload")
        files = every_download(page)
        assert len(files) == 7
        for file in files:
            assert b"SECRET-CAMERA" not in file.data and b"Exif\x00\x00" not in file.data, file.file_name
        pictures = [picture for file in files if file.file_name.endswith(".html") for picture in embedded_images(file.text)]
        assert pictures, "the figure exports embed the photo"
        for picture in pictures:
            assert b"eXIf" not in picture and not Image.open(io.BytesIO(picture)).getexif()


def test_text_page_every_view_and_download(browser, live_server):
    sentence = "The soup was cold but the <b>dessert</b> was wonderful."
    with new_user(browser, live_server.url) as page:
        open_page(page, "Text (BERT)")
        page.get_by_role("textbox", name="Text", exact=True).fill(sentence)
        page.get_by_role("textbox", name="Compare with (optional)").fill("The soup was cold and the dessert was awful.")
        press_explain(page)
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=180_000)
        # predictions, coloured text, bars, attention detail, overview, rollout focus and matrix, comparison,
        # faithfulness
        wait_for_figures(page, 9)
        assert "<b>dessert</b>" not in page.locator(".js-plotly-plot").nth(1).inner_html()  # shown, not rendered
        screenshot(page, "text-page-attributions")

        tokens = None
        for tab, expected in {
            "Token attributions (Integrated Gradients)": {"text-integrated-gradients-text.html", "text-integrated-gradients-bars.html",
                                                          "text-integrated-gradients.json", "text-integrated-gradients.csv"},
            "Attention maps": {"text-attention-detail.html", "text-attention-overview.html", "text-attention.json"},
            "Attention rollout": {"text-rollout-focus.html", "text-rollout-matrix.html", "text-rollout.json"},
            "Compare the two texts": {"text-comparison.html"},
        }.items():
            page.get_by_role("tab", name=tab).click()
            files = {d.file_name: d for d in every_download(page)}
            assert set(files) == expected | {"text-faithfulness.html"}, tab  # the evidence sits under every tab
            for name, file in files.items():
                if name.endswith(".html"):
                    assert_self_contained_figure(file.text)
                    assert "<b>dessert</b>" not in file.text
            record = next((json.loads(f.text) for n, f in files.items() if n.endswith(".json")), None)
            if record is None:
                continue
            assert record["input"] == sentence
            tokens = tokens or record["tokens"]
            assert record["tokens"] == tokens and "dessert" in tokens
            if record["method"] == "integrated-gradients":
                assert len(record["attribution"]) == len(tokens)
                assert abs(record["convergence_delta"]) <= 0.05 * abs(record["explained_output_difference"])
                table = csv_rows(files["text-integrated-gradients.csv"].text)
                assert table[0] == ["position", "token", "word", "attribution"]
                assert [row[1] for row in table[1:]] == tokens
                assert np.allclose([float(row[3]) for row in table[1:]], record["attribution"], rtol=1e-4, atol=1e-6)
            elif record["method"] == "attention":
                attention = np.array(record["attention"])
                assert attention.shape[2:] == (len(tokens), len(tokens))
                assert np.allclose(attention.sum(-1), 1, atol=1e-3)  # every row is a distribution
            else:
                assert np.array(record["rollout"]).shape == (len(tokens), len(tokens))

        page.get_by_role("tab", name="Attention maps").click()
        overview = page.get_by_test_id("stPlotlyChart").filter(visible=True).nth(2)  # after predictions and detail
        overview.scroll_into_view_if_needed()
        # one marker per tile, layer by layer (MiniLM has 12 heads): marker 12 is layer 2, head 1
        tile = overview.locator(".scatterlayer .point").nth(12).bounding_box()
        page.mouse.click(tile["x"] + tile["width"] / 2, tile["y"] + tile["height"] / 2)
        expect(page.get_by_text("Layer 2, head 1: who attends to whom")).to_be_visible(timeout=30_000)
        screenshot(page, "text-page-attention")


def test_clip_page_every_view_and_download(browser, live_server):
    payload = "<img src=x onerror=alert(1)>"
    with new_user(browser, live_server.url) as page:
        open_page(page, "Image + text (CLIP)")
        add_options(page, "Sample photos", ["Cat (Chelsea)"])  # after the astronaut
        page.get_by_role("textbox", name="Prompts, one per line").fill(f"an astronaut\na cat\n{payload}")
        press_explain(page)
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=180_000)
        # prompt bars, image x prompt matrix, Grad-CAM, Grad-CAM per prompt, faithfulness, word relevance text and bars
        wait_for_figures(page, 7)
        expect(page.locator('img[src="x"]')).to_have_count(0)
        screenshot(page, "clip-page")

        files = {d.file_name: d for d in every_download(page)}
        stem = "clip-Astronaut (Eileen Collins)"
        assert set(files) == {f"{stem}-gradcam-prompt0.html", f"{stem}-gradcam-all.html",
                              f"{stem}-faithfulness-prompt0.html", f"{stem}-words-prompt0.html", f"{stem}-prompt0.jsonl"}
        for name, file in files.items():
            if name.endswith(".html"):
                assert_self_contained_figure(file.text)
                assert payload not in file.text
        lines = [json.loads(line) for line in files[f"{stem}-prompt0.jsonl"].text.splitlines()]
        assert [line["method"] for line in lines] == ["none", "gradcam", "text-integrated-gradients"]
        for line in lines:
            assert line["target"]["label"] == "a photo of an astronaut"  # the prompt naming the subject wins
            assert [p["label"] for p in line["predictions"]] == [f"a photo of {p}" for p in ("an astronaut", "a cat", payload)]
        words = lines[2]
        assert abs(words["convergence_delta"]) <= 0.05 * abs(words["explained_output_difference"])


def test_switching_pages_keeps_each_pages_result(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Images (ResNet)")
        page.get_by_test_id("stMultiSelect").filter(has_text="Methods").get_by_role("button", name="Remove Integrated Gradients").click()
        press_explain(page)
        wait_for_figures(page, 3)  # predictions, Grad-CAM, faithfulness
        shown = explaining(page)

        open_page(page, "Text (BERT)")
        expect(page.locator(".js-plotly-plot")).to_have_count(0)  # the image result is not shown here
        page.get_by_role("textbox", name="Text", exact=True).fill("A wonderful, moving film.")
        press_explain(page)
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=180_000)

        open_page(page, "Images (ResNet)")
        wait_for_figures(page, 3)
        assert explaining(page) == shown  # the same result, still there
        screenshot(page, "image-page-after-switching")
        open_page(page, "Text (BERT)")
        expect(page.get_by_text("Completeness check: sum of")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("textbox", name="Text", exact=True)).to_have_value("A wonderful, moving film.")


def _lime_samples(page, count_presses: int) -> None:
    """Open the perturbation settings and raise LIME's samples from the default, 10 per key press."""
    settings = page.get_by_test_id("stExpander").filter(has_text="LIME, Kernel SHAP and Occlusion settings")
    slider = settings.get_by_role("slider", name="LIME samples")
    if not slider.is_visible():
        settings.locator("summary").click()
    for _ in range(count_presses):
        slider.press("ArrowRight")


def test_lime_shows_progress_survives_a_rerun_and_can_be_cancelled(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Images (ResNet)")
        page.get_by_text("Measure faithfulness", exact=False).click()  # off: this test is about LIME's bar
        maps = DEFAULT_IMAGE_FIGURES - 1  # predictions, Grad-CAM, Integrated Gradients
        press_explain(page)
        wait_for_figures(page, maps)
        add_options(page, "Methods", ["LIME"])
        _lime_samples(page, 20)  # 300 samples: several seconds
        press_explain(page)
        progress = page.get_by_test_id("stProgress")
        expect(progress.filter(has_text="LIME (2 of 2): ")).to_be_visible(timeout=SLOW)
        screenshot(page, "image-page-progress")
        # A rerun meanwhile (the opacity slider of the result shown) loses nothing: the bar comes back
        # and the result arrives without pressing Explain again.
        page.get_by_role("slider", name="Heatmap opacity").press("ArrowLeft")
        expect(progress).to_have_count(0, timeout=SLOW)  # done: the page's last run is over, nothing stale left
        wait_for_figures(page, maps + 1)
        expect(page.get_by_text("LIME for", exact=False).first).to_be_visible()

        _lime_samples(page, 60)  # 900 samples: long enough to cancel
        press_explain(page)
        expect(progress.filter(has_text="LIME (2 of 2): ")).to_be_visible(timeout=SLOW)
        page.get_by_role("button", name="Cancel", exact=True).click()
        expect(page.get_by_text("Cancelled. The maps below are the ones finished before. Press Explain to start "
                                 "again.")).to_be_visible(timeout=60_000)
        expect(progress).to_have_count(0)
        wait_for_figures(page, maps)  # the maps finished before LIME stay, without LIME's place
        expect(page.get_by_text("on its way")).to_have_count(0)
        expect(page.get_by_test_id("stException")).to_have_count(0)


def test_text_page_word_methods_with_faithfulness_sanity_and_downloads(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Text (BERT)")
        page.get_by_role("textbox", name="Text", exact=True).fill("A wonderful, moving film.")
        add_options(page, "Views", ["Word weights (LIME)", "Word occlusion"])
        page.get_by_text("Sanity check: re-initialise the model's layers", exact=False).click()
        press_explain(page)
        expect(page.get_by_text("How faithful are these word maps?")).to_be_visible(timeout=SLOW)
        expect(page.get_by_text("Sanity check: does the map depend on what the model learned?")).to_be_visible()
        # predictions; text and bars for IG, LIME and Occlusion; attention detail and overview; rollout focus
        # and matrix; faithfulness; per checked map the maps after each step and the similarity chart
        wait_for_figures(page, 1 + 6 + 4 + 1 + 6)
        page.get_by_role("tab", name="Word weights (LIME)").click()
        expect(page.get_by_text("LIME hides random halves of the words")).to_be_visible()
        screenshot(page, "text-page-word-methods")
        files = {d.file_name: d for d in every_download(page)}
        sanity_files = {f"text-{m}-sanity.html" for m in ("integrated-gradients", "lime", "occlusion")}
        assert set(files) == {"text-lime-text.html", "text-lime-bars.html", "text-lime.json", "text-lime.csv",
                              "text-faithfulness.html"} | sanity_files
        record = json.loads(files["text-lime.json"].text)
        assert record["method"] == "lime" and record["parameters"]["samples"] == 200
        assert record["faithfulness"]["replacement"] == "pad" and set(record["faithfulness"]["references"]) == {"random"}
        assert record["sanity"]["reference"]["name"] == "word lengths" and len(record["sanity"]["steps"]) == 7
        for name in sanity_files | {"text-faithfulness.html"}:
            assert_self_contained_figure(files[name].text)


def test_clip_page_faithfulness_and_sanity_for_the_chosen_prompt(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Image + text (CLIP)")
        page.get_by_role("textbox", name="Prompts, one per line").fill("an astronaut\na cat")
        page.get_by_text("Sanity check: re-initialise the image tower", exact=False).click()
        press_explain(page)
        expect(page.get_by_text("How faithful are the maps for “a photo of an astronaut”?")).to_be_visible(timeout=SLOW)
        # prompt bars, Grad-CAM, side by side, faithfulness, word text and bars, sanity maps and chart
        wait_for_figures(page, 8)
        expect(page.get_by_text("Sanity check: does the map depend on what the image tower learned?")).to_be_visible()
        screenshot(page, "clip-page-evidence")
        files = {d.file_name: d for d in every_download(page)}
        stem = "clip-Astronaut (Eileen Collins)"
        for name in (f"{stem}-faithfulness-prompt0.html", f"{stem}-gradcam-sanity-prompt0.html"):
            assert_self_contained_figure(files[name].text)
        lines = [json.loads(line) for line in files[f"{stem}-prompt0.jsonl"].text.splitlines()]
        gradcam = next(line for line in lines if line["method"] == "gradcam")
        assert gradcam["faithfulness"]["steps"] == 20 and gradcam["sanity"]["reference"]["name"] == "edges"

"""The "Inside the model" sections and presenter mode through Streamlit's AppTest: the text page's
step-by-step attention for the explained text, redrawn without a model call when a layer, head or token is
picked; presenter mode styles every figure and stays on across pages."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import models.network
from conftest import settled, shown
from models.text_classifier import TextClassifier

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.network, "_verdict", None)


@pytest.fixture
def traces(monkeypatch):
    """Counts model calls of the inside view (TextClassifier.trace), whichever session makes them."""
    calls = []
    original = TextClassifier.trace

    def counted(self, ids):
        calls.append(ids.shape)
        return original(self, ids)

    monkeypatch.setattr(TextClassifier, "trace", counted)
    return calls


def figure_specs(app) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or the typed form Plotly 6 sends ({"dtype", "bdata", "shape"})."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


def table(app, column: str):
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def text_page() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    app.switch_page("app_pages/text/page.py").run()
    assert not app.exception
    return app


def test_the_text_page_walks_through_one_heads_attention_without_model_calls(traces):
    app = text_page()
    app.text_area(key="text_input").set_value("The acting was wonderful.")
    app.multiselect(key="text_methods").set_value(["attention"])
    app.button[0].click().run()
    before = len(app.get("plotly_chart"))
    traces.clear()  # the classifier's warm-up at load
    app.toggle(key="text_inside").set_value(True).run()
    assert not app.exception and not app.error
    assert len(traces) == 1  # one forward pass for the explained text
    tokens = table(app, "piece")
    assert list(tokens["piece"])[:2] == ["[CLS]", "the"] and list(tokens["special"])[0] == "yes"
    titles = [spec["layout"]["title"]["text"] for spec in figure_specs(app)[before:]]
    assert any(t.startswith("Layer 6, head 1: how #1 the spreads") for t in titles), titles
    assert "settles at" in " ".join(m.value for m in app.markdown)
    for key, value in (("text_inside_layer", 0), ("text_inside_head", 3), ("text_inside_token", 3)):
        app.selectbox(key=key).set_value(value).run()
        assert not app.exception
    assert len(traces) == 1  # every choice redrew from the record
    titles = [spec["layout"]["title"]["text"] for spec in figure_specs(app)[before:]]
    assert any(t.startswith("Layer 1, head 4: how #3 was spreads") for t in titles), titles
    # The table's weights are the outlined row of the head's whole map drawn beside it.
    weights = list(table(app, "weight")["weight"])
    heat = next(spec for spec in figure_specs(app) if spec["layout"]["title"]["text"].startswith("Layer 1, head 4: its attention map"))
    assert weights == pytest.approx(list(array(heat["data"][0]["z"])[3]), abs=1e-4)
    # Token paths are projected only when a token is chosen, from the same record.
    assert not any(t.startswith("Each token's path") for t in titles)
    app.multiselect(key="text_inside_paths").set_value([1, 2]).run()
    path = next(spec for spec in figure_specs(app) if spec["layout"]["title"]["text"].startswith("Each token's path"))
    assert [trace["name"] for trace in path["data"]] == ["#1 the", "#2 acting"]
    assert len(traces) == 1


def test_a_whitespace_text_gets_a_message_in_the_inside_section(traces):
    app = text_page()
    traces.clear()
    app.text_area(key="text_input").set_value("   ")
    app.button[0].click().run()  # the form sends the text
    app.toggle(key="text_inside").set_value(True).run()
    assert not app.exception
    assert "type some text" in shown(app.error) and traces == []


def test_presenter_mode_styles_figures_and_stays_on_across_pages():
    app = text_page()
    app.text_area(key="text_input").set_value("The acting was wonderful.")
    app.multiselect(key="text_methods").set_value(["attention"])
    app.button[0].click().run()
    plain = figure_specs(app)
    app.toggle(key="presenter").set_value(True).run()
    assert not app.exception
    projected = figure_specs(app)
    assert len(projected) == len(plain)
    assert all(spec["layout"]["font"]["size"] == 20 for spec in projected)
    assert all(spec["layout"].get("font", {}).get("size") != 20 for spec in plain)
    heatmaps = [trace for spec in projected for trace in spec["data"] if trace["type"] == "heatmap"]
    assert heatmaps and all(trace["colorscale"][-1][1] in ("#fcffa4", "rgb(5,48,97)", "rgb(103,0,31)")
                            for trace in heatmaps if "colorscale" in trace)
    assert any("font-size: 1.35rem" in element.proto.body for element in app.get("html"))
    # No colour Streamlit's theme takes for a stand-in of its own (#000001, #000002, ...): zero would turn pink.
    stops = [colour for trace in heatmaps for _, colour in trace.get("colorscale", ())]
    assert stops and not any(colour.lower().startswith("#0000") for colour in stops)
    app.switch_page("app_pages/image/page.py").run()
    assert not app.exception and app.toggle(key="presenter").value is True
    app.switch_page("app_pages/text/page.py").run()
    assert app.toggle(key="presenter").value is True


@pytest.fixture
def stage_passes(monkeypatch):
    """Counts the image inside view's model calls: the forward pass of the overview
    (ImageClassifier.stages_and_logits) and the forward and backward pass of Grad-CAM by depth
    (ImageClassifier.stage_gradients)."""
    from models.image_classifier import ImageClassifier

    calls = []
    for name in ("stages_and_logits", "stage_gradients"):
        original = getattr(ImageClassifier, name)

        def counted(self, *args, name=name, original=original):
            calls.append(name)
            return original(self, *args)

        monkeypatch.setattr(ImageClassifier, name, counted)
    return calls


def test_the_image_page_opens_stages_and_the_head_without_model_calls(stage_passes):
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    app.switch_page("app_pages/image/page.py").run()
    app.multiselect(key="image_methods").set_value(["gradcam"])
    settled(app.button[0].click().run())
    explained = next(m.value for m in app.markdown if "Explaining" in m.value)
    stage_passes.clear()  # the page's own explanation is not the inside view's
    app.toggle(key="image_inside").set_value(True).run()
    assert not app.exception and not app.error
    assert stage_passes == ["stages_and_logits"]  # one forward pass; Grad-CAM by depth waits to be asked
    titles = [spec["layout"]["title"]["text"] for spec in figure_specs(app)]
    assert any("4,652,008 parameters" in t and "click a stage" in t for t in titles), titles
    assert any(t.startswith("head conv: its 16 most active of 1280 channels") for t in titles), titles
    assert not any(t.startswith("Grad-CAM for") for t in titles)
    app.toggle(key="image_inside_depth_on").set_value(True).run()
    assert stage_passes == ["stages_and_logits", "stage_gradients"]
    depth = next(spec for spec in figure_specs(app) if spec["layout"]["title"]["text"].startswith("Grad-CAM for"))
    assert depth["layout"]["title"]["text"].split("“")[1].split("”")[0] in explained  # the explained class
    assert len(depth["data"]) == 9  # one map per stage: the stem, 7 stages and the head convolution
    app.selectbox(key="image_inside_stage").set_value("stem").run()
    titles = [spec["layout"]["title"]["text"] for spec in figure_specs(app)]
    assert any(t.startswith("stem: its 16 most active of 32 channels") for t in titles)
    assert any(t.startswith("The first convolution's 32 filters") for t in titles)
    app.selectbox(key="image_inside_stage").set_value("head").run()
    app.radio(key="image_inside_class").set_value(1).run()
    assert not app.exception
    waterfall = next(spec for spec in figure_specs(app) if spec["data"][0]["type"] == "waterfall")
    assert "logit" in waterfall["layout"]["title"]["text"]
    assert len(stage_passes) == 2  # every stage and class redrew from the records


def test_the_clip_page_places_photos_and_prompts_and_matches_its_probabilities():
    from test_clip_app import clip_app, explain

    app = explain(clip_app(), "cat\ncup of coffee\nrocket", samples=("Cat (Chelsea)", "Coffee cup"))
    app.toggle(key="clip_inside").set_value(True).run()
    assert not app.exception and not app.error
    assert "Not a learned image embedding" in shown(app.caption)  # ConSE answers offline, and says what it is
    specs = figure_specs(app)
    space = next(s for s in specs if s["layout"]["title"]["text"].startswith("Photos and prompts in the shared"))
    prompts = next(trace for trace in space["data"] if trace.get("name") == "prompts")
    assert prompts["text"] == ["a photo of cat", "a photo of cup of coffee", "a photo of rocket"]
    app.selectbox(key="clip_inside_photo").set_value(1).run()
    temperature = next(s for s in figure_specs(app) if "how similarities become probabilities" in s["layout"]["title"]["text"])
    probabilities = array(temperature["data"][2]["y"])
    assert probabilities.sum() == pytest.approx(1, abs=1e-6) and int(probabilities.argmax()) == 1  # the cup
    mixture = table(app, "class")
    assert len(mixture) == 10 and mixture["weight"].sum() == pytest.approx(1, abs=1e-3)

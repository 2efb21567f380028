"""The pages through Streamlit's headless AppTest: widgets, the Explain flow, redraws, errors."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import models.network
import ui.image_view
import ui.jobs
from conftest import settled, shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
IMAGE_PAGE = "app_pages/image/page.py"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.network, "_verdict", None)


def image_app() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    app.switch_page(IMAGE_PAGE).run()
    assert not app.exception
    return app


def plotly_charts(app):
    return app.get("plotly_chart")


def test_home_page_links_to_the_image_page():
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert "why a model predicts" in app.title[0].value


def test_image_page_says_which_model_answered_and_why():
    app = image_app()
    text = shown(app.caption) + " " + shown(app.warning)
    assert "EfficientNet-Lite0" in text
    assert "offline" in text and "microsoft/resnet-50" in text


def test_explain_shows_predictions_and_one_figure_per_method(monkeypatch):
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam", "gradcam++", "integrated-gradients"])
    app.slider(key="image_ig_steps").set_value(16)
    settled(app.button[0].click().run())  # the form's Explain button
    assert not app.exception
    assert not app.error
    charts = plotly_charts(app)
    assert len(charts) == 5  # predictions, three heatmaps, the faithfulness curves
    markdown = " ".join(m.value for m in app.markdown)
    assert "Egyptian cat" in markdown or "tabby" in markdown
    assert any("Completeness check" in c.value for c in app.caption)


def test_moving_the_opacity_slider_redraws_without_recomputing(monkeypatch):
    calls = []
    real = ui.image_view.explain_image

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ui.image_view, "explain_image", counting)
    ui.jobs.server_jobs.clear()
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam"])
    settled(app.button[0].click().run())
    assert len(calls) == 1
    app.slider(key="image_opacity").set_value(0.2).run()
    app.radio(key="image_view").set_value("One figure per method").run()
    assert not app.exception
    assert len(calls) == 1
    assert len(plotly_charts(app)) == 3


def test_side_by_side_view_puts_methods_in_one_figure():
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam", "layercam"])
    settled(app.button[0].click().run())
    app.radio(key="image_view").set_value("Side by side").run()
    assert not app.exception
    assert len(plotly_charts(app)) == 4  # predictions, one comparison, the agreement matrices, the faithfulness curves


def test_a_chosen_target_class_is_explained():
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam"])
    app.selectbox(key="image_target").set_value("281 · tabby, tabby cat")
    settled(app.button[0].click().run())
    assert not app.exception
    assert any("class 281" in m.value for m in app.markdown)


def test_an_explanation_failure_shows_a_friendly_message_and_the_page_keeps_working(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("/secret/path/in/traceback")

    monkeypatch.setattr(ui.image_view, "explain_image", broken)
    ui.jobs.server_jobs.clear()
    app = image_app()
    app.multiselect(key="image_methods").set_value(["layercam"])
    settled(app.button[0].click().run())
    assert not app.exception
    assert any("Something went wrong" in e.value for e in app.error)
    assert all("/secret/path" not in e.value for e in app.error)
    monkeypatch.undo()
    app.run()
    assert not app.exception


def test_faithfulness_sits_beside_every_map_with_a_verdict_and_the_replacement_named():
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam", "integrated-gradients"])
    app.slider(key="image_ig_steps").set_value(16)
    app.slider(key="image_faith_steps").set_value(10)
    app.radio(key="image_faith_replacement").set_value("mean")
    settled(app.button[0].click().run())
    assert not app.exception and not app.error
    assert any(h.value == "How faithful are these maps?" for h in app.subheader)
    captions = shown(app.caption)
    assert captions.count("Faithfulness: deletion area") == 2  # under each map
    assert "the photo's mean colour" in captions and "10 steps" in captions
    table = app.dataframe[0].value
    assert list(table["map"])[-2:] == ["reference: random order (seeded)", "reference: centre first"]
    assert set(table["against a random order"][:2]) <= {"faithful", "partly: deletion only", "partly: insertion only", "not faithful here"}
    assert table["deletion area (lower is better)"].between(0, 1).all()
    verdicts = [shown([m]) for m in app.markdown if "faithful" in shown([m]).lower()]
    assert any(v.startswith("**Grad-CAM") and "halves the probability" in v for v in verdicts), verdicts
    assert any(v.startswith("**Integrated Gradients") for v in verdicts), verdicts


def test_faithfulness_can_be_switched_off():
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam"])
    app.checkbox(key="image_faithfulness").uncheck()
    settled(app.button[0].click().run())
    assert not app.exception
    assert not [h for h in app.subheader if h.value == "How faithful are these maps?"]
    assert len(plotly_charts(app)) == 2


def test_the_sanity_check_shows_each_step_the_chart_and_a_verdict():
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam"])
    app.checkbox(key="image_faithfulness").uncheck()
    app.checkbox(key="image_sanity").check()
    settled(app.button[0].click().run())
    assert not app.exception and not app.error
    assert any("Sanity check" in h.value for h in app.subheader)
    assert len(plotly_charts(app)) == 4  # predictions, the map, the maps after each step, the similarity chart
    verdict = shown(app.success)
    assert verdict.startswith("**Grad-CAM (head conv)**: Passes: once head + head conv are random")
    assert "Pass rule" in shown(app.caption) and "head conv, stage 7" in shown(app.caption)


def test_side_by_side_says_when_two_methods_are_one_map():
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam", "gradcam++", "layercam"])
    app.checkbox(key="image_faithfulness").uncheck()
    settled(app.button[0].click().run())
    app.radio(key="image_view").set_value("Side by side").run()
    assert not app.exception
    notes = shown(app.info)
    assert "Grad-CAM++ (head conv) and Layer-CAM (head conv) are practically the same map here" in notes
    assert "global average pooling and a linear layer" in notes


def test_pixel_maps_can_be_shown_smoothed_for_a_projector_without_recomputing(monkeypatch):
    calls = []
    real = ui.image_view.explain_image
    monkeypatch.setattr(ui.image_view, "explain_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    ui.jobs.server_jobs.clear()
    app = image_app()
    app.multiselect(key="image_methods").set_value(["gradcam", "smoothgrad"])
    app.checkbox(key="image_faithfulness").uncheck()
    settled(app.button[0].click().run())
    app.radio(key="image_pixel_display").set_value(True).run()
    assert not app.exception and len(calls) == 1
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in plotly_charts(app)[1:]]
    assert titles[0].startswith("Grad-CAM (") and titles[1].startswith("SmoothGrad, smoothed |values|")


def test_lime_kernel_shap_and_occlusion_run_from_the_page_with_their_settings(monkeypatch):
    seen = []
    real = ui.image_view.explain_image
    monkeypatch.setattr(ui.image_view, "explain_image", lambda *a, **k: seen.append(a[4]) or real(*a, **k))
    app = image_app()
    app.multiselect(key="image_methods").set_value(["lime", "kernelshap", "occlusion"])
    app.checkbox(key="image_faithfulness").uncheck()
    app.slider(key="image_lime_samples").set_value(30)
    app.slider(key="image_shap_samples").set_value(40)
    app.slider(key="image_segments").set_value(15)
    app.slider(key="image_patch").set_value(112)
    app.radio(key="image_stride").set_value(1.0)
    app.radio(key="image_hidden").set_value("black")
    app.number_input(key="image_seed").set_value(7)
    settled(app.button[0].click().run())
    assert not app.exception and not app.error
    (settings,) = seen
    assert (settings.lime_samples, settings.shap_samples, settings.segments) == (30, 40, 15)
    assert (settings.occlusion_patch, settings.occlusion_stride, settings.perturbation_baseline, settings.seed) == (
        112, 112, "black", 7)
    charts = plotly_charts(app)
    assert len(charts) == 4  # predictions and the three maps
    titles = [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in charts[1:]]
    assert sorted(t.split(" for ")[0] for t in titles) == ["Kernel SHAP", "LIME", "Occlusion"], titles
    help_text = " ".join(m.value for m in app.markdown)
    assert "superpixels" in help_text and "Shapley values" in help_text and "square patch" in help_text

"""The image-text page through Streamlit's headless AppTest: status, Explain, prompt switching, bad prompts."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import models.network
import ui.clip_view
import ui.jobs
from conftest import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
CLIP_PAGE = "app_pages/clip/page.py"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.network, "_verdict", None)


def clip_app() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=180)
    app.run()
    app.switch_page(CLIP_PAGE).run()
    assert not app.exception
    return app


def explain(app: AppTest, prompts: str, samples=("Cat (Chelsea)",), template="a photo of {}", form=None) -> AppTest:
    app.multiselect(key="clip_samples").set_value(list(samples))
    app.run()
    if form is not None:
        form(app)  # more of the form's settings
    app.text_area(key="clip_prompts").set_value(prompts)
    app.text_input(key="clip_template").set_value(template)
    app.button[0].click().run()
    assert not app.exception
    return app


def test_page_names_the_stand_in_honestly():
    app = clip_app()
    text = shown(app.caption) + " " + shown(app.warning)
    assert "ConSE" in text and "not CLIP" in text and "openai/clip-vit-base-patch32" in text


def test_the_prompt_naming_the_subject_wins_and_every_view_is_drawn():
    app = explain(clip_app(), "a dog\na cat\na cup of coffee")
    assert not app.error
    assert app.selectbox(key="clip_target").value == 1  # the best match, "a photo of a cat"
    # bars, Grad-CAM, Grad-CAM side by side, faithfulness (on by default, the best match), word relevance text + bars
    assert len(app.get("plotly_chart")) == 6
    assert any("Completeness check" in c.value for c in app.caption)
    assert "How faithful are the maps for “a photo of a cat”?" in [h.value for h in app.subheader]
    app.selectbox(key="clip_target").set_value(0).run()  # another prompt: measured only when asked
    assert "Faithfulness was measured for the best-matching prompt" in shown(app.caption)


def test_picking_another_prompt_redraws_without_recomputing(monkeypatch):
    calls = []
    real = ui.clip_view.explain_image_text

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ui.clip_view, "explain_image_text", counting)
    ui.jobs.server_jobs.clear()
    app = explain(clip_app(), "a dog\na cat")
    app.selectbox(key="clip_target").set_value(0).run()
    app.slider(key="clip_opacity").set_value(0.3).run()
    assert not app.exception
    assert len(calls) == 1
    assert any("a photo of a dog" in str(chart.proto.spec) for chart in app.get("plotly_chart"))


def test_two_images_add_a_similarity_matrix():
    app = explain(clip_app(), "a cat\na cup of coffee", samples=("Cat (Chelsea)", "Coffee cup"))
    assert not app.error
    assert any("Every image against every prompt" in str(chart.proto.spec) for chart in app.get("plotly_chart"))


@pytest.mark.parametrize("prompts, template, message", [
    ("\n  \n", "a photo of {}", "at least one prompt"),
    ("a cat", "a photo of", "needs {}"),
])
def test_bad_prompts_get_a_clear_message_and_the_page_keeps_working(prompts, template, message):
    app = explain(clip_app(), prompts, template=template)
    assert message in shown(app.error)
    app = explain(app, "a cat\na dog")
    assert not app.error


def test_duplicate_and_single_prompts_are_explained_with_a_note():
    app = explain(clip_app(), "a cat\na cat")
    notes = shown(app.info)
    assert "appears twice" in notes and "single prompt" in notes


def test_faithfulness_and_the_sanity_check_for_the_chosen_prompt():
    def evidence(app):
        app.checkbox(key="clip_faithfulness").check()
        app.checkbox(key="clip_faith_every").check()
        app.slider(key="clip_faith_steps").set_value(6)
        app.checkbox(key="clip_sanity").check()

    app = explain(clip_app(), "a dog\na cat", form=evidence)
    assert not app.error
    headers = [h.value for h in app.subheader]
    assert "How faithful are the maps for “a photo of a cat”?" in headers
    assert "Sanity check: does the map depend on what the image tower learned?" in headers
    table = app.dataframe[0].value
    assert list(table["map"]) == ["Grad-CAM", "reference: random order (seeded)", "reference: centre first"]
    assert "6 steps" in shown(app.caption) and "image classifier" not in shown(app.error)
    verdict = shown(app.success) + shown(app.warning)
    assert "**Grad-CAM**: Passes" in verdict or "**Grad-CAM**: Fails" in verdict
    app.selectbox(key="clip_target").set_value(0).run()  # the other prompt: its own evidence, no recomputing
    assert "How faithful are the maps for “a photo of a dog”?" in [h.value for h in app.subheader]

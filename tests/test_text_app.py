"""The text page through Streamlit's headless AppTest: model status, Explain, views, redraws, errors."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import models.network
import ui.jobs
import ui.text_view
from conftest import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TEXT_PAGE = "app_pages/text/page.py"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.network, "_verdict", None)


def text_app() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    app.switch_page(TEXT_PAGE).run()
    assert not app.exception
    return app


def explain(app: AppTest, text: str, methods=("integrated-gradients", "attention", "rollout"), compare: str = "") -> AppTest:
    app.text_area(key="text_input").set_value(text)
    app.text_area(key="text_compare").set_value(compare)
    app.multiselect(key="text_methods").set_value(list(methods))
    app.button[0].click().run()  # the form's Explain button
    assert not app.exception
    return app


def captions(app) -> str:
    return shown(app.caption)


def test_text_page_says_which_model_answered_how_and_why():
    app = text_app()
    text = captions(app) + " " + shown(app.warning)
    assert "MiniLM" in text and "zero-shot" in text.lower()
    assert "gchhablani/bert-base-cased-finetuned-sst2" in text and "offline" in text
    assert "description" in text  # how it classifies


def test_explain_shows_predictions_attributions_attention_and_rollout():
    app = explain(text_app(), "The movie was wonderful.")
    assert not app.error
    markdown = " ".join(m.value for m in app.markdown)
    assert "**Explaining:** positive" in markdown
    assert "Completeness check" in captions(app)
    # predictions, coloured text, bars, attention detail, overview, rollout focus, rollout matrix, faithfulness
    assert len(app.get("plotly_chart")) == 8
    assert any(h.value == "How faithful are these word maps?" for h in app.subheader)
    assert [t.label for t in app.tabs] == [
        "Token attributions (Integrated Gradients)", "Attention maps", "Attention rollout"
    ]


def test_changing_layer_head_and_word_merging_redraws_without_recomputing(monkeypatch):
    calls = []
    real = ui.text_view.explain_text

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ui.text_view, "explain_text", counting)
    ui.jobs.server_jobs.clear()
    app = explain(text_app(), "An unbelievably charming film.")
    assert len(calls) == 1
    app.selectbox(key="text_layer").set_value(2).run()
    app.selectbox(key="text_head").set_value("head 3").run()
    app.toggle(key="text_merge").set_value(False).run()
    assert not app.exception
    assert len(calls) == 1
    assert any("Layer 2, head 3" in str(chart.proto.spec) for chart in app.get("plotly_chart"))


def test_comparing_two_sentences_adds_a_comparison_view():
    app = explain(text_app(), "The food was great.", methods=("integrated-gradients",), compare="The food was awful.")
    assert not app.error
    assert "Compare the two texts" in [t.label for t in app.tabs]
    assert any("Second text" in m.value for m in app.markdown)


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_empty_text_gets_a_clear_message_and_the_page_keeps_working(text):
    app = explain(text_app(), text)
    assert any("empty" in e.value for e in app.error)
    app = explain(app, "Lovely.")
    assert not app.error
    assert "Completeness check" in captions(app)


def test_long_text_is_truncated_with_a_visible_notice():
    app = explain(text_app(), "great " * 2000, methods=("attention",))
    notices = [w.value for w in app.warning if "cut after character" in w.value]
    assert notices and "512" in notices[0]


def test_target_picker_lists_the_zero_shot_labels():
    app = text_app()
    assert [o for o in app.selectbox(key="text_target").options] == ["Top prediction", "negative", "positive"]


def test_a_classes_own_labels_survive_a_visit_to_another_page():
    app = text_app()
    own = (("sports", "This text is about sports."), ("politics", "This text is about politics."))
    app.session_state["text_labels_used"] = own  # what the editor recorded when the class typed them
    app.switch_page("app_pages/image/page.py").run()  # a page switch drops the editor's own edits
    app.switch_page(TEXT_PAGE).run()
    assert not app.exception
    assert list(app.selectbox(key="text_target").options) == ["Top prediction", "sports", "politics"]


def test_an_explanation_failure_shows_a_friendly_message(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("/secret/path/in/traceback")

    monkeypatch.setattr(ui.text_view, "explain_text", broken)
    ui.jobs.server_jobs.clear()
    app = explain(text_app(), "Something different.")
    assert any("Something went wrong" in e.value for e in app.error)
    assert all("/secret/path" not in e.value for e in app.error)


def test_lime_kernel_shap_and_occlusion_over_words_with_faithfulness_and_a_sanity_check(monkeypatch):
    seen = []
    real = ui.text_view.explain_text
    monkeypatch.setattr(ui.text_view, "explain_text", lambda *a, **k: seen.append(a[4]) or real(*a, **k))
    app = text_app()
    app.slider(key="text_lime_samples").set_value(40)
    app.slider(key="text_shap_samples").set_value(50)
    app.number_input(key="text_seed").set_value(3)
    app.slider(key="text_faith_steps").set_value(6)
    app.checkbox(key="text_sanity").check()
    app = explain(app, "The movie was wonderful.", methods=("lime", "kernelshap", "occlusion"))
    assert not app.error
    settings = seen[0]
    assert (settings.lime_samples, settings.shap_samples, settings.seed, settings.faithfulness_steps) == (40, 50, 3, 6)
    assert [t.label for t in app.tabs] == ["Word weights (LIME)", "Word weights (Kernel SHAP)", "Word occlusion"]
    text = captions(app)
    assert "40 samples, seed 3" in text and "50 samples, seed 3" in text and "forward passes" in text
    assert text.count("Faithfulness: deletion area") == 3
    table = next(d.value for d in app.dataframe if "map" in d.value.columns)  # not the labels' editor
    assert list(table["map"]) == ["LIME", "Kernel SHAP", "Occlusion", "reference: random order (seeded)"]
    verdicts = shown(app.success) + shown(app.warning)
    for name in ("LIME", "Kernel SHAP", "Occlusion"):
        assert f"**{name}**: Passes" in verdicts or f"**{name}**: Fails" in verdicts
    assert "word lengths" in verdicts
    assert "layer 6" in captions(app)  # the note says what was re-initialised

"""User text in figures. Plotly renders some HTML (<b>, <i>, <a href>, <br>, <span style>) in titles, tick labels,
cell text and hover labels, so every figure builder escapes what a user typed: tokens, words, prompts, label
names, file names. And labels that repeat (a word typed twice, two uploads called photo.jpg, prompts alike up to
where their label is shortened) keep one place each: on a categorical axis Plotly would merge them."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

from explainers.figures.clip import prompt_bars, similarity_figure
from explainers.figures.image import comparison_figure, heatmap_figure, prediction_bars
from explainers.figures.text import (
    attention_figure,
    attribution_bars,
    attribution_text_figure,
    rollout_focus_figure,
    text_comparison_figure,
)
from explainers.records.common import ImageExplanation, ModelSummary, Prediction

PAYLOADS = {
    "img-onerror": "<img src=x onerror=alert(1)>",
    "bold": "<b>bold</b>",
    "javascript-link": '<a href="javascript:alert(1)">x</a>',
}
RAW_TAG = re.compile(r"<\s*/?\s*(img|a|b|i|script|span|svg|iframe)\b", re.IGNORECASE)


def strings_in(figure) -> list[str]:
    """Every string the browser gets. figure.to_json() writes "<" as \\u003c, so its raw text never shows a tag
    whether or not the builder escaped: decode it and look at the strings themselves."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(key)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(figure.to_json()))
    return found


def check_escaped(figure, payload: str) -> None:
    strings = strings_in(figure)
    raw = [s for s in strings if RAW_TAG.search(s) or payload in s]
    assert not raw, f"unescaped user text reaches the browser: {raw}"
    escaped = html.escape(payload, quote=True)
    assert any(escaped in s for s in strings), "the user's text is missing (its escaped form should be shown)"
    assert not any("&amp;lt;" in s or "&amp;quot;" in s for s in strings), "escaped twice: the user would see &lt;"


def explanation(label: str = "tabby cat", layer: str | None = "stage 4", shape=(20, 30)) -> ImageExplanation:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    scores = rng.random((shape[0] // 5, shape[1] // 5)).astype(np.float32)
    target = Prediction(281, label, 0.9)
    return ImageExplanation("gradcam", target, image, scores, False, ModelSummary("m", "test"), (target,), layer)


def _words(payload: str) -> list[str]:
    return ["The", payload, "was", payload, "great"]


VALUES = np.array([0.1, -0.4, 0.2, 0.3, -0.1])

# Each builder with the payload in every slot that takes user text, except the `title` arguments (below).
BUILDERS = {
    "attribution_text_figure": lambda p: attribution_text_figure(_words(p), VALUES, "Words"),
    "attribution_bars": lambda p: attribution_bars(_words(p), VALUES, "Words"),
    "rollout_focus_figure": lambda p: rollout_focus_figure(_words(p), np.abs(VALUES), "Rollout"),
    "attention_figure": lambda p: attention_figure(_words(p), np.full((5, 5), 0.2), "Attention"),
    "text_comparison_figure": lambda p: text_comparison_figure(
        (_words(p), VALUES, f"First: {p} 90%"), (_words(p)[:3], VALUES[:3], f"Second: {p} 40%"), "Compared"
    ),
    "prompt_bars": lambda p: prompt_bars(["a cat", p, f"a photo of {p}"], np.array([0.2, 0.5, 0.3]), highlight=1),
    "similarity_figure": lambda p: similarity_figure(
        [f"{p}.jpg", "cat.png"], ["a cat", p], np.array([[0.2, 0.3], [0.1, 0.4]]), np.array([[0.4, 0.6], [0.3, 0.7]])
    ),
    "prediction_bars": lambda p: prediction_bars([Prediction(0, p, 0.7), Prediction(1, "negative", 0.3)], 0),
    "heatmap_figure": lambda p: heatmap_figure(explanation(label=p, layer=p)),
    "comparison_figure-default-titles": lambda p: comparison_figure([explanation(p, p), explanation(p, None)]),
    "comparison_figure-given-titles": lambda p: comparison_figure(
        [explanation(p), explanation("dog")], titles=[p, f"a photo of {p}"], title="Maps"
    ),
}


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
@pytest.mark.parametrize("builder", list(BUILDERS))
def test_user_text_reaches_the_figure_escaped(builder, payload):
    check_escaped(BUILDERS[builder](payload), payload)


def test_a_heatmap_with_a_completeness_check_keeps_its_own_markup_and_escapes_the_label():
    payload = PAYLOADS["bold"]
    figure = heatmap_figure(
        ImageExplanation(**{**vars(explanation(label=payload)), "convergence_delta": 0.01, "output_difference": 1.0})
    )
    title = figure.layout.title.text
    assert "<br><sup>completeness gap" in title  # the builder's own line break and small print still work
    assert html.escape(payload) in title and payload not in title


# The `title` argument: the pages build these from user text (a CLIP prompt, zero-shot label names the user edits),
# and nothing escapes it on the way.
TITLED = {
    "attribution_text_figure": lambda t: attribution_text_figure(["a", "cat"], VALUES[:2], t),
    "attribution_bars": lambda t: attribution_bars(["a", "cat"], VALUES[:2], t),
    "rollout_focus_figure": lambda t: rollout_focus_figure(["a", "cat"], np.abs(VALUES[:2]), t),
    "attention_figure": lambda t: attention_figure(["a", "cat"], np.full((2, 2), 0.5), t),
    "text_comparison_figure": lambda t: text_comparison_figure((["a"], VALUES[:1], "1"), (["b"], VALUES[:1], "2"), t),
    "comparison_figure": lambda t: comparison_figure([explanation(), explanation()], titles=["x", "y"], title=t),
}


@pytest.mark.parametrize("builder", list(TITLED))
def test_a_title_holding_user_text_is_escaped(builder):
    payload = PAYLOADS["img-onerror"]
    check_escaped(TITLED[builder](f"Word relevance for “{payload}”"), payload)


# --- Repeated labels keep their own places -------------------------------------------------------------------


def check_positions(axis, positions, labels) -> None:
    """One distinct position per item, and the tick under each shows that item's label (repeats included)."""
    positions = list(positions)
    assert len(set(positions)) == len(labels), positions
    assert axis.tickmode == "array" and list(axis.tickvals) == positions
    assert list(axis.ticktext) == labels


@pytest.mark.parametrize("builder", [attribution_bars, rollout_focus_figure])
def test_repeated_tokens_keep_one_bar_each(builder):
    tokens = ["the", "the", "the", "end", "the"]
    figure = builder(tokens, np.abs(VALUES), "t")
    (bars,) = figure.data
    assert len(bars.x) == len(tokens) and list(bars.x) == pytest.approx(np.abs(VALUES).tolist())
    check_positions(figure.layout.yaxis, bars.y, tokens)
    assert list(bars.customdata) == tokens  # hover names the token under the pointer


def test_repeated_tokens_keep_one_cell_each_in_the_coloured_text():
    tokens = ["the", "the", "the"]
    figure = attribution_text_figure(tokens, np.array([0.1, -0.2, 0.3]), "t")
    (cells,) = figure.data
    assert [list(row) for row in cells.text] == [tokens]
    np.testing.assert_allclose(np.asarray(cells.z, dtype=float), [[0.1, -0.2, 0.3]])
    assert [list(row) for row in cells.customdata] == [["#0: the", "#1: the", "#2: the"]]


def test_repeated_tokens_keep_one_row_and_column_each_in_attention():
    tokens = ["[CLS]", "the", "the", "the", "[SEP]"]
    matrix = np.arange(25, dtype=float).reshape(5, 5)
    figure = attention_figure(tokens, matrix, "t")
    (heat,) = figure.data
    np.testing.assert_array_equal(np.asarray(heat.z, dtype=float), matrix)
    check_positions(figure.layout.xaxis, heat.x, tokens)
    check_positions(figure.layout.yaxis, heat.y, tokens)
    assert heat.customdata[1][2] == "#1 the → #2 the"


def test_prompts_alike_up_to_their_shortened_label_keep_one_bar_each():
    stem = "a photo of a very large and fluffy orange tabby cat sitting on a "  # beyond the 48-character label
    prompts = [stem + "mat", stem + "sofa", "a dog", "a dog"]
    figure = prompt_bars(prompts, np.array([0.4, 0.3, 0.2, 0.1]))
    (bars,) = figure.data
    assert len(bars.x) == 4
    labels = list(figure.layout.yaxis.ticktext)
    assert labels[0] == labels[1] and labels[2] == labels[3] == "a dog"
    check_positions(figure.layout.yaxis, bars.y, labels)
    assert list(bars.customdata) == prompts  # hover tells the alike prompts apart


def test_two_uploads_with_one_name_keep_one_row_each_in_the_similarity_matrix():
    names, prompts = ["photo.jpg", "photo.jpg", "cat.png"], ["a cat", "a cat", "a dog"]
    similarity = np.arange(9, dtype=float).reshape(3, 3) / 10
    probabilities = np.full((3, 3), 1 / 3)
    figure = similarity_figure(names, prompts, similarity, probabilities)
    (heat,) = figure.data
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), similarity)
    check_positions(figure.layout.yaxis, heat.y, names)
    check_positions(figure.layout.xaxis, heat.x, prompts)


def test_classes_with_one_name_keep_one_bar_each():
    """ImageNet names two classes "crane" (the bird, 134, and the machine, 517)."""
    predictions = [Prediction(134, "crane", 0.5), Prediction(517, "crane", 0.3), Prediction(9, "ostrich", 0.2)]
    figure = prediction_bars(predictions, highlight=517)
    (bars,) = figure.data
    assert len(bars.x) == 3
    labels = list(figure.layout.yaxis.ticktext)
    check_positions(figure.layout.yaxis, bars.y, labels)
    assert sorted(labels) == ["crane · 134", "crane · 517", "ostrich · 9"]


def test_maps_with_one_title_keep_one_panel_each():
    maps = [explanation("a cat"), explanation("a cat"), explanation("a dog")]
    figure = comparison_figure(maps, titles=["a cat", "a cat", "a dog"])
    photos = [image for image in figure.layout.images if image.source.startswith("data:image/jpeg")]
    overlays = [image for image in figure.layout.images if image.source.startswith("data:image/png")]
    heatmaps = [trace for trace in figure.data if trace.type == "heatmap"]
    assert len(photos) == len(overlays) == len(heatmaps) == 3
    panels = [trace.xaxis for trace in heatmaps]  # each panel's pictures on its own hover grid's axes
    assert len(set(panels)) == 3 and [image.xref for image in photos] == [image.xref for image in overlays] == panels
    assert [a.text for a in figure.layout.annotations] == ["a cat", "a cat", "a dog"]

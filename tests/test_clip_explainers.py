"""The image-text explainers: known answers on a colour-reading model, maps on a tiny random CLIP, the bundled
ConSE on real photos, word relevance completeness, prompt handling, and isolation (threads, hooks, gradients)
on a shared model."""

from __future__ import annotations

import copy
import json
import threading

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import assert_no_hooks_or_grads
from explainers.tasks.clip import (
    MAX_PROMPTS,
    ClipSettings,
    PromptError,
    clean_prompts,
    explain_image_text,
)
from explainers.inputs.image import decode_image
from explainers.records.as_json import clip_record
from explainers.inputs.samples import sample_bytes
from models.image_classifier import InputPolicy
from models.image_text import ImageTextModel
from models.info import ModelInfo

pytestmark = pytest.mark.usefixtures("single_thread", "no_network")

IMAGE_METHODS = ("gradcam", "relevancy")
ALL = ("gradcam", "relevancy", "text-integrated-gradients")


def sample(name: str) -> np.ndarray:
    return decode_image(sample_bytes(name)).rgb


def quadrant_shares(scores: np.ndarray) -> dict[str, float]:
    """Share of a non-negative map's mass in each quadrant of the photo."""
    h, w = scores.shape
    total = float(scores.sum())
    parts = {"top left": scores[: h // 2, : w // 2], "top right": scores[: h // 2, w // 2 :],
             "bottom left": scores[h // 2 :, : w // 2], "bottom right": scores[h // 2 :, w // 2 :]}
    return {name: float(part.sum()) / total for name, part in parts.items()}


def check_map(explanation, image_shape) -> None:
    scores = explanation.scores
    assert scores.ndim == 2 and np.isfinite(scores).all()
    assert (scores >= 0).all(), f"{explanation.method} has negative values"
    h, w = image_shape[:2]
    sh, sw = scores.shape
    assert abs(sh / sw - h / w) <= 0.05 * h / w, f"map {sh}x{sw} lacks the photo's aspect {h}x{w}"


# --- A model whose answers are known ---------------------------------------------------------------

COLOUR_WORDS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "the", "red", "blue",
                "square", "on", "black", "picture")
KAPPA = 0.03  # the image embedding's constant third coordinate: a black photo is not the zero vector
TEXT_BIAS = torch.tensor([0.0, 0.0, 0.01])  # a prompt without colour words points away from both colours


class ColourWords(nn.Module):
    """Word embeddings in three coordinates (red, blue, neither): "red" is (1, 0, 0), "blue" (0, 1, 0), other
    words a trace of colour and a little "neither", [PAD] and the special tokens zero. A colour prompt then
    points almost purely at its colour, closer to it than any photo's embedding (whose third coordinate is at
    least KAPPA): more of that colour in the photo always raises the match."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        noise = torch.randn(len(COLOUR_WORDS), 3, generator=generator)
        weight = torch.cat([0.002 * noise[:, :2], 0.005 * noise[:, 2:].abs()], dim=1)
        weight[:5] = 0
        weight[COLOUR_WORDS.index("red")] = torch.tensor([1.0, 0.0, 0.0])
        weight[COLOUR_WORDS.index("blue")] = torch.tensor([0.0, 1.0, 0.0])
        self.embeddings = nn.Embedding.from_pretrained(weight, freeze=True)

    def get_input_embeddings(self):
        return self.embeddings


class ColourModel(ImageTextModel):
    """Reads how red and how blue the photo's 4 x 4 patches are (channels of the "colours" layer), pools
    them with the class token's attention (uniform, or focused on the top-left quadrant's four patches),
    and embeds (red, blue, KAPPA), normalised. A prompt's embedding is its word embeddings summed plus
    TEXT_BIAS, normalised. So a red object matches "red" prompts, where it is; with `focus`, only what lies
    in the top-left quadrant is read at all."""

    def __init__(self, focus: bool = False):
        from transformers import BertTokenizer

        tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(COLOUR_WORDS)})
        policy = InputPolicy((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), fixed_size=(32, 32))
        super().__init__(ModelInfo("colour model", "test"), policy, tokenizer, 10.0, "reads colours")
        self.max_prompt_tokens = 16
        self.layers = ("colours",)
        self.grid_size = 4
        self.text_network = ColourWords()
        logits = torch.zeros(16)
        if focus:
            logits[[0, 1, 4, 5]] = 12.0  # the top-left quadrant's patches
        self.focus = logits

    @property
    def has_attention(self) -> bool:
        return True

    def _colours(self, pixels):
        r, g, b = pixels[0]
        red, blue = (r - (g + b) / 2).clamp_min(0), (b - (r + g) / 2).clamp_min(0)
        return F.avg_pool2d(torch.stack([red, blue])[None], 8)  # (1, 2, 4, 4)

    def _embed(self, colours, weights):
        pooled = colours.flatten(2)[0] @ weights  # (2,)
        return F.normalize(torch.cat([pooled, torch.tensor([KAPPA])])[None], dim=-1)

    def image_embedding_from(self, pixels, layer):
        with torch.no_grad():
            colours = self._colours(pixels)
        leaf = None
        if layer is not None:
            if layer not in self.layers:
                raise ValueError(f"unknown layer {layer!r}")
            leaf = colours.detach().requires_grad_(True)
            colours = leaf
        with torch.set_grad_enabled(leaf is not None):
            return self._embed(colours, self.focus.softmax(0)), leaf, lambda feature: feature[0]

    def image_embedding_with_attention(self, pixels):
        with torch.no_grad():
            colours = self._colours(pixels)
        logits = self.focus.clone().requires_grad_(True)
        with torch.enable_grad():
            row = torch.cat([torch.zeros(1), logits.softmax(0)])
            attention = torch.cat([row[None], torch.eye(17)[1:]]).expand(2, 17, 17)[None]  # (1, heads, N, N)
            return self._embed(colours, attention[0, :, 0, 1:].mean(0)), [attention]

    def text_embedding_from(self, word_embeddings, ids):
        return F.normalize(word_embeddings.sum(1) + TEXT_BIAS, dim=-1)


def squares(red=("top left",), blue=("bottom right",), height=48, width=96) -> np.ndarray:
    """A black, wide photo with red and/or blue squares in the outer corners of the named quadrants (a quarter
    of the quadrant each: one patch of the 4 x 4 grid once squashed to 32 x 32)."""
    image = np.zeros((height, width, 3), np.uint8)
    qh, qw = height // 4, width // 4
    rows = {"top": slice(0, qh), "bottom": slice(height - qh, height)}
    columns = {"left": slice(0, qw), "right": slice(width - qw, width)}
    for colour, where in (((255, 0, 0), red), ((0, 0, 255), blue)):
        for quadrant in where:
            vertical, horizontal = quadrant.split()
            image[rows[vertical], columns[horizontal]] = colour
    return image


@pytest.fixture(scope="module")
def colours():
    return ColourModel()


COLOUR_PROMPTS = ["a photo of a red square", "a photo of a blue square", "a black picture"]


def test_known_answer_each_colour_map_lies_on_its_square(colours):
    image = squares()
    report = explain_image_text(colours, [image], COLOUR_PROMPTS, IMAGE_METHODS, every_prompt=True)
    assert [p.label for p in report.predictions] == COLOUR_PROMPTS
    # Both colours are present; the black prompt matches least.
    assert report.predictions[2].score < min(report.predictions[0].score, report.predictions[1].score)
    assert len(report.maps) == 2 * len(COLOUR_PROMPTS)
    for explanation in report.maps:
        check_map(explanation, image.shape)
    for method in IMAGE_METHODS:
        red, blue = (next(m for m in report.maps if m.method == method and m.target.index == i) for i in (0, 1))
        red_shares, blue_shares = quadrant_shares(red.scores), quadrant_shares(blue.scores)
        assert red_shares["top left"] > 0.9, (method, red_shares)
        assert blue_shares["bottom right"] > 0.9, (method, blue_shares)


def test_known_answer_relevancy_follows_what_the_class_token_reads():
    """Red squares top left and bottom right; the class token reads only the top-left quadrant. Relevancy
    (gradient x attention) puts the red prompt's evidence top left. Grad-CAM, which weighs whole channels by
    their average gradient, lights both red squares alike: it shows where a feature is, not where it is read."""
    focused = ColourModel(focus=True)
    image = squares(red=("top left", "bottom right"), blue=())
    report = explain_image_text(focused, [image], COLOUR_PROMPTS, IMAGE_METHODS, target=0)
    relevancy = next(m for m in report.maps if m.method == "relevancy")
    gradcam = next(m for m in report.maps if m.method == "gradcam")
    assert quadrant_shares(relevancy.scores)["top left"] > 0.95, quadrant_shares(relevancy.scores)
    shares = quadrant_shares(gradcam.scores)
    assert shares["top left"] == pytest.approx(shares["bottom right"], abs=0.02), shares
    # Moving the red square out of the read quadrant removes the match.
    unread = explain_image_text(focused, [squares(red=("bottom right",), blue=())], COLOUR_PROMPTS)
    assert unread.predictions[0].score < report.predictions[0].score


def test_known_answer_word_relevance_points_at_the_colour_word(colours):
    image = squares(blue=())  # red only
    report = explain_image_text(colours, [image], COLOUR_PROMPTS, ("text-integrated-gradients",), every_prompt=True)
    assert report.target.index == 0
    for relevance in report.words:
        attribution = relevance.attribution
        values = attribution.values
        assert abs(attribution.convergence_delta) <= 0.05 * abs(attribution.output_difference), attribution
        assert all(values[i] == 0.0 for i, s in enumerate(relevance.special) if s)
        assert relevance.tokens[0] == "[CLS]" and relevance.tokens[-1] == "[SEP]"
        top = int(np.abs(values).argmax())
        if relevance.prompt == 0:  # red evidence for the red prompt
            assert relevance.tokens[top] == "red" and values[top] > 0
            assert values[top] > 5 * np.delete(np.abs(values), top).max()
        if relevance.prompt == 1:  # "blue" is evidence against matching a red photo
            assert relevance.tokens[top] == "blue" and values[top] < 0
            assert attribution.output_difference < 0


# --- Maps on a tiny random CLIP -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_photo():
    rng = np.random.default_rng(5)
    image = cv2.resize(rng.integers(0, 256, (6, 15, 3), dtype=np.uint8), (150, 60), interpolation=cv2.INTER_NEAREST)
    return image


def test_tiny_clip_maps_have_the_photo_aspect(tiny_clip, wide_photo):
    prompts = ["a cat", "a dog", "a photo of a cup"]
    for layer in tiny_clip.layers:
        report = explain_image_text(tiny_clip, [wide_photo], prompts, ALL, settings=ClipSettings(layer=layer),
                                    every_prompt=True)
        assert len(report.maps) == 2 * len(prompts)
        for explanation in report.maps:
            check_map(explanation, wide_photo.shape)
            assert explanation.scores.shape[1] > 2 * explanation.scores.shape[0]
        cams = [m for m in report.maps if m.method == "gradcam"]
        assert all(m.layer == layer and m.params == {"layer": layer} for m in cams)
        assert any(m.scores.max() > 0 for m in cams)
        relevancy = [m for m in report.maps if m.method == "relevancy"]
        assert all(m.scores.max() > 0 for m in relevancy)
        assert len(report.words) == len(prompts)
    # The default layer is the last block.
    default = explain_image_text(tiny_clip, [wide_photo], prompts, ("gradcam",))
    assert default.maps[0].layer == "block 2"
    np.testing.assert_allclose(default.maps[0].scores, next(m for m in report.maps if m.method == "gradcam"
                                                             and m.target.index == default.target.index).scores,
                               rtol=1e-5, atol=1e-7)


def test_tiny_clip_probabilities_are_softmax_of_scaled_similarity(tiny_clip, wide_photo):
    prompts = ["a cat", "a dog", "a photo of a cup"]
    report = explain_image_text(tiny_clip, [wide_photo], prompts)
    pixels = tiny_clip.preprocess(wide_photo)
    image = tiny_clip.image_embedding(pixels)
    text = tiny_clip.text_embeddings(tiny_clip.tokenize(prompts))
    similarity = (image @ text.T).numpy()
    np.testing.assert_allclose(report.similarity, similarity, atol=1e-6)
    expected = torch.from_numpy(tiny_clip.scale * similarity).softmax(-1).numpy()
    np.testing.assert_allclose(report.probabilities, expected, atol=1e-6)
    assert [p.score for p in report.predictions] == pytest.approx(expected[0].tolist(), abs=1e-6)
    assert report.target.index == int(expected[0].argmax())
    assert report.maps == () and report.words == ()


# --- The bundled ConSE on real photos -----------------------------------------------------------------

SUBJECT_PROMPTS = ["a photo of a cat", "a photo of a dog", "a cup of coffee", "a rocket", "a bicycle", "a piano"]


@pytest.mark.parametrize(
    "name, subject",
    [("Cat (Chelsea)", "a photo of a cat"), ("Coffee cup", "a cup of coffee"), ("Rocket launch", "a rocket")],
)
def test_conse_the_prompt_naming_the_subject_wins(conse, name, subject):
    report = explain_image_text(conse, [sample(name)], SUBJECT_PROMPTS, ("gradcam",))
    assert report.target.label == subject, [(p.label, round(p.score, 3)) for p in report.predictions]
    assert report.target.score > 0.5
    assert report.model.name == conse.info.name and "ConSE" in report.model.name
    check_map(report.maps[0], sample(name).shape)
    assert report.maps[0].scores.max() > 0


@pytest.fixture(scope="module")
def cat_and_coffee():
    """The cat photo on the left, the coffee photo on the right, both 300 px high, side by side."""

    def fit(rgb):
        return cv2.resize(rgb, (round(rgb.shape[1] * 300 / rgb.shape[0]), 300), interpolation=cv2.INTER_AREA)

    cat, coffee = fit(sample("Cat (Chelsea)")), fit(sample("Coffee cup"))
    return np.concatenate([cat, coffee], axis=1), cat.shape[1]


def test_conse_two_subjects_each_prompt_points_at_its_own(conse, cat_and_coffee):
    """Two subjects in one photo. The samples hold none that ConSE separates: on the astronaut photo "a flag"
    lights the shuttle model on the right, not the flag on the left (ConSE's maps follow the ImageNet classes
    it saw). So this photo is a COMPOSITE made here: the cat sample on the left, the coffee sample on the
    right. Each prompt's Grad-CAM mass must lie mostly on its own subject's side."""
    image, split = cat_and_coffee
    prompts = ["a photo of a cat", "a cup of coffee"]
    report = explain_image_text(conse, [image], prompts, ("gradcam",), every_prompt=True)
    assert len(report.maps) == 2
    fraction = split / image.shape[1]
    for explanation in report.maps:
        check_map(explanation, image.shape)
    cat, coffee = report.maps
    column = round(cat.scores.shape[1] * fraction)
    cat_left = cat.scores[:, :column].sum() / cat.scores.sum()
    coffee_right = coffee.scores[:, column:].sum() / coffee.scores.sum()
    assert cat_left > 0.7, f"cat prompt: {cat_left:.0%} of the map on the cat's side"
    assert coffee_right > 0.7, f"coffee prompt: {coffee_right:.0%} of the map on the coffee's side"


# --- Word relevance: completeness and special tokens ----------------------------------------------------

IG_PROMPTS = ["a photo of a cat", "a tabby cat sleeping on a chair", "a cup of coffee", "a dog", "a rocket launch"]


@pytest.fixture(scope="module")
def conse_words(conse):
    return explain_image_text(conse, [sample("Cat (Chelsea)")], IG_PROMPTS, ("text-integrated-gradients",),
                              every_prompt=True)


@pytest.mark.parametrize("index", range(len(IG_PROMPTS)), ids=IG_PROMPTS)
def test_conse_word_relevance_completeness_and_special_tokens(conse, conse_words, index):
    relevance = conse_words.words[index]
    assert relevance.prompt == index
    attribution = relevance.attribution
    values = attribution.values
    assert values.shape == (len(relevance.tokens),) and np.isfinite(values).all()
    assert abs(attribution.convergence_delta) <= 0.05 * abs(attribution.output_difference), attribution
    assert attribution.convergence_delta == pytest.approx(values.sum() - attribution.output_difference, abs=1e-4)
    assert relevance.tokens[0] == "[CLS]" and relevance.tokens[-1] == "[SEP]"
    specials = [i for i, s in enumerate(relevance.special) if s]
    assert specials == [0, len(relevance.tokens) - 1]
    assert all(values[i] == 0.0 for i in specials)
    assert attribution.params["gradient_steps"] <= ClipSettings().ig_steps
    # f(x) - f(baseline): the prompt's scaled similarity minus that of [PAD] in place of every word.
    prompts = conse.tokenize([IG_PROMPTS[index]])
    ids = prompts.ids
    baseline = ids.clone()
    baseline[0, 1:-1] = conse.pad_id()
    with torch.no_grad():
        image = conse.image_embedding(conse.preprocess(sample("Cat (Chelsea)")))[0]
        f_x = conse.scale * conse.text_embedding_from(conse.word_embeddings(ids), ids)[0] @ image
        f_b = conse.scale * conse.text_embedding_from(conse.word_embeddings(baseline), ids)[0] @ image
    assert attribution.output_difference == pytest.approx(float(f_x - f_b), abs=1e-3)


def test_tiny_clip_word_relevance_completeness_and_special_tokens(tiny_clip, wide_photo):
    prompts = ["a photo of a cat", "dog", "a cup, hot!", "a photo of a very large orange cat"]
    report = explain_image_text(tiny_clip, [wide_photo], prompts, ("text-integrated-gradients",), every_prompt=True)
    assert len(report.words) == len(prompts)
    for relevance in report.words:
        attribution = relevance.attribution
        values = attribution.values
        assert len(values) == len(relevance.tokens) <= 16
        assert relevance.tokens[0] == "<|startoftext|>" and relevance.tokens[-1] == "<|endoftext|>"
        assert all(values[i] == 0.0 for i, s in enumerate(relevance.special) if s)
        assert abs(attribution.convergence_delta) <= 0.05 * abs(attribution.output_difference), (relevance.prompt, attribution)


# --- Prompts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompts", [[], [""], ["   ", "\n\t"]], ids=["none", "empty", "blanks"])
def test_no_prompt_is_a_clear_error(tiny_clip, wide_photo, prompts):
    with pytest.raises(PromptError, match="at least one prompt"):
        clean_prompts(prompts)
    with pytest.raises(PromptError, match="at least one prompt"):
        explain_image_text(tiny_clip, [wide_photo], prompts, ALL)


def test_a_template_without_braces_is_a_clear_error(tiny_clip, wide_photo):
    with pytest.raises(PromptError, match=r"needs \{\}"):
        explain_image_text(tiny_clip, [wide_photo], ["cat", "dog"], template="a photo of a")
    report = explain_image_text(tiny_clip, [wide_photo], ["cat", " dog "], template="a photo of a {}")
    assert report.prompts == ("a photo of a cat", "a photo of a dog")


def test_one_prompt_has_probability_one_and_a_note(tiny_clip, wide_photo):
    report = explain_image_text(tiny_clip, [wide_photo], ["a cat", "  "], ALL)
    assert report.prompts == ("a cat",)
    assert report.target.score == pytest.approx(1.0) and report.probabilities.shape == (1, 1)
    assert any("single prompt" in note for note in report.notes), report.notes
    assert len(report.maps) == 2 and len(report.words) == 1


def test_duplicates_are_used_once_with_a_note(tiny_clip, wide_photo):
    report = explain_image_text(tiny_clip, [wide_photo], ["a cat", "a dog", "A  cat", "a dog"])
    assert report.prompts == ("a cat", "a dog")
    assert report.probabilities.shape == (1, 2)
    duplicates = [note for note in report.notes if "twice" in note]
    assert len(duplicates) == 2 and "A cat" in duplicates[0] and "a dog" in duplicates[1], report.notes


def test_forty_prompts_are_capped_with_a_note(tiny_clip, wide_photo):
    prompts = [f"cat {chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(40)]
    report = explain_image_text(tiny_clip, [wide_photo], prompts)
    assert report.prompts == tuple(prompts[:MAX_PROMPTS])
    assert report.probabilities.shape == (1, MAX_PROMPTS) and len(report.predictions) == MAX_PROMPTS
    assert any("40 prompts" in note and str(MAX_PROMPTS) in note for note in report.notes), report.notes


def test_a_prompt_beyond_the_token_limit_is_cut_with_a_note(tiny_clip, wide_photo):
    long = "a photo of a very large orange cat"  # 2 + 28 tokens, the model reads 16
    report = explain_image_text(tiny_clip, [wide_photo], ["a cat", long], ("text-integrated-gradients",), target=1)
    assert report.prompts == ("a cat", long)  # the prompt is shown as typed
    notes = [note for note in report.notes if "cut" in note]
    assert len(notes) == 1 and "Prompt 2" in notes[0] and "16 tokens" in notes[0], report.notes
    words = report.words[0]
    assert len(words.tokens) == 16 and words.tokens[-1] == "<|endoftext|>"
    # What lies beyond the cut is not read: another ending scores exactly the same.
    other = explain_image_text(tiny_clip, [wide_photo], ["a cat", "a photo of a very loud grey dog"])
    assert any("cut" in note for note in other.notes)
    assert report.similarity[0, 1] == pytest.approx(other.similarity[0, 1], abs=1e-6)
    shorter = explain_image_text(tiny_clip, [wide_photo], ["a cat", "a photo of a very"])
    assert not any("cut" in note for note in shorter.notes)
    assert abs(report.similarity[0, 1] - shorter.similarity[0, 1]) > 1e-4  # one more token ("l") was read


def test_bad_targets_and_methods_are_refused(tiny_clip, conse, wide_photo):
    with pytest.raises(PromptError, match="does not exist"):
        explain_image_text(tiny_clip, [wide_photo], ["a cat", "a dog"], ("gradcam",), target=2)
    with pytest.raises(PromptError, match="prompt number"):
        explain_image_text(tiny_clip, [wide_photo], ["a cat", "a dog"], ("gradcam",), target="cat")
    with pytest.raises(ValueError, match="unknown method"):
        explain_image_text(tiny_clip, [wide_photo], ["a cat", "a dog"], ("integrated-gradients",))
    with pytest.raises(ValueError, match="ViT"):
        explain_image_text(conse, [wide_photo], ["a cat", "a dog"], ("relevancy",))
    with pytest.raises(ValueError, match="no image"):
        explain_image_text(tiny_clip, [], ["a cat", "a dog"])


def test_several_images_give_an_image_by_prompt_matrix(conse):
    images = [sample("Cat (Chelsea)"), sample("Coffee cup"), sample("Rocket launch")]
    prompts = ["a photo of a cat", "a cup of coffee", "a rocket", "a piano"]
    report = explain_image_text(conse, images, prompts, ("gradcam",), image_index=1)
    assert report.probabilities.shape == report.similarity.shape == (3, 4)
    np.testing.assert_allclose(report.probabilities.sum(1), np.ones(3), atol=1e-5)
    assert (np.abs(report.similarity) <= 1 + 1e-5).all()
    assert report.probabilities.argmax(1).tolist() == [0, 1, 2]
    # Predictions, target and maps are those of the chosen image (the coffee).
    assert [p.score for p in report.predictions] == pytest.approx(report.probabilities[1].tolist(), abs=1e-6)
    assert report.target.label == "a cup of coffee"
    check_map(report.maps[0], images[1].shape)
    alone = explain_image_text(conse, [images[1]], prompts, ("gradcam",))
    np.testing.assert_allclose(report.maps[0].scores, alone.maps[0].scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(report.probabilities[1], alone.probabilities[0], atol=1e-6)


@pytest.mark.parametrize("which", ["tiny-clip", "conse"])
def test_every_prompt_gives_one_map_each_and_the_targets_map_is_the_single_run(request, which, wide_photo):
    model = request.getfixturevalue("tiny_clip" if which == "tiny-clip" else "conse")
    image = wide_photo if which == "tiny-clip" else sample("Cat (Chelsea)")
    methods = ALL if model.has_attention else ("gradcam", "text-integrated-gradients")
    prompts = ["a photo of a cat", "a dog", "a cup"]
    every = explain_image_text(model, [image], prompts, methods, target=1, every_prompt=True)
    single = explain_image_text(model, [image], prompts, methods, target=1)
    image_methods = [m for m in methods if m != "text-integrated-gradients"]
    assert len(every.maps) == len(image_methods) * len(prompts)
    assert len(single.maps) == len(image_methods)
    for method in image_methods:
        maps = [m for m in every.maps if m.method == method]
        assert [m.target.index for m in maps] == [0, 1, 2]
        mine = next(m for m in single.maps if m.method == method)
        assert mine.target.index == 1
        np.testing.assert_allclose(maps[1].scores, mine.scores, rtol=1e-5, atol=1e-7)
    assert [w.prompt for w in every.words] == [0, 1, 2] and [w.prompt for w in single.words] == [1]
    np.testing.assert_allclose(every.words[1].attribution.values, single.words[0].attribution.values, rtol=1e-5, atol=1e-6)
    # The record of the target is plain JSON.
    for method in methods:
        record = clip_record(single, method, source="photo.png")
        json.dumps(record)
        assert record["target"]["index"] == 1 and len(record["predictions"]) == 3
        if method == "text-integrated-gradients":
            assert len(record["attribution"]) == len(record["tokens"])
        else:
            shown = next(m for m in single.maps if m.method == method)
            assert record["attribution_shape"] == list(shown.grid.shape)  # the patches or cells, as computed
            assert np.allclose(record["attribution"], shown.grid, rtol=1e-5, atol=1e-7)
            full = clip_record(single, method, source="photo.png", full_size=True)
            assert full["attribution_shape"] == record["full_size_shape"] == list(shown.scores.shape)
            assert np.allclose(full["attribution"], shown.scores, rtol=1e-5, atol=1e-7)


# --- Isolation: threads, hooks, gradients on a shared model ---------------------------------------------


def _hooks(network: nn.Module) -> dict:
    return {
        (name, kind): tuple(getattr(module, kind).values())
        for name, module in network.named_modules()
        for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
        if getattr(module, kind)
    }


def _networks(model) -> list[nn.Module]:
    if hasattr(model, "network"):
        return [model.network]
    return [model.classifier.network, model.encoder.network]


def _lock_is_free(model) -> bool:
    taken = []

    def take():
        if model.lock.acquire(timeout=2):
            taken.append(True)
            model.lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return taken == [True]


def _same(a, b) -> None:
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)
    assert [m.method for m in a.maps] == [m.method for m in b.maps]
    for x, y in zip(a.maps, b.maps):
        np.testing.assert_allclose(x.scores, y.scores, rtol=1e-4, atol=1e-6)
    for x, y in zip(a.words, b.words):
        np.testing.assert_allclose(x.attribution.values, y.attribution.values, rtol=1e-4, atol=1e-5)


class Boom(RuntimeError):
    pass


def _failing_copies(model):
    """The same shared model (networks, lock) failing part way through a request, in three places."""

    def raise_boom(*args, **kwargs):
        raise Boom("failed part way")

    in_words = copy.copy(model)  # predictions and maps are done; Integrated Gradients is under way
    real_text = model.text_embedding_from

    def text_then_boom(word_embeddings, ids):
        if word_embeddings.requires_grad:
            raise Boom("failed during word relevance")
        return real_text(word_embeddings, ids)

    in_words.text_embedding_from = text_then_boom

    in_cam = copy.copy(model)  # the image tower ran with gradients; the map is being made
    real_from = model.image_embedding_from

    def from_then_boom(pixels, layer):
        embedding, leaf, grid = real_from(pixels, layer)
        return embedding, leaf, (raise_boom if leaf is not None else grid)

    in_cam.image_embedding_from = from_then_boom
    failing = [in_words, in_cam]
    if model.has_attention:
        in_relevancy = copy.copy(model)  # attention maps in the graph, one of them broken
        real_attention = model.image_embedding_with_attention

        def attention_then_boom(pixels):
            embedding, maps = real_attention(pixels)
            return embedding, [*maps[:-1], torch.zeros_like(maps[-1]).detach()]

        in_relevancy.image_embedding_with_attention = attention_then_boom
        failing.append(in_relevancy)
    return failing


@pytest.mark.parametrize("which", ["colours", "tiny-clip", "conse"])
def test_no_hooks_and_no_grads_after_success_and_failures(request, which, wide_photo):
    model = request.getfixturevalue({"colours": "colours", "tiny-clip": "tiny_clip", "conse": "conse"}[which])
    networks = _networks(model) if which != "colours" else [model.text_network]
    methods = ALL if model.has_attention else ("gradcam", "text-integrated-gradients")
    before = [_hooks(network) for network in networks]
    assert before == [{}] * len(networks), before  # we never ask transformers for attentions: no hooks at all

    def unchanged():
        assert [_hooks(network) for network in networks] == before
        for network in networks:
            assert_no_hooks_or_grads(network)
        assert _lock_is_free(model)
        assert torch.is_grad_enabled()  # no autograd mode left switched off for the thread

    image = wide_photo if which != "conse" else sample("Coffee cup")
    prompts = ["a photo of a red square", "a cup of coffee", "a dog"]
    good = explain_image_text(model, [image], prompts, methods, every_prompt=True)
    unchanged()

    with pytest.raises(PromptError):
        explain_image_text(model, [image], prompts, methods, target=7)
    unchanged()
    failures = _failing_copies(model)
    for failing in failures:
        with pytest.raises((Boom, RuntimeError)):
            explain_image_text(failing, [image], prompts, methods, every_prompt=True)
        unchanged()
    assert len(failures) == (3 if model.has_attention else 2)

    again = explain_image_text(model, [image], prompts, methods, every_prompt=True)
    _same(again, good)
    unchanged()


@pytest.mark.parametrize("which", ["tiny-clip", "conse"])
def test_threads_sharing_one_model_get_serial_results(request, which):
    model = request.getfixturevalue("tiny_clip" if which == "tiny-clip" else "conse")
    methods = ALL if model.has_attention else ("gradcam", "text-integrated-gradients")
    images = {"cat": sample("Cat (Chelsea)"), "coffee": sample("Coffee cup")}
    prompts = ["a photo of a cat", "a cup of coffee", "a rocket"]
    settings = ClipSettings(ig_steps=24)
    serial = {name: explain_image_text(model, [rgb], prompts, methods, settings=settings) for name, rgb in images.items()}
    if which == "conse":
        assert serial["cat"].target.index == 0 and serial["coffee"].target.index == 1

    results = {name: [] for name in images}
    errors = []
    start = threading.Barrier(len(images))

    def work(name):
        try:
            start.wait()
            for _ in range(3):
                results[name].append(explain_image_text(model, [images[name]], prompts, methods, settings=settings))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(name,)) for name in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name in images:
        assert len(results[name]) == 3
        for report in results[name]:
            assert report.target.index == serial[name].target.index
            _same(report, serial[name])
    for network in _networks(model):
        assert_no_hooks_or_grads(network)

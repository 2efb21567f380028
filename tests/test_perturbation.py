"""Perturbation methods (LIME, Kernel SHAP, Occlusion): known answers on hand-built networks,
properties, settings, reproducibility without global RNG, progress, and nothing left on the model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import assert_no_hooks_or_grads
from explainers.methods import perturbation as P
from explainers.methods.perturbation import (
    kernel_shap_image,
    kernel_shap_words,
    lime_image,
    lime_words,
    occlusion_image,
    occlusion_words,
    superpixels,
)
from test_image_explainers import argmax_inside, mass_inside, red_detector, red_square_image
from test_text_explainers import key_word_classifier

pytestmark = pytest.mark.usefixtures("single_thread")

SAMPLED_IMAGE = (lime_image, kernel_shap_image)
SAMPLED_WORDS = (lime_words, kernel_shap_words)


def probabilities(forward):
    return lambda x: forward(x).softmax(-1)


@pytest.fixture(scope="module")
def red():
    """The red detector, the red square image, its pixels, a black baseline and a segmentation."""
    classifier = red_detector()
    image, box = red_square_image()
    pixels = classifier.preprocess(image)
    black, _ = classifier.pixel_range()
    return classifier, image, box, pixels, black.expand_as(pixels).clone(), superpixels(image, 50)


@pytest.fixture(scope="module")
def words():
    """The key-word network on a text with a two-piece word: (classifier, embeddings, baseline, groups, tokens)."""
    classifier = key_word_classifier("wonderful")
    encoding = classifier.encode("The films were bad but the acting was wonderful!")
    groups = {}
    for i, (special, word) in enumerate(zip(encoding.special, encoding.words)):
        if not special:
            groups.setdefault(word, []).append(i)
    baseline_ids = encoding.ids.clone()
    baseline_ids[0, [i for i, s in enumerate(encoding.special) if not s]] = classifier.pad_id()
    embeddings = classifier.word_embeddings(encoding.ids)
    return classifier, embeddings, classifier.word_embeddings(baseline_ids), list(groups.values()), encoding.tokens


def image_call(method, red, forward=None, labels=None, **settings):
    classifier, image, box, pixels, baseline, segmentation = red
    labels = segmentation if labels is None else labels
    forward = forward or probabilities(classifier.logits)
    if method is occlusion_image:
        return method(forward, pixels, baseline, 1, **{"patch": 8, "stride": 4, **settings})
    return method(forward, pixels, baseline, 1, labels, **{"samples": 100, **settings})


def word_call(method, words, forward=None, target=1, **settings):
    classifier, embeddings, baseline, groups, _ = words
    forward = forward or probabilities(classifier.logits_from)
    if method is occlusion_words:
        return method(forward, embeddings, baseline, target, groups, **settings)
    return method(forward, embeddings, baseline, target, groups, **{"samples": 60, **settings})


# --- Known answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", (lime_image, kernel_shap_image, occlusion_image))
def test_known_answer_red_square(red, method):
    classifier, image, box, *_ = red
    result = image_call(method, red)
    scores = result.attribution.numpy()
    assert scores.shape == image.shape[:2] and np.isfinite(scores).all()
    share = mass_inside(scores, image.shape, box, margin=3)
    assert share > 0.7, (method.__name__, share)
    assert argmax_inside(scores, image.shape, box), method.__name__
    assert scores.max() > 0


@pytest.mark.parametrize("method", (lime_words, kernel_shap_words, occlusion_words))
def test_known_answer_the_key_word_decides(words, method):
    *_, tokens = words
    values = word_call(method, words).attribution.numpy()
    assert values.shape == (len(tokens),) and np.isfinite(values).all()
    top = int(np.abs(values).argmax())
    assert tokens[top] == "wonderful" and values[top] > 0, list(zip(tokens, values.round(3)))
    assert values[top] > 3 * np.delete(np.abs(values), top).max()
    against = word_call(method, words, target=0).attribution.numpy()
    assert tokens[int(np.abs(against).argmax())] == "wonderful" and against.min() < 0  # evidence against


def test_kernel_shap_is_exact_on_a_linear_model_and_complete():
    """f = w . x: every part's Shapley value is w . (x - baseline) over the part, and they sum to f(x) - f(b)."""
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(3, 8, 8, generator=generator)
    pixels, baseline = torch.randn(1, 3, 8, 8, generator=generator), torch.zeros(1, 3, 8, 8)
    forward = lambda x: torch.stack([(x * weights).flatten(1).sum(1), torch.zeros(len(x))], 1)  # noqa: E731
    labels = np.arange(16).reshape(4, 4).repeat(2, 0).repeat(2, 1)
    result = kernel_shap_image(forward, pixels, baseline, 0, labels, samples=40, seed=0)
    contribution = (weights * pixels[0]).sum(0)
    expected = torch.zeros(16).index_add_(0, torch.from_numpy(labels).flatten(), contribution.flatten())
    assert torch.allclose(result.attribution, expected[torch.from_numpy(labels)], atol=1e-4)
    assert result.params == {"segments": 16, "samples": 40, "seed": 0}


# --- Properties ---------------------------------------------------------------------------------


def test_word_values_sit_on_first_pieces_and_special_tokens_stay_zero(words):
    classifier, embeddings, baseline, groups, tokens = words
    assert tokens[:4] == ("[CLS]", "the", "film", "##s") and tokens[-1] == "[SEP]"
    seen = []
    forward = probabilities(classifier.logits_from)

    def watching(x):  # special tokens are never perturbed
        seen.append(x)
        return forward(x)

    for method in (lime_words, kernel_shap_words, occlusion_words):
        result = word_call(method, words, forward=watching)
        assert result.params["words"] == len(groups) == 10  # the special tokens are not parts
        values = result.attribution
        assert values[0] == 0 and values[-1] == 0
        assert values[3] == 0 and values[2] != 0  # "films": all on "film"
        shown = torch.cat(seen)
        assert torch.equal(shown[:, 0], embeddings[0, 0].expand_as(shown[:, 0]))
        assert torch.equal(shown[:, -1], embeddings[0, -1].expand_as(shown[:, -1]))
        seen.clear()
    shap = word_call(kernel_shap_words, words).attribution
    with torch.no_grad():
        ends = forward(torch.cat([embeddings, baseline]))[:, 1]
    assert np.isclose(float(shap.sum()), float(ends[0] - ends[1]), atol=1e-3)  # Kernel SHAP is complete


def test_a_single_word_gets_the_whole_difference():
    classifier = key_word_classifier("wonderful")
    encoding = classifier.encode("wonderful")
    embeddings = classifier.word_embeddings(encoding.ids)
    baseline_ids = encoding.ids.clone()
    baseline_ids[0, 1] = classifier.pad_id()
    baseline = classifier.word_embeddings(baseline_ids)
    forward = probabilities(classifier.logits_from)
    with torch.no_grad():
        ends = forward(torch.cat([embeddings, baseline]))[:, 1]
    for method in (lime_words, kernel_shap_words, occlusion_words):
        values = word_call(method, (classifier, embeddings, baseline, [[1]], None), forward=forward).attribution
        assert torch.allclose(values, torch.tensor([0.0, float(ends[0] - ends[1]), 0.0]), atol=1e-6), method.__name__


def test_superpixels_are_numbered_without_gaps(red):
    _, image, *_ = red
    labels = superpixels(image, 30)
    assert labels.shape == image.shape[:2] and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(int(labels.max()) + 1))
    result = image_call(lime_image, red, labels=labels)
    assert result.params == {"segments": int(labels.max()) + 1, "samples": 100, "seed": 0}


@pytest.mark.parametrize("method", SAMPLED_IMAGE + SAMPLED_WORDS)
def test_same_seed_same_map_and_the_global_rng_is_left_alone(red, words, method):
    call = image_call if method in SAMPLED_IMAGE else word_call
    data = red if method in SAMPLED_IMAGE else words
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = call(method, data, seed=3, samples=30).attribution
    assert torch.equal(torch.get_rng_state(), state), "the call drew from torch's global RNG"
    torch.rand(100)
    torch.randn(7, 7)
    again = call(method, data, seed=3, samples=30).attribution
    other = call(method, data, seed=4, samples=30).attribution
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("method", SAMPLED_IMAGE + (occlusion_image,) + SAMPLED_WORDS + (occlusion_words,))
def test_a_model_that_ignores_its_input_gives_a_zero_map(red, words, method):
    constant = lambda x: torch.full((len(x), 3), 1 / 3)  # noqa: E731
    call = image_call if method.__name__.endswith("image") else word_call
    values = call(method, red if call is image_call else words, forward=constant).attribution
    assert torch.isfinite(values).all() and values.abs().max() < 1e-6


@pytest.mark.parametrize("method", SAMPLED_IMAGE + (occlusion_image,) + SAMPLED_WORDS + (occlusion_words,))
def test_progress_counts_every_forward_up_to_the_total(red, words, method):
    calls = []
    call = image_call if method.__name__.endswith("image") else word_call
    data = red if call is image_call else words
    result = call(method, data, progress=lambda done, total: calls.append((done, total)))
    done, totals = zip(*calls)
    assert len(set(totals)) == 1 and done[-1] == totals[0] == result.forwards
    assert all(a < b for a, b in zip(done, done[1:]))
    assert len(calls) > 1  # batched, but more than one batch
    if method is occlusion_image:
        assert totals[0] == 1 + P.occlusion_windows(64, 96, 8, 4)
    elif method is occlusion_words:
        assert totals[0] == 1 + len(words[3])
    else:
        assert totals[0] == result.params["samples"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r, w: superpixels(r[1], 1), "Segments must be a whole number between 2 and 500 (got 1)."),
        (lambda r, w: superpixels(r[1], 501), "Segments must be a whole number between 2 and 500 (got 501)."),
        (lambda r, w: superpixels(r[1], 50, compactness=0), "Compactness must be between 0.1 and 100 (got 0)."),
        (lambda r, w: image_call(lime_image, r, samples=9),
         "Samples must be a whole number between 10 and 5000 (got 9)."),
        (lambda r, w: image_call(kernel_shap_image, r, samples=5001), "between 10 and 5000 (got 5001)"),
        (lambda r, w: image_call(lime_image, r, samples=50.5), "Samples must be a whole number"),
        (lambda r, w: image_call(kernel_shap_image, r, seed=-1), "Seed must be a whole number between 0 and"),
        (lambda r, w: word_call(lime_words, w, samples=True), "Samples must be a whole number"),
        (lambda r, w: image_call(occlusion_image, r, patch=1), "Patch must be a whole number between 2 and 64 pixels"),
        (lambda r, w: image_call(occlusion_image, r, patch=65), "the input's shorter side (got 65)"),
        (lambda r, w: image_call(occlusion_image, r, patch=8, stride=9),
         "Stride must be a whole number between 1 and 8 pixels, the patch side (got 9)."),
        (lambda r, w: image_call(occlusion_image, r, stride=0), "(got 0)"),
        (lambda r, w: image_call(lime_image, r, labels=np.zeros((8, 8), np.int64)), "must match the pixels"),
        (lambda r, w: occlusion_words(None, w[1], w[2], 1, []), "no words to perturb"),
        (lambda r, w: occlusion_words(None, w[1], w[2], 1, [[1], [1, 2]]), "in two words"),
    ],
)
def test_bad_settings_are_refused_with_a_message(red, words, call, message):
    with pytest.raises(ValueError) as caught:
        call(red, words)
    assert message in str(caught.value)


# --- Nothing left behind on a shared model ------------------------------------------------------


class Boom(RuntimeError):
    pass


def broken(x):
    raise Boom("forward failed")


def test_no_hooks_and_no_grads_on_the_bundled_model(bundled, chelsea):
    """A small input (64 x 96) keeps the real network cheap."""
    pixels = F.interpolate(bundled.preprocess(chelsea), size=(64, 96), mode="bilinear", align_corners=False)
    black, _ = bundled.pixel_range()
    baseline = black.expand_as(pixels).clone()
    labels = superpixels(cv2.resize(chelsea, (96, 64), interpolation=cv2.INTER_AREA), 20)
    forward = probabilities(bundled.logits)
    calls = {"n": 0}

    def failing(x):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Boom("forward failed")
        return forward(x)

    assert_no_hooks_or_grads(bundled.network)
    for method in SAMPLED_IMAGE:
        assert torch.isfinite(method(forward, pixels, baseline, 281, labels, samples=10).attribution).all()
        assert_no_hooks_or_grads(bundled.network)
        calls["n"] = 0
        with pytest.raises(Boom):
            method(failing, pixels, baseline, 281, labels, samples=40)
        assert_no_hooks_or_grads(bundled.network)
    assert torch.isfinite(occlusion_image(forward, pixels, baseline, 281, patch=32, stride=32).attribution).all()
    assert_no_hooks_or_grads(bundled.network)
    calls["n"] = 0
    with pytest.raises(Boom):
        occlusion_image(failing, pixels, baseline, 281, patch=32, stride=16)
    assert_no_hooks_or_grads(bundled.network)


def test_no_hooks_and_no_grads_on_the_red_detector_after_failures(red, words):
    classifier = red[0]
    for method in SAMPLED_IMAGE + (occlusion_image,):
        with pytest.raises(Boom):
            image_call(method, red, forward=broken)
        assert_no_hooks_or_grads(classifier.network)
    for method in SAMPLED_WORDS + (occlusion_words,):
        with pytest.raises(Boom):
            word_call(method, words, forward=broken)
        assert_no_hooks_or_grads(words[0].network)

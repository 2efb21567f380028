"""The image explainers: known answers, properties on real photos, isolation, threads, targets."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import CAT_CLASSES, assert_no_hooks_or_grads
from explainers.methods.gradients import ADAPTIVE_TOLERANCE, integrated_gradients
from explainers.tasks.image import ImageSettings, explain_image, methods_for
from explainers.inputs.targets import TargetError, resolve_target
from models.image_classifier import ImageClassifier, InputPolicy
from models.image_models import imagenet_labels
from models.info import ModelInfo

pytestmark = pytest.mark.usefixtures("single_thread")

ALL_METHODS = ("gradcam", "gradcam++", "layercam", "integrated-gradients", "smoothgrad", "lime", "kernelshap", "occlusion")
CAMS = ("gradcam", "gradcam++", "layercam")
SIGNED = ("integrated-gradients", "lime", "kernelshap", "occlusion")
CHEAP = ImageSettings(ig_steps=9, smoothgrad_samples=4, lime_samples=20, shap_samples=20, occlusion_patch=112)


# --- A network whose answer is known ------------------------------------------------------------


class RedDetector(nn.Module):
    """Class 1 fires on saturated red, class 0 on green, class 2 is a constant.

    stem: per pixel "red minus the other two" and "green minus the other two", ReLU;
    two stride-2 3x3 averaging convolutions; global average pool; a fixed linear head.
    """

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 2, 1)
        self.block1 = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.block2 = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.stem.weight.copy_(torch.tensor([[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5]]).view(2, 3, 1, 1))
            self.stem.bias.fill_(-0.05)
            for block in (self.block1, self.block2):
                block.weight.zero_()
                block.bias.zero_()
                for channel in range(2):
                    block.weight[channel, channel] = 1 / 9
            self.fc.weight.copy_(torch.tensor([[0.0, 20.0], [20.0, 0.0], [0.0, 0.0]]))
            self.fc.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))

    def stages(self):
        return [
            ("stem", lambda x: F.relu(self.stem(x))),
            ("stage 1", lambda x: F.relu(self.block1(x))),
            ("stage 2", lambda x: F.relu(self.block2(x))),
        ]

    def head(self, features):
        return self.fc(features.mean(dim=(-2, -1)))

    def forward(self, x):
        for _, stage in self.stages():
            x = stage(x)
        return self.head(x)


def red_detector() -> ImageClassifier:
    network = RedDetector()
    return ImageClassifier(
        network,
        ["green thing", "red thing", "anything"],
        InputPolicy(mean=(0, 0, 0), std=(1, 1, 1), short_side=64),
        ModelInfo("red detector", "test"),
        stages=network.stages(),
        head=network.head,
    )


def red_square_image(height=64, width=96, side=20, seed=0):
    """Grey with mild noise, a red square in the top-left quadrant; returns the image and the box."""
    rng = np.random.default_rng(seed)
    image = np.clip(128 + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    top, left = 8, 10
    image[top : top + side, left : left + side] = (230, 20, 20)
    return image, (top, left, top + side, left + side)


def mass_inside(scores: np.ndarray, image_shape, box, margin: int = 0) -> float:
    """Share of the positive mass of `scores` inside `box` (given in image pixels)."""
    h, w = image_shape[:2]
    sh, sw = scores.shape
    top, left, bottom, right = box
    rows = slice(max(0, int((top - margin) * sh / h)), int(np.ceil((bottom + margin) * sh / h)))
    cols = slice(max(0, int((left - margin) * sw / w)), int(np.ceil((right + margin) * sw / w)))
    positive = np.clip(scores, 0, None)
    return float(positive[rows, cols].sum() / positive.sum())


def argmax_inside(scores: np.ndarray, image_shape, box, margin: int = 0) -> bool:
    h, w = image_shape[:2]
    sh, sw = scores.shape
    y, x = np.unravel_index(np.argmax(scores), scores.shape)
    y, x = (y + 0.5) * h / sh, (x + 0.5) * w / sw
    top, left, bottom, right = box
    return top - margin <= y <= bottom + margin and left - margin <= x <= right + margin


def test_known_answer_red_square():
    classifier = red_detector()
    image, box = red_square_image()
    area = (box[2] - box[0]) * (box[3] - box[1]) / (image.shape[0] * image.shape[1])

    report = explain_image(
        classifier, image, CAMS + ("integrated-gradients",), target=1, settings=ImageSettings(ig_steps=32)
    )

    assert report.predictions[0].index == 1 and report.predictions[0].label == "red thing"
    assert report.target.index == 1
    assert [e.method for e in report.explanations] == list(CAMS) + ["integrated-gradients"]
    for explanation in report.explanations:
        assert explanation.scores.shape == (64, 96)  # model input resolution, the image's aspect
        assert explanation.target.index == 1
        # The last stage sees the square blurred by two stride-2 3x3 convolutions: allow a few pixels.
        share = mass_inside(explanation.scores, image.shape, box, margin=6)
        assert share > 0.8, (explanation.method, share)
        assert share > 3 * area
        assert argmax_inside(explanation.scores, image.shape, box, margin=4), explanation.method
    ig = report.explanations[-1]
    assert mass_inside(ig.scores, image.shape, box) > 0.9  # pixel-exact: no blurring in IG
    assert abs(ig.convergence_delta) <= 0.05 * abs(ig.output_difference)


def test_known_answer_moves_with_the_square():
    """Same network, the square in the bottom-right instead: the maps must follow it."""
    classifier = red_detector()
    image, (top, left, bottom, right) = red_square_image()
    moved = np.flipud(np.fliplr(image)).copy()
    box = (64 - bottom, 96 - right, 64 - top, 96 - left)
    report = explain_image(classifier, moved, CAMS, target=1)
    for explanation in report.explanations:
        assert mass_inside(explanation.scores, moved.shape, box, margin=6) > 0.8, explanation.method


def test_known_answer_at_a_shallower_layer():
    classifier = red_detector()
    image, box = red_square_image()
    report = explain_image(classifier, image, CAMS, target=1, settings=ImageSettings(layer="stage 1"))
    for explanation in report.explanations:
        assert explanation.layer == "stage 1" and explanation.params == {"layer": "stage 1"}
        assert mass_inside(explanation.scores, image.shape, box, margin=3) > 0.85, explanation.method


# --- Properties on the real model and a real photo ---------------------------------------------


@pytest.fixture(scope="module")
def chelsea_default(bundled, chelsea):
    """Every method, default settings (adaptive IG with its full budget), default target; fewer
    perturbation samples (their defaults are measured in benchmarks/perturbation_speed.py)."""
    return explain_image(bundled, chelsea, ALL_METHODS, settings=ImageSettings(lime_samples=40, shap_samples=40))


def test_every_method_is_available_on_the_bundled_model(bundled):
    assert methods_for(bundled) == ALL_METHODS


def test_every_method_map_has_the_image_aspect_and_is_finite(bundled, chelsea, chelsea_default):
    pixels = bundled.preprocess(chelsea)
    ph, pw = pixels.shape[-2:]
    h, w = chelsea.shape[:2]
    assert abs(ph / pw - h / w) < 0.01
    report = chelsea_default
    assert [e.method for e in report.explanations] == list(ALL_METHODS)
    assert report.target == report.predictions[0]
    assert len(report.predictions) == 5
    scores = [p.score for p in report.predictions]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    for explanation in report.explanations:
        scores_map = explanation.scores
        assert scores_map.ndim == 2 and scores_map.dtype == np.float32
        assert abs(scores_map.shape[0] - ph) <= 1 and abs(scores_map.shape[1] - pw) <= 1, explanation.method
        assert np.isfinite(scores_map).all()
        assert scores_map.std() > 0, explanation.method  # not a constant map
        assert explanation.signed == (explanation.method in SIGNED), explanation.method
        if not explanation.signed:
            assert scores_map.min() >= 0, explanation.method
        assert explanation.target == report.target
        assert explanation.image.shape == chelsea.shape  # small enough to be shown as is
        assert explanation.model.name == bundled.info.name


def test_adaptive_ig_is_complete_on_a_photo(chelsea_default):
    ig = chelsea_default.explanations[ALL_METHODS.index("integrated-gradients")]
    assert ig.params["ig_method"] == "adaptive"
    assert ig.params["gradient_steps"] <= ImageSettings().ig_steps
    assert abs(ig.output_difference) > 1  # the black baseline really scores lower
    assert abs(ig.convergence_delta) <= 0.05 * abs(ig.output_difference)
    # The record's delta is what it claims: sum of attributions minus the output difference.
    gap = float(ig.scores.astype(np.float64).sum()) - ig.output_difference
    assert abs(gap - ig.convergence_delta) <= 1e-3 * abs(ig.output_difference)


def test_an_explicit_target_is_respected(bundled, chelsea):
    default = explain_image(bundled, chelsea, ALL_METHODS, settings=CHEAP)
    tabby = explain_image(bundled, chelsea, ALL_METHODS, target=281, settings=CHEAP)
    assert default.target.index != 281  # the photo's top class is another cat class
    assert tabby.target.index == 281 and tabby.target.label == imagenet_labels()[281]
    assert tabby.predictions == default.predictions  # the target does not change the predictions
    probability = {p.index: p.score for p in tabby.predictions}.get(281)
    if probability is not None:
        assert tabby.target.score == pytest.approx(probability)
    for before, after in zip(default.explanations, tabby.explanations):
        assert after.target.index == 281
        assert before.scores.shape == after.scores.shape
        assert not np.allclose(before.scores, after.scores), after.method
    by_label = explain_image(bundled, chelsea, ("gradcam",), target="tabby cat")
    assert by_label.target.index == 281
    assert np.allclose(by_label.explanations[0].scores, tabby.explanations[0].scores)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_captum_ig_delta_matches_the_map(bundled, chelsea, method):
    settings = ImageSettings(ig_steps=8, ig_method=method)
    (ig,) = explain_image(bundled, chelsea, ("integrated-gradients",), settings=settings).explanations
    assert ig.params["ig_method"] == method and ig.params["gradient_steps"] == 8
    gap = float(ig.scores.astype(np.float64).sum()) - ig.output_difference
    assert abs(gap - ig.convergence_delta) <= 1e-3 * abs(ig.output_difference)


@pytest.mark.parametrize("baseline", ["blurred", "noise"])
def test_other_baselines_keep_the_delta_honest(bundled, chelsea, baseline):
    settings = ImageSettings(ig_steps=9, ig_baseline=baseline, seed=3)
    (ig,) = explain_image(bundled, chelsea, ("integrated-gradients",), settings=settings).explanations
    gap = float(ig.scores.astype(np.float64).sum()) - ig.output_difference
    assert abs(gap - ig.convergence_delta) <= 1e-3 * max(1.0, abs(ig.output_difference))
    assert ig.params["ig_baseline"] == baseline
    assert (ig.params.get("seed") == 3) == (baseline == "noise")


def test_unknown_baseline_and_method_are_refused(bundled, chelsea):
    with pytest.raises(ValueError, match="baseline"):
        explain_image(bundled, chelsea, ("integrated-gradients",), settings=ImageSettings(ig_baseline="white"))
    with pytest.raises(ValueError, match="integration method"):
        explain_image(bundled, chelsea, ("integrated-gradients",), settings=ImageSettings(ig_method="simpson"))
    with pytest.raises(ValueError, match="not available"):
        explain_image(bundled, chelsea, ("saliency",))



def test_smoothgrad_is_reproducible_by_seed(bundled, chelsea):
    settings = ImageSettings(smoothgrad_samples=4)
    first = explain_image(bundled, chelsea, ("smoothgrad",), settings=settings).explanations[0]
    torch.rand(10)  # disturb the global generator in between
    again = explain_image(bundled, chelsea, ("smoothgrad",), settings=settings).explanations[0]
    other = explain_image(bundled, chelsea, ("smoothgrad",), settings=replace(settings, seed=1)).explanations[0]
    assert np.array_equal(first.scores, again.scores)
    assert not np.allclose(first.scores, other.scores)


def test_a_wide_photo_is_explained_with_its_aspect(bundled):
    """A 3:1 banner or panorama: the map must keep the photo's aspect.

    InputPolicy bounds each side to long_side_max separately, so the input is squashed to
    224x448 (2:1) and the record then refuses the map for a 3:1 photo.
    """
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (100, 300, 3), dtype=np.uint8)
    pixels = bundled.preprocess(wide)
    assert abs(pixels.shape[-1] / pixels.shape[-2] - 3) < 0.05, tuple(pixels.shape)
    (explanation,) = explain_image(bundled, wide, ("gradcam",)).explanations
    sh, sw = explanation.scores.shape
    assert abs(sw / sh - 3) < 0.05


# --- Integrated Gradients itself ----------------------------------------------------------------


def _linear(weights: torch.Tensor):
    return lambda x: x.flatten(1) @ weights.T


@pytest.mark.parametrize("method", ["adaptive", "gausslegendre"])
def test_ig_on_a_linear_model_is_weight_times_difference(method):
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(4, 3 * 5 * 7, generator=generator)
    x = torch.randn(1, 3, 5, 7, generator=generator)
    baseline = torch.randn(1, 3, 5, 7, generator=generator)

    result = integrated_gradients(_linear(weights), x, baseline, target=2, steps=16, method=method)

    expected = weights[2].view(1, 3, 5, 7) * (x - baseline)
    assert result.attribution.shape == x.shape
    assert torch.allclose(result.attribution, expected, rtol=1e-5, atol=1e-6)
    assert result.output_difference == pytest.approx(float(expected.sum()), rel=1e-5, abs=1e-5)
    assert abs(result.convergence_delta) < 1e-4 * max(1.0, abs(result.output_difference))
    if method == "adaptive":
        assert result.gradient_steps == 9  # exact after the first uniform pass: no refinement spent


def test_adaptive_ig_refines_where_the_output_changes():
    """A sharp step late on the path: the adaptive rule meets the tolerance; fixed rules given as many
    gradient steps as it used miss it."""
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 4, 4, generator=generator) + 0.5
    baseline = torch.zeros_like(x)
    total = float(x.sum())

    def forward(points):
        s = points.flatten(1).sum(1)
        return torch.stack([torch.sigmoid(200 * (s / total - 0.83)) * 10, s], dim=1)

    adaptive = integrated_gradients(forward, x, baseline, 0, steps=48, method="adaptive")
    assert adaptive.gradient_steps <= 48
    assert adaptive.output_difference == pytest.approx(10 * (torch.sigmoid(torch.tensor(200 * 0.17)) - torch.sigmoid(torch.tensor(-200 * 0.83))).item(), rel=1e-4)
    assert abs(adaptive.convergence_delta) <= ADAPTIVE_TOLERANCE * abs(adaptive.output_difference)
    for method in ("gausslegendre", "riemann_trapezoid"):
        fixed = integrated_gradients(forward, x, baseline, 0, steps=adaptive.gradient_steps, method=method)
        assert fixed.output_difference == pytest.approx(adaptive.output_difference, rel=1e-5)
        assert abs(fixed.convergence_delta) > ADAPTIVE_TOLERANCE * abs(fixed.output_difference), method
        assert abs(adaptive.convergence_delta) * 3 < abs(fixed.convergence_delta), method


def test_ig_through_explain_image_on_a_linear_classifier():
    weights = torch.randn(3, 3 * 8 * 12, generator=torch.Generator().manual_seed(5))
    network = nn.Flatten()
    classifier = ImageClassifier(
        network, ["a", "b", "c"], InputPolicy((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), short_side=8),
        ModelInfo("linear", "test"), logits_fn=_linear(weights),
    )
    rgb = np.random.default_rng(2).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    (ig,) = explain_image(classifier, rgb, ("integrated-gradients",), target=1).explanations
    pixels = classifier.preprocess(rgb)
    black, _ = classifier.pixel_range()
    expected = (weights[1].view(1, 3, 8, 12) * (pixels - black))[0].sum(0)
    assert np.allclose(ig.scores, expected.numpy(), rtol=1e-4, atol=1e-5)
    assert abs(ig.convergence_delta) <= 1e-4 * max(1.0, abs(ig.output_difference))
    assert ig.params["gradient_steps"] == 9


# --- Nothing left behind on a shared model ------------------------------------------------------


def test_no_hooks_and_no_grads_after_every_method(bundled, chelsea):
    assert_no_hooks_or_grads(bundled.network)
    explain_image(bundled, chelsea, ALL_METHODS, settings=CHEAP)
    assert_no_hooks_or_grads(bundled.network)
    for layer in bundled.layers[::3]:
        explain_image(bundled, chelsea, CAMS, settings=ImageSettings(layer=layer))
    assert_no_hooks_or_grads(bundled.network)


def _lock_is_free(classifier) -> bool:
    """Another thread can take the model's lock (a failure must not leave it held)."""
    taken = []

    def take():
        if classifier.lock.acquire(timeout=2):
            taken.append(True)
            classifier.lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return taken == [True]


def test_no_hooks_and_no_grads_after_failures(bundled, chelsea, monkeypatch):
    with pytest.raises(TargetError):
        explain_image(bundled, chelsea, ALL_METHODS, target="no such class", settings=CHEAP)
    assert_no_hooks_or_grads(bundled.network)
    assert _lock_is_free(bundled)

    class Boom(RuntimeError):
        pass

    def failing(stage, when):
        def run(x):
            if when(x):
                raise Boom("stage failed")
            return stage(x)

        return run

    stages = list(bundled._stages)
    # Fails only while gradients flow through the network: predictions and the CAM work, IG fails.
    name, stage = stages[4]
    grad_failing = stages[:4] + [(name, failing(stage, lambda x: x.requires_grad))] + stages[5:]
    monkeypatch.setattr(bundled, "_stages", grad_failing)
    with pytest.raises(Boom):
        explain_image(bundled, chelsea, ("gradcam", "integrated-gradients"), settings=CHEAP)
    assert_no_hooks_or_grads(bundled.network)
    assert _lock_is_free(bundled)

    # Fails after the feature map was taken: inside the graph Grad-CAM differentiates.
    name, stage = stages[-1]
    late_failing = stages[:-1] + [(name, failing(stage, lambda x: True))]
    monkeypatch.setattr(bundled, "_stages", late_failing)
    with pytest.raises(Boom):
        explain_image(bundled, chelsea, ("gradcam",), settings=ImageSettings(layer=bundled.layers[2]))
    assert_no_hooks_or_grads(bundled.network)
    monkeypatch.undo()

    # And the model still gives the same answers afterwards.
    again = explain_image(bundled, chelsea, ("gradcam",))
    assert again.predictions[0].index in CAT_CLASSES
    assert_no_hooks_or_grads(bundled.network)


# --- Threads ------------------------------------------------------------------------------------


def test_threads_sharing_one_classifier_get_serial_results(bundled, chelsea, coffee):
    # The real network at a smaller input size, to keep the many IG runs affordable.
    shared = ImageClassifier(
        bundled.network, bundled.labels, replace(bundled.policy, short_side=112), bundled.info,
        stages=bundled.network.stages(), head=bundled.network.head,
    )
    methods = ("gradcam", "integrated-gradients")
    settings = ImageSettings(ig_steps=16)
    images = {"chelsea": chelsea, "coffee": coffee}
    serial = {name: explain_image(shared, image, methods, settings=settings) for name, image in images.items()}
    assert serial["chelsea"].target.index != serial["coffee"].target.index

    results = {name: [] for name in images}
    errors = []
    start = threading.Barrier(len(images))

    def work(name):
        try:
            start.wait()
            for _ in range(2):
                results[name].append(explain_image(shared, images[name], methods, settings=settings))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(name,)) for name in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name in images:
        assert len(results[name]) == 2
        for report in results[name]:
            assert [p.index for p in report.predictions] == [p.index for p in serial[name].predictions]
            assert np.allclose([p.score for p in report.predictions], [p.score for p in serial[name].predictions])
            assert report.target.index == serial[name].target.index
            for got, expected in zip(report.explanations, serial[name].explanations):
                scale = float(np.abs(expected.scores).max())
                assert np.allclose(got.scores, expected.scores, rtol=1e-4, atol=1e-5 * scale), (name, got.method)
                if expected.convergence_delta is not None:
                    assert got.convergence_delta == pytest.approx(expected.convergence_delta, abs=1e-4 * scale + 1e-4)
    assert_no_hooks_or_grads(bundled.network)


# --- Real weights -------------------------------------------------------------------------------


def test_bundled_model_sees_a_cat_and_looks_at_it(bundled, chelsea):
    report = explain_image(bundled, chelsea, CAMS)
    assert report.predictions[0].index in CAT_CLASSES, report.predictions
    assert sum(p.index in CAT_CLASSES for p in report.predictions) >= 2
    h, w = chelsea.shape[:2]
    for explanation in report.explanations:
        scores = explanation.scores
        sh, sw = scores.shape
        # The cat fills the left four fifths; the right edge is out-of-focus background.
        cat = scores[:, : int(0.8 * sw)]
        background = scores[:, int(0.87 * sw) :]
        cat_share = cat.sum() / scores.sum()
        cat_area = cat.shape[1] / sw
        background_share = background.sum() / scores.sum()
        background_area = background.shape[1] / sw
        assert cat_share > 0.6 and cat_share > cat_area, explanation.method
        assert cat_share / cat_area > 2 * background_share / background_area, explanation.method
        # The face (eyes, nose) is the hottest part of the map.
        y, x = np.unravel_index(np.argmax(scores), scores.shape)
        assert 0.1 * sw < x < 0.8 * sw, explanation.method


def test_bundled_model_other_samples(bundled, coffee, grace_hopper):
    cup = explain_image(bundled, coffee)
    assert cup.predictions[0].label in ("espresso", "cup"), cup.predictions
    assert cup.target == cup.predictions[0] and cup.explanations == ()
    portrait = explain_image(bundled, grace_hopper)
    assert "military uniform" in [p.label for p in portrait.predictions], portrait.predictions


def test_a_large_photo_is_shown_at_display_size(bundled, chelsea):
    big = np.ascontiguousarray(np.repeat(np.repeat(chelsea, 3, axis=0), 3, axis=1))  # 900 x 1353
    report = explain_image(bundled, big, ("gradcam",))
    shown = report.explanations[0].image
    assert max(shown.shape[:2]) == 640 and shown.dtype == np.uint8
    assert abs(shown.shape[0] / shown.shape[1] - 900 / 1353) < 0.01
    assert report.predictions[0].index in CAT_CLASSES


# --- Targets ------------------------------------------------------------------------------------


def test_resolve_target():
    labels = imagenet_labels()
    assert len(labels) == 1000
    assert resolve_target(None, labels, default=7) == 7
    assert resolve_target("  ", labels, default=7) == 7
    assert resolve_target(281, labels, default=7) == 281
    assert resolve_target("281", labels, default=7) == 281
    assert resolve_target(" 0 ", labels, default=7) == 0
    assert resolve_target("tabby cat", labels, default=7) == 281
    assert resolve_target("Tabby", labels, default=7) == 281
    assert resolve_target("Egyptian cat", labels, default=7) == 285
    assert resolve_target("espresso", labels, default=7) == 967  # exact name beats "espresso maker"
    assert resolve_target("military uniform", labels, default=7) == 652

    with pytest.raises(TargetError) as ambiguous:
        resolve_target("cat", labels, default=7)
    message = str(ambiguous.value)
    for index in (281, 282, 283):
        assert f"{index}: {labels[index]}" in message
    assert "more" in message  # more than eight labels contain "cat"

    for index in (1000, -1, "1000", "-3"):
        with pytest.raises(TargetError, match="out of range"):
            resolve_target(index, labels, default=7)
    with pytest.raises(TargetError, match="No class"):
        resolve_target("unicorn", labels, default=7)
    assert issubclass(TargetError, ValueError)

"""The model-randomisation sanity check: known behaviour, the shared model untouched, threads, measures."""

from __future__ import annotations

import hashlib
import json
import pickle
import threading

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from conftest import assert_no_hooks_or_grads
from explainers.evaluation.sanity import THRESHOLD, sanity_check
from explainers.records.sanity import EDGES
from explainers.evaluation.similarity import Comparison, prepare
from explainers.tasks.image import ImageSettings, explain_image
from models.image_classifier import ImageClassifier, InputPolicy
from models.info import ModelInfo
from test_image_explainers import RedDetector, red_detector, red_square_image
from test_image_models import _randomise_norm_statistics, _save, _tiny_resnet, _tiny_vit, no_hub  # noqa: F401

pytestmark = pytest.mark.usefixtures("single_thread")

CHEAP = ImageSettings(ig_steps=9, smoothgrad_samples=4)
PLAIN = red_detector()  # its labels, input policy and info; building one draws from torch's generator


def rebuildable_red_detector(network: RedDetector | None = None) -> ImageClassifier:
    """red_detector() with what the check needs: its parts top-down, and a builder around a copy."""
    network = RedDetector() if network is None else network
    parts = [("head", network.fc), ("stage 2", network.block2), ("stage 1", network.block1), ("stem", network.stem)]
    return ImageClassifier(
        network, PLAIN.labels, PLAIN.policy, PLAIN.info, stages=network.stages(), head=network.head,
        parts=parts, rebuild=rebuildable_red_detector,
    )


def fingerprint(network: torch.nn.Module) -> dict[str, str]:
    tensors = {**dict(network.named_parameters()), **{f"buffer {n}": b for n, b in network.named_buffers()}}
    return {name: hashlib.sha256(t.detach().numpy().tobytes()).hexdigest() for name, t in tensors.items()}


def assert_same(a, b) -> None:
    assert a.as_dict() == b.as_dict()
    assert a.step_bytes == b.step_bytes and a.target == b.target
    for x, y in zip((a.method.original, *a.method.maps), (b.method.original, *b.method.maps)):
        assert np.allclose(x, y, rtol=1e-5, atol=1e-6 * float(np.abs(y).max()))


# --- Known behaviour on a hand-built network ----------------------------------------------------


@pytest.mark.parametrize("method", ["gradcam", "integrated-gradients"])
def test_red_detector_maps_change_and_edges_do_not(method):
    classifier = rebuildable_red_detector()
    image, _ = red_square_image()
    before = fingerprint(classifier.network)
    seen = []

    # Seed 1: with two channels, some seeds (0) flip the red score's gradient negative everywhere and leave
    # Grad-CAM all zeros; that case is test_constant_maps_do_not_crash.
    result = sanity_check(classifier, image, method, 1, CHEAP, seed=1, progress=lambda *args: seen.append(args))

    assert result.steps == ("head", "head + stage 2", "head + stage 2 + stage 1", "head + stage 2 + stage 1 + stem")
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.target.index == 1
    assert all(np.ptp(scores) > 0 for scores in result.method.maps)
    similarity = result.method.similarity
    if method == "gradcam":
        # The random head and stage re-weight and move the two channels Grad-CAM adds up.
        assert similarity[1] < THRESHOLD and min(similarity) < 0 and result.passed
    else:
        # Where the evidence is comes from the stem alone (a per-pixel red detector): the map keeps the
        # red square until the stem itself is random, and fails the step-2 rule, as it should.
        assert min(similarity[:3]) > 0.7 and similarity[3] < 0.3 and not result.passed
    assert result.as_dict()["passed"] is result.passed
    assert result.reference.name == EDGES
    assert result.reference.similarity == (1.0,) * 4 and result.reference.ssim == (1.0,) * 4
    assert not result.reference.passed  # the edge detector is what failing looks like
    assert fingerprint(classifier.network) == before


def test_result_record_is_plain_and_gives_the_json_object():
    classifier = rebuildable_red_detector()
    image, _ = red_square_image()
    result = sanity_check(classifier, image, "integrated-gradients", "red thing", CHEAP, max_steps=2, seed=3)

    record = result.as_dict()
    assert list(record) == ["steps", "similarity", "ssim", "passed"]
    assert record["steps"] == ["head", "head + stage 2"]
    assert all(type(v) is float for v in record["similarity"] + record["ssim"])
    assert json.loads(json.dumps(record)) == record
    assert list(result.reference.as_dict()) == list(record)
    assert result.threshold == THRESHOLD and result.seed == 3 and result.rule_step == 2
    assert len(result.method.maps) == 2 and result.method.maps[0].shape == result.method.original.shape
    assert result.method.signed and result.method.original.dtype == np.float32
    # fc is 3x2 + 3, block2 2x2x3x3 + 2, float32
    assert result.step_bytes == (9 * 4, (9 + 38) * 4)
    again = pickle.loads(pickle.dumps(result))
    assert again.as_dict() == record and np.array_equal(again.method.maps[1], result.method.maps[1])


def test_constant_maps_do_not_crash():
    # Grey photo: the red detector's stem is zero everywhere, so its Grad-CAM is all zeros.
    grey = np.full((64, 96, 3), 128, np.uint8)
    result = sanity_check(rebuildable_red_detector(), grey, "gradcam", 1)
    assert not result.method.original.any()
    assert all(-1 <= s <= 1 for s in result.method.similarity + result.method.ssim)
    # Seed 0 gives every random copy an all-zero Grad-CAM of the red square: no rank relation left.
    image, _ = red_square_image()
    result = sanity_check(rebuildable_red_detector(), image, "gradcam", 1, seed=0)
    assert result.method.original.any() and not any(scores.any() for scores in result.method.maps)
    assert result.method.similarity == (0.0,) * 4 and all(0 < s < 1 for s in result.method.ssim)
    assert result.passed

    rng = np.random.default_rng(0)
    zeros, varying = np.zeros((40, 60)), rng.random((40, 60))
    assert Comparison(zeros, False)(np.zeros((40, 60))) == (1.0, 1.0)
    for a, b in ((zeros, varying), (varying, zeros)):
        rank, ssim = Comparison(a, False)(b)
        assert rank == 0.0 and -1 <= ssim <= 1 and np.isfinite(ssim)


def test_measures_agree_with_scipy_and_use_absolute_values_for_signed_maps():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(80, 120)), rng.normal(size=(80, 120))
    rank, _ = Comparison(a, True)(b)
    expected = spearmanr(prepare(a, True).ravel(), prepare(b, True, (64, 96)).ravel()).statistic
    assert rank == pytest.approx(expected, abs=1e-9)
    assert Comparison(a, True)(-a) == (1.0, 1.0)  # a sign flip is the same evidence
    assert Comparison(a, False)(-a)[0] == pytest.approx(-1.0)
    assert prepare(a, True).shape == (64, 96)  # the common grid keeps the aspect


def test_inputs_are_checked():
    classifier = rebuildable_red_detector()
    image, _ = red_square_image()
    with pytest.raises(ValueError, match="unknown method 'gradkam'"):
        sanity_check(classifier, image, "gradkam")
    for steps in (0, 5, True, 1.5):
        with pytest.raises(ValueError, match="max_steps must be a whole number from 1 to 4"):
            sanity_check(classifier, image, "gradcam", max_steps=steps)
    with pytest.raises(ValueError, match="cannot rebuild itself"):
        sanity_check(red_detector(), image, "gradcam")  # the plain adapter has no builder
    pixels_only = ImageClassifier(
        torch.nn.Linear(1, 1), ["a"], InputPolicy((0, 0, 0), (1, 1, 1), short_side=8), ModelInfo("linear", "test"),
        logits_fn=lambda x: x.mean(dim=(1, 2, 3))[:, None],
    )
    with pytest.raises(ValueError, match="gradcam is not available for linear: it needs a model split"):
        sanity_check(pixels_only, image, "gradcam")
    with pytest.raises(ValueError, match="linear cannot be sanity-checked: its adapter cannot rebuild"):
        sanity_check(pixels_only, image, "smoothgrad")
    nothing = ImageClassifier(
        torch.nn.Identity(), ["a"], pixels_only.policy, ModelInfo("parameterless", "test"),
        logits_fn=lambda x: x.mean(dim=(1, 2, 3))[:, None], rebuild=lambda network: None,
    )
    with pytest.raises(ValueError, match="parameterless cannot be sanity-checked: it has no parts"):
        sanity_check(nothing, image, "smoothgrad")


def test_copies_share_what_stays_and_leave_the_global_generator_alone():
    classifier = rebuildable_red_detector()
    state = torch.get_rng_state()
    copy = classifier.with_random(["head", "stage 2"], seed=5)
    assert torch.equal(state, torch.get_rng_state())
    assert copy.lock is not classifier.lock and copy.randomised == ("head", "stage 2")
    assert "head + stage 2" in copy.info.note
    original, changed = classifier.network, copy.network
    assert changed.stem is original.stem and changed.block1 is original.block1  # shared, not copied
    assert changed.fc is not original.fc and not torch.equal(changed.fc.weight, original.fc.weight)
    assert changed.block2.weight.data_ptr() != original.block2.weight.data_ptr()
    again = classifier.with_random(["head", "stage 2"], seed=5)
    assert torch.equal(again.network.fc.weight, changed.fc.weight)
    assert torch.equal(copy.with_random(["stage 1"], 5).network.fc.weight, changed.fc.weight)  # per part
    assert not torch.equal(classifier.with_random(["head"], seed=6).network.fc.weight, changed.fc.weight)
    with pytest.raises(ValueError, match="unknown part 'stage 9'"):
        classifier.with_random(["stage 9"])


# --- The real bundled model ---------------------------------------------------------------------


def test_bundled_model_is_unchanged_after_a_check_and_after_a_failed_one(bundled, chelsea):
    before = fingerprint(bundled.network)
    result = sanity_check(bundled, chelsea, "integrated-gradients", settings=CHEAP, max_steps=2)
    assert fingerprint(bundled.network) == before
    assert_no_hooks_or_grads(bundled.network)
    assert result.step_bytes[0] == (1000 * 1280 + 1000) * 4  # only the classifier is new memory
    assert result.step_bytes[0] < result.step_bytes[1] < sum(t.nbytes for t in bundled.network.parameters())

    class Boom(RuntimeError):
        pass

    def fail(done, total):
        if done == 2:
            raise Boom

    with pytest.raises(Boom):
        sanity_check(bundled, chelsea, "gradcam", progress=fail)
    assert fingerprint(bundled.network) == before
    assert_no_hooks_or_grads(bundled.network)
    assert bundled.lock.acquire(timeout=1)
    bundled.lock.release()


def test_gradcam_passes_on_the_bundled_model_and_is_reproducible(bundled, chelsea):
    result = sanity_check(bundled, chelsea, "gradcam")
    assert len(result.steps) == 10 and result.steps[1] == "head + head conv"
    assert result.steps[-1].endswith("+ stage 1 + stem")
    assert result.passed, result.method.similarity
    assert result.target.index in range(281, 286)
    for value in result.method.similarity + result.method.ssim:
        assert -1 <= value <= 1
    assert result.reference.similarity == (1.0,) * 10
    first, again = (sanity_check(bundled, chelsea, "gradcam", max_steps=3) for _ in range(2))
    assert_same(first, again)
    other_seed = sanity_check(bundled, chelsea, "gradcam", max_steps=3, seed=1)
    assert other_seed.method.similarity != first.method.similarity


def test_two_threads_checking_at_once_get_serial_results(bundled, chelsea, coffee):
    images = {"chelsea": chelsea, "coffee": coffee}
    serial = {name: sanity_check(bundled, image, "gradcam", max_steps=3) for name, image in images.items()}
    results, errors = {}, []
    start = threading.Barrier(3)

    def check(name):
        try:
            start.wait()
            results[name] = sanity_check(bundled, images[name], "gradcam", max_steps=3)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def reseed_global_generator():  # another session's SmoothGrad on another model, meanwhile
        start.wait()
        image, _ = red_square_image()
        explain_image(red_detector(), image, ("smoothgrad",), settings=ImageSettings(smoothgrad_samples=32))

    threads = [threading.Thread(target=check, args=(name,)) for name in images]
    threads.append(threading.Thread(target=reseed_global_generator))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name in images:
        assert_same(results[name], serial[name])


# --- Hugging Face checkpoints through the loader -----------------------------------------------


def test_tiny_hf_resnet_can_be_checked_and_stays_unchanged(tmp_path, no_hub):  # noqa: F811
    from models.image_models import load_image_classifier

    torch.manual_seed(0)
    model = _tiny_resnet()
    _randomise_norm_statistics(model)
    classifier = load_image_classifier(str(_save(model, tmp_path, {"shortest_edge": 32})))
    image, _ = red_square_image()
    before = fingerprint(classifier.network)

    result = sanity_check(classifier, image, "gradcam", 0)

    assert result.steps[:2] == ("head", "head + stage 4") and result.steps[-1].endswith("+ stage 1 + stem")
    assert all(-1 <= v <= 1 for v in result.method.similarity + result.method.ssim)
    assert fingerprint(classifier.network) == before
    assert_no_hooks_or_grads(classifier.network)


def test_tiny_vit_is_randomised_by_the_parts_it_names(tmp_path, no_hub):  # noqa: F811
    from models.image_models import load_image_classifier

    torch.manual_seed(0)
    classifier = load_image_classifier(str(_save(_tiny_vit(), tmp_path, {"height": 32, "width": 32})))
    before = fingerprint(classifier.network)
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)

    result = sanity_check(classifier, rgb, "integrated-gradients", 2, CHEAP)

    assert result.steps == ("head", "head + encoder layer 1", "head + encoder layer 1 + embeddings")
    assert "not split into stages" in result.note and "head, encoder layer 1, embeddings" in result.note
    assert fingerprint(classifier.network) == before


def test_the_figures_show_every_step_the_edge_reference_and_the_pass_line():
    from explainers.figures.sanity import sanity_chart, sanity_maps_figure, sanity_verdict

    image, _ = red_square_image()
    result = sanity_check(rebuildable_red_detector(), image, "gradcam", 1)
    maps = sanity_maps_figure(result, "Grad-CAM after each step")
    assert len(maps.data) == len(result.steps) + 2  # the original, every step, the edge detector
    titles = [a.text for a in maps.layout.annotations]
    assert titles[0] == "original model" and titles[-1].startswith("edge detector")
    chart = sanity_chart(result, "Grad-CAM")
    assert [list(t.y) for t in chart.data] == [list(result.method.similarity), list(result.method.ssim),
                                               list(result.reference.similarity)]
    assert any(shape.y0 == THRESHOLD for shape in chart.layout.shapes)
    assert sanity_verdict("Grad-CAM", result).startswith("Passes" if result.passed else "Fails")


def test_copies_reuse_the_unchanged_stages_below_and_get_the_same_maps(bundled, chelsea, monkeypatch):
    """A CAM's copy starts from the shared model's outputs below its first random stage: the same maps as
    running every stage, and on the red detector exactly the stages below are taken over."""
    fast = sanity_check(bundled, chelsea, "gradcam", max_steps=4)
    with monkeypatch.context() as patch:
        patch.setattr(ImageClassifier, "reuse_stages", lambda self, pixels, outputs: None)
        slow = sanity_check(bundled, chelsea, "gradcam", max_steps=4)
    shared = explain_image(bundled, chelsea, ("gradcam",)).explanations[0].scores
    for a, b in zip((fast.method.original, *fast.method.maps), (shared, *slow.method.maps)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(np.abs(b).max()))
    assert fast.method.similarity == pytest.approx(slow.method.similarity, abs=1e-6)

    taken = []
    real = ImageClassifier._reusable

    def watching(self, pixels, tracking):
        reused = real(self, pixels, tracking)
        if self.randomised:
            taken.append((self.randomised, tuple(reused)))
        return reused

    monkeypatch.setattr(ImageClassifier, "_reusable", watching)
    image, _ = red_square_image()
    sanity_check(rebuildable_red_detector(), image, "gradcam", 1, CHEAP, seed=1)
    assert taken == [
        (("head",), ("stem", "stage 1", "stage 2")),
        (("head", "stage 2"), ("stem", "stage 1")),
        (("head", "stage 2", "stage 1"), ("stem",)),
        (("head", "stage 2", "stage 1", "stem"), ()),
    ]
    taken.clear()
    sanity_check(rebuildable_red_detector(), image, "integrated-gradients", 1, CHEAP, seed=1, max_steps=1)
    assert all(reused == () for _, reused in taken)  # gradients to the pixels: nothing is taken over

"""LIME, Kernel SHAP and Occlusion through explain_image: known answers, settings, records, faithfulness,
the sanity check, progress and cancelling, and nothing left on the shared model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_no_hooks_or_grads
from explainers.evaluation.sanity import sanity_check
from explainers.records.as_json import image_record
from explainers.tasks.image import ImageSettings, explain_image, occlusion_window
from test_image_explainers import argmax_inside, mass_inside, red_detector, red_square_image
from test_sanity import fingerprint, rebuildable_red_detector

pytestmark = pytest.mark.usefixtures("single_thread")

PERTURBATION = ("lime", "kernelshap", "occlusion")
RED = ImageSettings(lime_samples=100, shap_samples=100, segments=50, occlusion_patch=8, occlusion_stride=4,
                    perturbation_baseline="black")


@pytest.fixture(scope="module")
def red_report():
    classifier = red_detector()
    image, box = red_square_image()
    settings = ImageSettings(**{**RED.__dict__, "faithfulness": True, "faithfulness_steps": 16})
    return classifier, image, box, explain_image(classifier, image, PERTURBATION, target=1, settings=settings)


def test_each_points_at_the_red_square_and_records_what_it_used(red_report):
    classifier, image, box, report = red_report
    assert [e.method for e in report.explanations] == list(PERTURBATION)
    for explanation in report.explanations:
        assert explanation.signed and explanation.scores.shape == (64, 96)
        assert mass_inside(explanation.scores, image.shape, box, margin=3) > 0.7, explanation.method
        assert argmax_inside(explanation.scores, image.shape, box), explanation.method
        params = explanation.params
        assert params["baseline"] == "black" and params["output"] == "probability" and params["forwards"] > 0
    lime, shap, occlusion = (e.params for e in report.explanations)
    assert lime["samples"] == 100 and lime["seed"] == 0 and lime["segments_asked"] == 50
    assert lime["segments"] == shap["segments"] > 10  # one segmentation serves both
    assert occlusion["patch"] == 8 and occlusion["stride"] == 4 and "seed" not in occlusion


def test_each_beats_the_random_reference_on_both_curves(red_report):
    *_, report = red_report
    for explanation in report.explanations:
        measured, random = explanation.faithfulness.curves, explanation.faithfulness.references["random"]
        assert measured.deletion_auc < random.deletion_auc, explanation.method
        assert measured.insertion_auc > random.insertion_auc, explanation.method


def test_the_record_carries_the_settings_and_the_faithfulness_object(red_report):
    *_, report = red_report
    lime = report.explanations[0]
    record = json.loads(json.dumps(image_record(report.model, report.predictions, report.target, lime, "red.png")))
    assert record["method"] == "lime" and record["parameters"]["samples"] == 100 and record["signed"]
    assert set(record["faithfulness"]) >= {"deletion_auc", "insertion_auc", "steps", "replacement", "references"}


def test_the_same_seed_gives_the_same_map_and_another_seed_another():
    classifier = red_detector()
    image, _ = red_square_image()
    maps = {}
    for seed in (0, 0, 1):
        settings = ImageSettings(**{**RED.__dict__, "lime_samples": 30, "shap_samples": 30, "seed": seed})
        report = explain_image(classifier, image, ("lime", "kernelshap"), target=1, settings=settings)
        maps.setdefault(seed, []).append([e.scores for e in report.explanations])
    (first, again), (other,) = maps[0], maps[1]
    for a, b, c in zip(first, again, other):
        assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize(
    "settings, message",
    [
        (ImageSettings(segments=1), "Segments must be a whole number between 2 and 500 (got 1)."),
        (ImageSettings(lime_samples=5), "Samples must be a whole number between 10 and 5000 (got 5)."),
        (ImageSettings(occlusion_patch=65), "Patch must be a whole number between 2 and 64 pixels"),
        (ImageSettings(occlusion_patch=8, occlusion_stride=9), "Stride must be a whole number between 1 and 8"),
        (ImageSettings(perturbation_baseline="noise"), "Hidden parts can become blurred, black, mean"),
    ],
)
def test_bad_settings_are_refused_before_any_model_work(settings, message):
    classifier = red_detector()
    image, _ = red_square_image()
    calls = []
    classifier._logits_fn = classifier.forward_from = lambda *args: calls.append(1)  # any model call is seen
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        explain_image(classifier, image, PERTURBATION, settings=settings)
    assert not calls


def test_the_default_occlusion_window_is_the_same_share_of_any_input():
    assert occlusion_window(ImageSettings(), (224, 337)) == (48, 24)
    assert occlusion_window(ImageSettings(), (32, 32)) == (7, 3)
    assert occlusion_window(ImageSettings(occlusion_patch=20), (224, 224)) == (20, 10)
    assert occlusion_window(ImageSettings(occlusion_patch=20, occlusion_stride=5), (224, 224)) == (20, 5)


def test_progress_names_each_method_and_an_exception_in_it_cancels_cleanly():
    classifier = red_detector()
    image, _ = red_square_image()
    seen = []
    explain_image(classifier, image, ("gradcam",) + PERTURBATION, settings=RED, progress=lambda *a: seen.append(a))
    labels = [what for what, *_ in seen]
    assert labels[0] == "Predicting and computing the Grad-CAM"  # under the model's lock: the wait is over
    assert "LIME (1 of 3)" in labels and "Kernel SHAP (2 of 3)" in labels and "Occlusion (3 of 3)" in labels
    assert any(what.startswith("LIME (1 of 3): ") and what.endswith(" of 100 samples") for what in labels)
    assert any(what.endswith(" patches") for what in labels)

    class Stop(Exception):
        pass

    def cancel(what, done, total):
        if done >= 20:
            raise Stop()

    with pytest.raises(Stop):
        explain_image(classifier, image, PERTURBATION, settings=RED, progress=cancel)
    assert classifier.lock.acquire(timeout=1)
    classifier.lock.release()
    assert_no_hooks_or_grads(classifier.network)


def test_a_sanity_check_of_occlusion_changes_the_map_and_leaves_the_model_alone():
    classifier = rebuildable_red_detector()
    image, _ = red_square_image()
    before = fingerprint(classifier.network)
    result = sanity_check(classifier, image, "occlusion", 1, RED, seed=1)
    assert len(result.steps) == 4 and result.method.similarity[-1] < 0.5
    assert fingerprint(classifier.network) == before
    assert_no_hooks_or_grads(classifier.network)


def test_on_real_weights_revealing_what_lime_and_occlusion_rank_first_beats_a_random_order(bundled, chelsea):
    """Insertion only: on the cat, deleting 8 x 8 cells in a random order blurs the whole cat at once and
    beats every region-level map (LIME, Kernel SHAP, Occlusion) on deletion; the README gives the figures."""
    settings = ImageSettings(lime_samples=100, faithfulness=True, faithfulness_steps=10)
    report = explain_image(bundled, chelsea, ("lime", "occlusion"), settings=settings)
    for explanation in report.explanations:
        measured, random = explanation.faithfulness.curves, explanation.faithfulness.references["random"]
        assert measured.insertion_auc > random.insertion_auc + 0.05, explanation.method
    assert_no_hooks_or_grads(bundled.network)

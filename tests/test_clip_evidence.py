"""Evidence for image-text maps: faithfulness on each prompt's probability, and the sanity check over the
image tower (CLIP's blocks, ConSE's classifier); the shared models left alone."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from conftest import assert_no_hooks_or_grads
from explainers.evaluation.clip_sanity import clip_sanity_check, with_clip_sanity
from explainers.records.as_json import clip_record
from explainers.records.sanity import EDGES
from explainers.tasks.clip import ClipSettings, explain_image_text
from test_clip_cli import run_cli, json_lines, photos  # noqa: F401

pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["a photo of a cat", "a photo of a dog", "a photo of a car"]


def fingerprint(network: torch.nn.Module) -> dict[str, str]:
    tensors = {**dict(network.named_parameters()), **{f"buffer {n}": b for n, b in network.named_buffers()}}
    return {name: hashlib.sha256(t.detach().numpy().tobytes()).hexdigest() for name, t in tensors.items()}


@pytest.fixture(scope="module")
def conse_report(conse, chelsea):
    settings = ClipSettings(faithfulness=True, faithfulness_steps=10, faithfulness_every_prompt=True)
    return explain_image_text(conse, [chelsea], PROMPTS, ("gradcam",), None, settings, every_prompt=True)


def test_each_prompts_map_is_measured_on_that_prompts_probability(conse, chelsea, conse_report):
    report = conse_report
    assert [m.target.index for m in report.maps] == [0, 1, 2]
    for explanation in report.maps:
        f = explanation.faithfulness
        prompt = explanation.target.index
        assert f.curves.deletion[0] == pytest.approx(report.probabilities[0, prompt], abs=1e-4)
        assert f.steps == 10 and set(f.references) == {"random", "centre"}
        for curves in (f.curves, *f.references.values()):
            assert 0 <= curves.deletion_auc <= 1 and 0 <= curves.insertion_auc <= 1
    # References once per prompt: each prompt has its own probability, so its own references.
    cat, dog = report.maps[0].faithfulness, report.maps[1].faithfulness
    assert cat.references["random"].deletion_auc != dog.references["random"].deletion_auc
    # On the cat, revealing what Grad-CAM marks brings "a cat" back faster than a random order.
    assert cat.curves.insertion_auc > cat.references["random"].insertion_auc


def test_by_default_only_the_best_matching_prompts_maps_are_measured(conse, chelsea, conse_report):
    settings = ClipSettings(faithfulness=True, faithfulness_steps=10)
    report = explain_image_text(conse, [chelsea], PROMPTS, ("gradcam",), None, settings, every_prompt=True)
    assert [m.faithfulness is not None for m in report.maps] == [True, False, False]  # the cat wins
    assert report.maps[0].faithfulness.as_dict() == conse_report.maps[0].faithfulness.as_dict()


def test_the_record_carries_faithfulness_for_the_target_prompt(conse_report):
    record = json.loads(json.dumps(clip_record(conse_report, "gradcam", source="cat.png")))
    assert record["target"]["index"] == 0
    assert record["faithfulness"]["deletion"][0] == pytest.approx(record["predictions"][0]["score"], abs=1e-4)


def test_conse_sanity_randomises_its_classifier_and_leaves_it_unchanged(conse, chelsea):
    before = fingerprint(conse.classifier.network)
    seen = []
    result = clip_sanity_check(conse, chelsea, PROMPTS, "gradcam", max_steps=3, progress=lambda *a: seen.append(a))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert result.steps[:2] == ("head", "head + head conv")
    assert result.reference.name == EDGES and result.reference.similarity == (1.0,) * 3
    assert result.passed and result.method.similarity[1] < result.threshold
    assert fingerprint(conse.classifier.network) == before
    assert_no_hooks_or_grads(conse.classifier.network)
    assert conse.randomised == () and conse.lock is conse.classifier.lock


def test_tiny_clip_randomises_its_image_tower_top_down_for_both_maps(tiny_clip, chelsea):
    blocks = len(tiny_clip.layers)
    names = [name for name, _ in tiny_clip.randomisable_parts()]
    assert names == ["head", *[f"block {i}" for i in range(blocks, 0, -1)], "embeddings"]
    before = fingerprint(tiny_clip.network)
    report = explain_image_text(tiny_clip, [chelsea], ["a cat", "a dog"], ("gradcam", "relevancy"), 0,
                                ClipSettings())
    checked = with_clip_sanity(tiny_clip, chelsea, report, ClipSettings())
    for explanation in checked.maps:
        result = explanation.sanity
        assert len(result.steps) == len(names) and result.target.index == 0
        assert all(-1 <= v <= 1 for v in result.method.similarity + result.method.ssim)
        assert min(result.method.similarity) < 0.99, explanation.method  # the maps move
    assert fingerprint(tiny_clip.network) == before
    text_before = [p.clone() for p in tiny_clip.network.text_model.parameters()]
    twin = tiny_clip.with_random(["head", f"block {blocks}"], seed=0)
    # The copy's text tower is the very same modules: nothing of it was copied.
    assert twin.network.text_model is tiny_clip.network.text_model
    assert all(torch.equal(a, b) for a, b in zip(text_before, tiny_clip.network.text_model.parameters()))
    assert twin.randomised == ("head", f"block {blocks}") and "re-initialised" in twin.info.note
    assert not torch.equal(twin.network.visual_projection.weight, tiny_clip.network.visual_projection.weight)


def test_cli_adds_faithfulness_and_sanity_and_refuses_them_for_words(photos):  # noqa: F811
    result = run_cli(photos["cat"], "--model", "conse", "--prompts", "a cat", "a dog", "--template", "a photo of {}",
                     "--method", "gradcam", "--faithfulness", "--faithfulness-steps", "6", "--sanity", "--json")
    assert result.returncode == 0, result.stderr
    (record,) = json_lines(result.stdout)
    assert record["faithfulness"]["steps"] == 6 and set(record["faithfulness"]["references"]) == {"random", "centre"}
    assert {"steps", "similarity", "ssim", "passed"} <= set(record["sanity"])
    assert record["sanity"]["reference"]["name"] == EDGES
    refused = run_cli(photos["cat"], "--model", "conse", "--prompts", "a cat", "--method", "text-integrated-gradients",
                      "--faithfulness")
    assert refused.returncode == 2 and "--faithfulness checks an image map" in refused.stderr
    steps = run_cli(photos["cat"], "--model", "conse", "--prompts", "a cat", "--faithfulness", "--faithfulness-steps", "3")
    assert steps.returncode == 2 and "from 4 to 200" in steps.stderr


def test_bad_faithfulness_settings_are_refused(conse, chelsea):
    with pytest.raises(ValueError, match="from 4 to 200"):
        explain_image_text(conse, [chelsea], PROMPTS, ("gradcam",), None, ClipSettings(faithfulness=True,
                                                                                      faithfulness_steps=1))
    assert np.isfinite(conse.class_embeddings.numpy()).all()

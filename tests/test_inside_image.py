"""Inside an image classifier: the diagram's shapes and parameter counts are the model's, Grad-CAM at each
depth is the page's Grad-CAM at that layer, the head's contributions add up to the logits, and odd photos
and models without stages get a view, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_no_hooks_or_grads, encode
from explainers.inside.image import gradcam_by_depth, inside_image
from explainers.tasks.image import explain_image, upsample
from test_image_models import _randomise_norm_statistics, _tiny_resnet, _tiny_vit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def chelsea_inside(bundled, chelsea, single_thread):
    return inside_image(bundled, chelsea)


@pytest.fixture(scope="module")
def chelsea_depth(bundled, chelsea, single_thread):
    return gradcam_by_depth(bundled, chelsea)


def test_the_diagram_is_the_model(bundled, chelsea, chelsea_inside):
    record = chelsea_inside
    outputs = bundled.stage_outputs(bundled.preprocess(chelsea))
    assert [s.name for s in record.stages] == list(outputs)
    for stage in record.stages:
        assert stage.shape == tuple(outputs[stage.name].shape[1:])
        assert stage.channel_maps.shape == (min(16, stage.shape[0]), *stage.shape[1:])
        assert stage.average.shape == stage.shape[1:]
        # The small multiples are the most active channels, most active first.
        means = outputs[stage.name][0].mean(dim=(-2, -1))
        assert stage.channels[0] == int(means.argmax())
        np.testing.assert_allclose(stage.channel_maps[0], outputs[stage.name][0, stage.channels[0]].numpy(), atol=1e-6)
        assert list(stage.channel_means) == sorted(stage.channel_means, reverse=True)
        values = outputs[stage.name][0].double()
        assert (stage.mean, stage.std, stage.max) == pytest.approx(
            (float(values.mean()), float(values.std(unbiased=False)), float(values.max())), rel=1e-5, abs=1e-6)
        assert stage.active == pytest.approx(float((values > 0).double().mean()))
    total = sum(p.numel() for p in bundled.network.parameters())
    assert record.total_parameters == total == sum(s.parameters for s in record.stages) + record.head_parameters
    assert record.head_parameters == 1280 * 1000 + 1000
    # Receptive fields grow with depth; the stem's 3 x 3 stride-2 convolution sees 3 pixels, 2 apart.
    fields = [s.receptive_field for s in record.stages]
    assert (fields[0], record.stages[0].jump) == (3, 2) and fields == sorted(fields)
    assert record.filters.shape == (32, 3, 3, 3) and 0 <= record.filters.min() and record.filters.max() <= 1
    assert_no_hooks_or_grads(bundled.network)


def test_gradcam_at_every_depth_is_the_pages_gradcam_at_that_layer(bundled, chelsea, chelsea_inside, chelsea_depth):
    record, depth = chelsea_inside, chelsea_depth
    assert depth.stages == tuple(s.name for s in record.stages) and depth.target == record.target
    size = record.input_size
    for name in ("stage 3", "stage 6", "head conv"):
        page = explain_image(bundled, chelsea, ("gradcam",), settings=explain_settings(name)).explanations[0]
        ours = upsample(torch.from_numpy(depth.cam(name)), size).numpy()
        np.testing.assert_allclose(ours, page.scores, atol=1e-5 * max(1.0, float(page.scores.max())))
    # Each map has one value per cell of its stage: resolution falls with depth.
    assert [cam.shape for cam in depth.cams] == [s.shape[1:] for s in record.stages]
    assert depth.cams[0].size > depth.cams[-1].size and all(np.isfinite(cam).all() for cam in depth.cams)
    assert_no_hooks_or_grads(bundled.network)


def test_the_overview_is_one_forward_pass_without_autograd(bundled, chelsea, monkeypatch):
    """The diagram, feature maps and head need no gradient: the overview never builds a graph."""
    seen = []
    original = bundled.stages_and_logits

    def watched(pixels):
        outputs, logits = original(pixels)
        seen.append(any(t.requires_grad for t in (*outputs.values(), logits)))
        return outputs, logits

    monkeypatch.setattr(bundled, "stages_and_logits", watched)
    monkeypatch.setattr(bundled, "stage_gradients", lambda *a: pytest.fail("the overview ran a backward pass"))
    record = inside_image(bundled, chelsea)
    assert seen == [False] and record.stages


def explain_settings(layer):
    from explainers.tasks.image import ImageSettings

    return ImageSettings(layer=layer)


def test_the_heads_contributions_add_up_to_the_logits(bundled, chelsea, chelsea_inside):
    with torch.no_grad():
        logits = bundled.logits(bundled.preprocess(chelsea))[0].double()
    record = chelsea_inside
    assert [c.prediction for c in record.contributions] == list(record.predictions)
    for contribution in record.contributions:
        total = contribution.bias + sum(contribution.values) + contribution.rest
        assert total == pytest.approx(contribution.logit, abs=1e-9)
        assert contribution.logit == pytest.approx(float(logits[contribution.prediction.index]), abs=1e-4)
        sizes = [abs(v) for v in contribution.values]
        assert sizes == sorted(sizes, reverse=True) and len(sizes) == 8
    assert record.pooled_features == 1280 and record.note == ""


def test_a_named_target_is_followed_through_the_stages(bundled, chelsea):
    record, depth = inside_image(bundled, chelsea, target="tabby"), gradcam_by_depth(bundled, chelsea, target="tabby")
    assert record.target.label.startswith("tabby") and depth.target == record.target
    page = explain_image(bundled, chelsea, ("gradcam",), target="tabby").explanations[0]
    ours = upsample(torch.from_numpy(depth.cams[-1]), record.input_size).numpy()
    np.testing.assert_allclose(ours, page.scores, atol=1e-5 * max(1.0, float(page.scores.max())))


@pytest.mark.parametrize("shape", [(16, 16, 3), (9, 1500, 3), (1200, 7, 3)], ids=["tiny", "panorama", "tower"])
def test_tiny_and_extreme_photos_get_a_view(bundled, shape):
    rgb = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    record, depth = inside_image(bundled, rgb), gradcam_by_depth(bundled, rgb)
    # A tiny photo is scaled up to the model's 224 pixels; a sliver keeps its aspect and shrinks to one cell.
    assert min(record.stages[-1].shape[1:]) == (7 if shape[0] == shape[1] else 1)
    for stage, cam in zip(record.stages, depth.cams):
        assert np.isfinite(cam).all() and np.isfinite(stage.channel_maps).all() and cam.shape == stage.shape[1:]


def test_the_receptive_field_bounds_what_a_cell_sees():
    """Empirically (gradients of one output cell with respect to pixels we own): no pixel outside the
    theoretical receptive field moves the cell, and the field's far corners are within reach."""
    from models.image_classifier import InputPolicy
    from models.image_models import _hf_adapter
    from models.info import ModelInfo

    torch.manual_seed(0)
    network = _tiny_resnet()
    _randomise_norm_statistics(network)
    classifier = _hf_adapter(network, InputPolicy((0.5,) * 3, (0.5,) * 3), ModelInfo("tiny resnet", "test"))
    record = inside_image(classifier, np.random.default_rng(1).integers(0, 256, (160, 160, 3), dtype=np.uint8))
    pixels = torch.randn(1, 3, 160, 160, requires_grad=True)
    x = pixels
    for (name, stage), view in zip(classifier.stages, record.stages):
        x = stage(x)
        row, col = x.shape[-2] // 2, x.shape[-1] // 2
        (grad,) = torch.autograd.grad(x[0, :, row, col].sum(), pixels, retain_graph=True)
        rows, cols = np.nonzero(grad[0].abs().sum(0).numpy())
        assert rows.max() - rows.min() + 1 <= view.receptive_field, name
        assert cols.max() - cols.min() + 1 <= view.receptive_field, name
    assert sum(s.parameters for s in record.stages) + record.head_parameters == record.total_parameters
    assert record.contributions and record.contributions[0].logit == pytest.approx(
        float(classifier.logits(classifier.preprocess(record.image))[0].max()), abs=0.5)
    assert_no_hooks_or_grads(network)


def test_a_model_without_stages_says_what_it_cannot_show():
    from models.image_classifier import InputPolicy
    from models.image_models import _hf_adapter
    from models.info import ModelInfo

    network = _tiny_vit()
    classifier = _hf_adapter(network, InputPolicy((0.5,) * 3, (0.5,) * 3, fixed_size=(32, 32)), ModelInfo("tiny vit", "t"))
    record = inside_image(classifier, np.zeros((40, 50, 3), np.uint8))
    assert record.stages == () and record.contributions == ()
    assert "not split into stages" in record.note
    with pytest.raises(ValueError, match="not split into stages"):
        gradcam_by_depth(classifier, np.zeros((40, 50, 3), np.uint8))
    assert record.total_parameters == sum(p.numel() for p in network.parameters())
    assert len(record.predictions) == 3


def test_the_command_line_prints_the_architecture_and_reports_a_bad_file(tmp_path, chelsea):
    photo, broken = tmp_path / "cat.jpg", tmp_path / "broken.jpg"
    photo.write_bytes(encode(chelsea, "JPEG", quality=90))
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XAI_OFFLINE": "1", "XAI_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "explainers", "inside", "image", str(photo), str(broken),
                             "--model", "efficientnet-lite0", "--json"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 1
    good, bad = (json.loads(line) for line in result.stdout.splitlines())
    assert [s["name"] for s in good["stages"]][:2] == ["stem", "stage 1"]
    assert good["stages"][-1]["output_shape"][0] == 1280
    assert good["total_parameters"] == sum(s["parameters"] for s in good["stages"]) + good["head_parameters"]
    assert good["head"][0]["class"] == good["predictions"][0]
    grids = [s["gradcam"]["grid"] for s in good["stages"]]  # Grad-CAM by depth, at each stage's resolution
    assert grids == [s["output_shape"][1:] for s in good["stages"]]
    assert bad["input"] == str(broken) and "image" in bad["error"] and "Traceback" not in result.stderr

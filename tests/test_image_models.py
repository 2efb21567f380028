"""Model loading: Hugging Face checkpoints split into stages, the weight lookup order, the fallback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from models import network as hub_network
from models.image_models import BUNDLED_LABEL, load_image_classifier
from explainers.records.common import PERTURBATION_METHODS, PIXEL_METHODS
from explainers.tasks.image import CAM_VARIANTS, ImageSettings, explain_image, methods_for

pytestmark = pytest.mark.usefixtures("single_thread")

ID2LABEL = {0: "cat", 1: "dog", 2: "car"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}
MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def _tiny_resnet():
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_labels=3,
        id2label=ID2LABEL, label2id=LABEL2ID,
    )
    return ResNetForImageClassification(config).eval()


def _tiny_convnext():
    from transformers import ConvNextConfig, ConvNextForImageClassification

    config = ConvNextConfig(
        hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_labels=3, id2label=ID2LABEL, label2id=LABEL2ID
    )
    return ConvNextForImageClassification(config).eval()


def _tiny_vit():
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=3, id2label=ID2LABEL, label2id=LABEL2ID,
    )
    return ViTForImageClassification(config).eval()


def _save(model, directory: Path, size: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor = {"image_mean": MEAN, "image_std": STD, "size": size}
    (directory / "preprocessor_config.json").write_text(json.dumps(processor))
    return directory


def _randomise_norm_statistics(model) -> None:
    """Fresh BatchNorm layers are the identity in eval mode; real checkpoints are not."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)


@pytest.fixture
def no_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_network, "_verdict", None)


@pytest.mark.parametrize("build", [_tiny_resnet, _tiny_convnext], ids=["resnet", "convnext"])
def test_split_hf_convnet_matches_its_own_forward(tmp_path, build, no_hub):
    torch.manual_seed(0)
    model = build()
    _randomise_norm_statistics(model)
    _save(model, tmp_path, {"shortest_edge": 64})

    classifier = load_image_classifier(str(tmp_path))

    assert classifier.info.name == str(tmp_path)
    assert "local directory" in classifier.info.source
    assert classifier.info.note == ""
    assert classifier.labels == ("cat", "dog", "car")
    assert classifier.layers == ("stage 1", "stage 2", "stage 3", "stage 4")
    assert classifier.default_layer == "stage 4"
    assert classifier.policy.mean == tuple(MEAN) and classifier.policy.std == tuple(STD)
    assert classifier.policy.short_side == 64 and classifier.policy.fixed_size is None
    assert set(methods_for(classifier)) == set(CAM_VARIANTS) | set(PIXEL_METHODS) | set(PERTURBATION_METHODS)

    x = torch.randn(2, 3, 48, 80, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(pixel_values=x).logits
        split, feature = classifier.forward_from(x, None)
        assert feature is None
        # Starting gradients at any stage must not change the logits either.
        for layer in classifier.layers:
            from_layer, feature = classifier.forward_from(x, layer)
            assert feature.is_leaf and feature.requires_grad and feature.shape[0] == 2
            assert torch.allclose(from_layer, expected, atol=1e-5), layer
    assert torch.allclose(split, expected, atol=1e-5), (split - expected).abs().max()
    assert not torch.allclose(expected[0], expected[1])  # the inputs really differ

    # Preprocessing follows the saved processor: short side 64, the photo's aspect, its mean/std.
    rgb = np.full((30, 45, 3), 255, dtype=np.uint8)
    pixels = classifier.preprocess(rgb)
    assert pixels.shape == (1, 3, 64, 96)
    expected_white = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(pixels[0, :, 0, 0], expected_white, atol=1e-5)


def test_tiny_vit_gets_pixel_methods_only(tmp_path, no_hub):
    torch.manual_seed(0)
    model = _tiny_vit()
    _save(model, tmp_path, {"height": 32, "width": 32})

    classifier = load_image_classifier(str(tmp_path))

    assert "local directory" in classifier.info.source
    assert classifier.labels == ("cat", "dog", "car")
    assert classifier.layers == () and classifier.default_layer is None
    assert classifier.policy.fixed_size == (32, 32)
    methods = methods_for(classifier)
    assert not set(CAM_VARIANTS) & set(methods)
    assert set(methods) == set(PIXEL_METHODS) | set(PERTURBATION_METHODS)
    with pytest.raises(ValueError):
        explain_image(classifier, np.zeros((32, 32, 3), np.uint8), ("gradcam",))

    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(classifier.logits(x), model(pixel_values=x).logits, atol=1e-5)

    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    report = explain_image(classifier, rgb, ("integrated-gradients",), target=2, settings=ImageSettings(ig_steps=16))
    (explanation,) = report.explanations
    assert report.target.index == 2 and report.target.label == "car"
    assert explanation.scores.shape == (32, 32)
    assert np.isfinite(explanation.scores).all() and np.abs(explanation.scores).sum() > 0
    assert abs(explanation.convergence_delta) <= 0.05 * abs(explanation.output_difference) + 1e-4


def test_fixed_size_model_explains_a_non_square_photo(tmp_path, no_hub):
    """A ViT takes one input size; a landscape photo must still get a map with the photo's aspect.

    The input is resized to 32x32 whatever the photo's aspect, and the record then refuses the
    32x32 map for a 40x60 photo, so explain_image raises instead of explaining.
    """
    torch.manual_seed(0)
    _save(_tiny_vit(), tmp_path, {"height": 32, "width": 32})
    classifier = load_image_classifier(str(tmp_path))
    rgb = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)

    report = explain_image(classifier, rgb, ("integrated-gradients",), settings=ImageSettings(ig_steps=9))

    (explanation,) = report.explanations
    sh, sw = explanation.scores.shape
    assert abs(sh / sw - 40 / 60) < 0.1


def test_configured_model_folder(tmp_path, monkeypatch, no_hub):
    torch.manual_seed(0)
    model = _tiny_resnet()
    _save(model, tmp_path / "org" / "name", {"shortest_edge": 64})
    monkeypatch.setenv("XAI_MODEL_DIR", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "org/name" must not resolve as a relative directory

    classifier = load_image_classifier("org/name")

    assert classifier.info.name == "org/name"
    assert "configured model folder" in classifier.info.source and "XAI_MODEL_DIR" in classifier.info.source
    assert classifier.info.note == ""
    assert classifier.labels == ("cat", "dog", "car")
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(classifier.logits(x), model(pixel_values=x).logits, atol=1e-5)


def test_configured_folder_without_the_model_falls_back(tmp_path, monkeypatch, no_hub):
    monkeypatch.setenv("XAI_MODEL_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    classifier = load_image_classifier("org/absent")
    assert classifier.info.name == BUNDLED_LABEL
    assert "org/absent" in classifier.info.note


def test_offline_fallback_is_quick_and_says_why(no_hub):
    started = time.perf_counter()
    classifier = load_image_classifier("microsoft/resnet-50")
    elapsed = time.perf_counter() - started

    assert elapsed < 5, f"offline fallback took {elapsed:.1f} s"
    assert classifier.info.name == BUNDLED_LABEL
    assert "bundled" in classifier.info.source
    assert "microsoft/resnet-50" in classifier.info.note
    assert "offline" in classifier.info.note.lower()
    assert len(classifier.labels) == 1000
    # The short name means the same model.
    assert "microsoft/resnet-50" in load_image_classifier("resnet-50").info.note


def _empty(directory: Path) -> None:
    pass


def _garbage_config(directory: Path) -> None:
    (directory / "config.json").write_text("this is not { json")
    (directory / "model.safetensors").write_bytes(bytes(range(256)) * 8)


def _config_without_weights(directory: Path) -> None:
    _tiny_resnet().save_pretrained(directory)
    (directory / "model.safetensors").unlink()


def _truncated_weights(directory: Path) -> None:
    """An interrupted copy or download: the weights file stops half way."""
    _tiny_resnet().save_pretrained(directory)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _unrelated_weights(directory: Path) -> None:
    """A readable weights file that holds none of the model's tensors."""
    from safetensors.torch import save_file

    _tiny_resnet().save_pretrained(directory)
    save_file({"unrelated": torch.zeros(3)}, str(directory / "model.safetensors"), metadata={"format": "pt"})


@pytest.mark.parametrize(
    "fill", [_empty, _garbage_config, _config_without_weights, _truncated_weights, _unrelated_weights],
    ids=["empty", "garbage-config", "no-weights", "truncated-weights", "unrelated-weights"],
)
def test_directory_with_garbage_gives_the_bundled_model(tmp_path, fill, no_hub):
    directory = tmp_path / "my model"
    directory.mkdir()
    fill(directory)

    classifier = load_image_classifier(str(directory))

    assert classifier.info.name == BUNDLED_LABEL
    assert "bundled" in classifier.info.source
    assert str(directory) in classifier.info.note
    assert len(classifier.labels) == 1000


def test_bundled_split_equals_module_forward(bundled, chelsea):
    x = bundled.preprocess(chelsea)
    with torch.no_grad():
        split, feature = bundled.forward_from(x, None)
        whole = bundled.network(x)
        assert feature is None
        assert torch.equal(split, whole)
        assert torch.equal(bundled.logits(x), whole)
        for layer in (bundled.layers[0], bundled.layers[3], bundled.default_layer):
            from_layer, feature = bundled.forward_from(x, layer)
            assert feature.is_leaf and feature.requires_grad
            assert torch.equal(from_layer, whole), layer
    assert bundled.layers[-1] == "head conv" and len(bundled.layers) == 8
    with pytest.raises(ValueError, match="unknown layer"):
        bundled.forward_from(x, "stem")


def test_bundled_names_do_not_touch_the_hub(monkeypatch):
    def fail():
        raise AssertionError("the hub was asked for the bundled model")

    monkeypatch.setattr("models.weights.hub_reachable", fail)
    for name in ("efficientnet-lite0", "bundled", " EfficientNet-Lite0 "):
        classifier = load_image_classifier(name)
        assert classifier.info.name == BUNDLED_LABEL and classifier.info.note == ""


def test_hub_probe_is_decided_once(monkeypatch):
    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("XAI_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setattr(hub_network, "_verdict", None)
    monkeypatch.setattr(hub_network, "_probe", lambda host, port, result: (calls.append(host), result.append(False)))
    assert hub_network.hub_reachable() is False
    assert hub_network.hub_reachable() is False
    assert calls == ["huggingface.co"]


# --- Copies with parts re-initialised (the sanity check) -----------------------------------------

HF_CONV_PARTS = ["head", "stage 4", "stage 3", "stage 2", "stage 1", "stem"]


@pytest.mark.parametrize(
    ("build", "size", "parts"),
    [
        (_tiny_resnet, {"shortest_edge": 32}, HF_CONV_PARTS),
        (_tiny_convnext, {"shortest_edge": 32}, HF_CONV_PARTS),
        (_tiny_vit, {"height": 32, "width": 32}, ["head", "encoder layer 1", "embeddings"]),
    ],
    ids=["resnet", "convnext", "vit"],
)
def test_hf_adapters_rebuild_around_copies(tmp_path, build, size, parts, no_hub):
    torch.manual_seed(0)
    model = build()
    _randomise_norm_statistics(model)
    classifier = load_image_classifier(str(_save(model, tmp_path, size)))
    assert [name for name, _ in classifier.randomisable_parts()] == parts

    unchanged, random_head = classifier.with_random([]), classifier.with_random(["head"], seed=0)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = classifier.logits(x)
        assert torch.equal(unchanged.logits(x), expected)
        assert not torch.allclose(random_head.logits(x), expected)
    assert unchanged.layers == random_head.layers == classifier.layers
    # Only the head is new memory: every other tensor is the shared model's own.
    shared = {id(t) for t in (*classifier.network.parameters(), *classifier.network.buffers())}
    new = [t for t in (*random_head.network.parameters(), *random_head.network.buffers()) if id(t) not in shared]
    head = dict(classifier.randomisable_parts())["head"]
    assert sum(t.numel() for t in new) == sum(p.numel() for p in head.parameters()) > 0


def test_bundled_parts_and_copies(bundled, chelsea):
    stages = [f"stage {i}" for i in range(7, 0, -1)]
    assert [name for name, _ in bundled.randomisable_parts()] == ["head", "head conv", *stages, "stem"]
    x = bundled.preprocess(chelsea)
    with torch.no_grad():
        expected = bundled.logits(x)
        assert torch.equal(bundled.with_random([]).logits(x), expected)
        assert not torch.allclose(bundled.with_random(["stem"]).logits(x), expected)


def test_unsplit_models_offer_the_whole_network_or_say_there_is_nothing():
    from models.image_models import _unsplit_parts

    linear = torch.nn.Linear(2, 2)
    assert _unsplit_parts(linear, None) == [("whole network", linear)]
    assert _unsplit_parts(torch.nn.Identity(), None) == []

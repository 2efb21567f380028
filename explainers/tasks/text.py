"""Explain a text classifier's decision: predictions, token attributions, attention and rollout.

All model work for one request happens under the model's lock: one forward pass with attention
(predictions, every attention map, rollout), then Integrated Gradients on the word embeddings when
asked for. The result is a plain record; the views pick layers, heads and words from it later
without touching the model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.text_classifier import TextClassifier

from ..inputs.targets import resolve_target
from ..methods.gradients import integrated_gradients
from ..records.common import ModelSummary, Prediction
from ..records.text import TextReport, TokenAttribution

TEXT_METHODS = ("integrated-gradients", "attention", "rollout")
MAX_CHARACTERS = 100_000  # beyond any model's token limit; keeps tokenising cheap


class TextInputError(ValueError):
    """The text cannot be classified; the message says why in plain words."""


@dataclass(frozen=True)
class TextSettings:
    ig_steps: int = 64  # a budget for "adaptive"; it stops early once within tolerance
    ig_method: str = "adaptive"


def check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise TextInputError("Please type some text: it is empty.")
    if len(text) > MAX_CHARACTERS:
        raise TextInputError(f"The text has {len(text):,} characters; the limit is {MAX_CHARACTERS:,}.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. undecodable bytes from a command line
        raise TextInputError("The text holds characters that are not valid Unicode; please retype or re-save it.") from None
    return text


def explain_text(
    classifier: TextClassifier,
    text: str,
    methods: Sequence[str] = (),
    target: int | str | None = None,
    settings: TextSettings = TextSettings(),
) -> TextReport:
    unknown = [m for m in methods if m not in TEXT_METHODS]
    if unknown:
        raise ValueError(f"unknown method {', '.join(unknown)}; choose from {', '.join(TEXT_METHODS)}")
    encoding = classifier.encode(check_text(text))
    if all(encoding.special):
        raise TextInputError("The text holds nothing the model can read (only spaces or control characters).")
    with classifier.lock:
        logits, attention = classifier.attend(encoding.ids)
        probabilities = logits[0].softmax(-1)
        order = probabilities.argsort(descending=True).tolist()
        predictions = tuple(Prediction(i, classifier.labels[i], float(probabilities[i])) for i in order)
        index = resolve_target(target, classifier.labels, default=predictions[0].index)
        chosen = Prediction(index, classifier.labels[index], float(probabilities[index]))
        attribution = None
        if "integrated-gradients" in methods:
            attribution = _token_ig(classifier, encoding.ids, encoding.special, index, settings)
    maps = attention.float().numpy()
    return TextReport(
        text=text,
        model=ModelSummary(**classifier.info.as_dict()),
        how=classifier.how,
        pooling=classifier.pooling,
        predictions=predictions,
        target=chosen,
        tokens=encoding.tokens,
        special=encoding.special,
        words=encoding.words,
        spans=encoding.spans,
        total_tokens=encoding.total_tokens,
        max_tokens=classifier.max_tokens,
        cut_at=encoding.cut_at,
        attribution=attribution,
        attention=maps if "attention" in methods else None,
        rollout=attention_rollout(maps) if "rollout" in methods else None,
    )


def _token_ig(classifier: TextClassifier, ids, special, index: int, settings: TextSettings) -> TokenAttribution:
    """IG on the word embeddings; the baseline swaps every real token for [PAD] and keeps [CLS]/[SEP]."""
    baseline_ids = ids.clone()
    baseline_ids[0, [i for i, s in enumerate(special) if not s]] = classifier.pad_id()
    result = integrated_gradients(
        classifier.logits_from,
        classifier.word_embeddings(ids),
        classifier.word_embeddings(baseline_ids),
        index,
        settings.ig_steps,
        settings.ig_method,
    )
    params = {"ig_steps": settings.ig_steps, "ig_method": settings.ig_method, "gradient_steps": result.gradient_steps,
              "baseline": "[PAD] for every token but [CLS] and [SEP]"}
    values = result.attribution[0].sum(-1).float().numpy()
    return TokenAttribution(values, result.convergence_delta, result.output_difference, params)


def attention_rollout(attention: np.ndarray) -> np.ndarray:
    """Abnar & Zuidema 2020: average the heads, add the residual path (0.5 A + 0.5 I), renormalise
    the rows, and multiply the layers: how much each position draws on each input token."""
    size = attention.shape[-1]
    rollout = np.eye(size, dtype=np.float64)
    for layer in attention.astype(np.float64):
        mixed = 0.5 * layer.mean(0) + 0.5 * np.eye(size)
        mixed /= mixed.sum(-1, keepdims=True)
        rollout = mixed @ rollout
    return rollout.astype(np.float32)

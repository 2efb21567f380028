"""Explain a text classifier's decision: predictions, token attributions, attention and rollout.

All model work for one request happens under the model's lock: one forward pass with attention
(predictions, every attention map, rollout), then Integrated Gradients on the word embeddings, then
LIME, Kernel SHAP and Occlusion over words (on the label's probability), then word deletion and
insertion for every token map, when asked for. Every method hides a word the same way: its pieces
become [PAD], the Integrated Gradients baseline; [CLS] and [SEP] never change. The result is a plain
record; the views pick layers, heads and words from it later without touching the model again.
`progress(what, done, total)` hears about long work; an exception raised in it stops the work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from models.text_classifier import Encoding, TextClassifier

from ..evaluation.faithfulness import STEPS, check_steps, measure_word_faithfulness
from ..inputs.targets import resolve_target
from ..methods import perturbation as P
from ..methods.gradients import integrated_gradients
from ..records.common import METHOD_NAMES, PERTURBATION_METHODS, ModelSummary, Prediction
from ..records.text import TextReport, TokenAttribution

WORD_METHODS = PERTURBATION_METHODS  # over words
TEXT_METHODS = ("integrated-gradients", *WORD_METHODS, "attention", "rollout")
Progress = Callable[[str, int, int], None]  # (what is running, done, total)
MAX_CHARACTERS = 100_000  # beyond any model's token limit; keeps tokenising cheap


class TextInputError(ValueError):
    """The text cannot be classified; the message says why in plain words."""


@dataclass(frozen=True)
class TextSettings:
    ig_steps: int = 64  # a budget for "adaptive"; it stops early once within tolerance
    ig_method: str = "adaptive"
    lime_samples: int = P.DEFAULT_WORD_SAMPLES
    shap_samples: int = P.DEFAULT_WORD_SAMPLES
    seed: int = 0  # LIME, Kernel SHAP and faithfulness's random order
    faithfulness: bool = False  # word deletion / insertion for every token map, against a random order
    faithfulness_steps: int = STEPS  # capped at the text's number of words


def check_settings(methods: Sequence[str], settings: TextSettings) -> None:
    """The chosen methods' settings, before any model work (ValueError with a clear message)."""
    if settings.faithfulness:
        check_steps(settings.faithfulness_steps)
    for method, samples in (("lime", settings.lime_samples), ("kernelshap", settings.shap_samples)):
        if method in methods:
            P.check_samples(samples)
    if {"lime", "kernelshap"} & set(methods):
        P.check_seed(settings.seed)


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


def readable_encoding(classifier: TextClassifier, text: str) -> Encoding:
    """The text's encoding, or TextInputError when there is nothing in it the model can read."""
    encoding = classifier.encode(check_text(text))
    if all(encoding.special):
        raise TextInputError("The text holds nothing the model can read (only spaces or control characters).")
    return encoding


def ranked(probabilities: torch.Tensor, labels: Sequence[str]) -> tuple[Prediction, ...]:
    """Every label with its probability, most probable first."""
    order = probabilities.argsort(descending=True).tolist()
    return tuple(Prediction(i, labels[i], float(probabilities[i])) for i in order)


def explain_text(
    classifier: TextClassifier,
    text: str,
    methods: Sequence[str] = (),
    target: int | str | None = None,
    settings: TextSettings = TextSettings(),
    progress: Progress | None = None,
) -> TextReport:
    unknown = [m for m in methods if m not in TEXT_METHODS]
    if unknown:
        raise ValueError(f"unknown method {', '.join(unknown)}; choose from {', '.join(TEXT_METHODS)}")
    check_settings(methods, settings)
    report = progress or (lambda what, done, total: None)
    encoding = readable_encoding(classifier, text)
    with classifier.lock:
        logits, attention = classifier.attend(encoding.ids)
        probabilities = logits[0].softmax(-1)
        predictions = ranked(probabilities, classifier.labels)
        index = resolve_target(target, classifier.labels, default=predictions[0].index)
        chosen = Prediction(index, classifier.labels[index], float(probabilities[index]))
        attribution = None
        if "integrated-gradients" in methods:
            report("Integrated Gradients", 0, 1)
            attribution = _token_ig(classifier, encoding, index, settings)
        chosen_words = [m for m in methods if m in WORD_METHODS]
        perturbations = tuple(_word_map(classifier, encoding, index, method, settings, report, chosen_words)
                              for method in chosen_words)
        if settings.faithfulness and (attribution is not None or perturbations):
            attribution, perturbations = _with_faithfulness(classifier, encoding, index, attribution, perturbations,
                                                            settings, report)
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
        perturbations=perturbations,
    )


def word_groups(encoding: Encoding | TextReport) -> list[list[int]]:
    """Token indices of each word the text holds, in order; special tokens belong to none.
    (A report holds its tokens' `special` and `words` too.)"""
    groups: dict[int, list[int]] = {}
    for position, (special, word) in enumerate(zip(encoding.special, encoding.words)):
        if not special:
            groups.setdefault(position if word is None else word, []).append(position)
    return list(groups.values())


def _embeddings(classifier: TextClassifier, encoding: Encoding) -> tuple[torch.Tensor, torch.Tensor]:
    """The text's word embeddings, and the "empty" text: every real token [PAD], [CLS] and [SEP] kept."""
    baseline_ids = encoding.ids.clone()
    baseline_ids[0, [i for i, s in enumerate(encoding.special) if not s]] = classifier.pad_id()
    return classifier.word_embeddings(encoding.ids), classifier.word_embeddings(baseline_ids)


def _probabilities(classifier: TextClassifier):
    return lambda embeddings: classifier.logits_from(embeddings).softmax(-1)


def _word_map(classifier, encoding, index: int, method: str, settings: TextSettings, report, chosen) -> TokenAttribution:
    """LIME, Kernel SHAP or Occlusion over words, on the label's probability."""
    label = f"{METHOD_NAMES[method]} ({chosen.index(method) + 1} of {len(chosen)})"
    report(label, 0, 1)
    unit = "samples" if method != "occlusion" else "words"

    def counted(done: int, total: int) -> None:
        report(f"{label}: {done} of {total} {unit}", done, total)

    embeddings, empty = _embeddings(classifier, encoding)
    words = word_groups(encoding)
    forward = _probabilities(classifier)
    if method == "occlusion":
        result = P.occlusion_words(forward, embeddings, empty, index, words, counted)
    else:
        run, samples = {"lime": (P.lime_words, settings.lime_samples),
                        "kernelshap": (P.kernel_shap_words, settings.shap_samples)}[method]
        result = run(forward, embeddings, empty, index, words, samples, settings.seed, counted)
    params = {**result.params, "baseline": BASELINE, "output": "probability", "forwards": result.forwards}
    return TokenAttribution(result.attribution.float().numpy(), None, None, params, method)


def _with_faithfulness(classifier, encoding, index: int, attribution, perturbations, settings: TextSettings, report):
    """Word deletion and insertion for every token map on the label's probability; the reference once."""
    maps = ((attribution,) if attribution is not None else ()) + perturbations
    embeddings, empty = _embeddings(classifier, encoding)
    forward = _probabilities(classifier)

    def counted(done: int, total: int) -> None:
        report(f"Faithfulness: {done} of {total} pairs of curves (the reference first)", done, total)

    measured = measure_word_faithfulness(
        lambda batch: forward(batch)[:, index], embeddings, empty, word_groups(encoding),
        {m.method: m.values for m in maps}, settings.faithfulness_steps, settings.seed, counted,
    )
    attribution = replace(attribution, faithfulness=measured[attribution.method]) if attribution is not None else None
    return attribution, tuple(replace(m, faithfulness=measured[m.method]) for m in perturbations)


BASELINE = "[PAD] for every token but [CLS] and [SEP]"


def _token_ig(classifier: TextClassifier, encoding: Encoding, index: int, settings: TextSettings) -> TokenAttribution:
    """IG on the word embeddings, from the empty text (`_embeddings`)."""
    embeddings, empty = _embeddings(classifier, encoding)
    result = integrated_gradients(classifier.logits_from, embeddings, empty, index, settings.ig_steps, settings.ig_method)
    params = {"ig_steps": settings.ig_steps, "ig_method": settings.ig_method, "gradient_steps": result.gradient_steps,
              "baseline": BASELINE}
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

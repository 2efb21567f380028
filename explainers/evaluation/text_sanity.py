"""The model-randomisation check for token attributions (Adebayo et al. 2018), over a transformer's parts.

As for images (sanity.py): the map of one method for one text and label is recomputed on copies of the
model whose parts are re-initialised from the top, cumulatively (the classifier head, then the last
encoder layer, then the one before ... down to the embeddings), and compared with the original after
each step, word by word (a word's value is the sum over its pieces; similarity.VectorComparison). The
model-independent reference is each word's length in characters: it never looks at the model, so it
stays at similarity 1, which is what failing looks like. The same pass rule and threshold as images.

The shared model is only read: each copy (TextClassifier.with_random) shares every tensor it does not
re-initialise and is dropped after its step; the check runs under the model's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from models.text_classifier import TextClassifier

from ..records.common import TOKEN_METHODS
from ..records.sanity import WORD_LENGTHS, SanityResult
from ..records.text import TextReport, TokenAttribution
from ..tasks.text import TextSettings, explain_text, word_groups
from .sanity import RULE_STEP, THRESHOLD, cascade, compared_curve, cumulative, randomisable
from .similarity import VectorComparison



def text_sanity_check(
    classifier: TextClassifier,
    text: str,
    method: str,
    target_index: int | str | None = None,
    settings: TextSettings = TextSettings(),
    seed: int = 0,
    max_steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    original: tuple[TokenAttribution, int] | None = None,
) -> SanityResult:
    """Randomise `classifier`'s parts top-down (`max_steps` of them, all by default) and score `method`'s map.

    `original`: (this method's attribution, the label index it explains), already computed on the shared
    model with these settings. `progress(done, total)` is called after each step."""
    if method not in TOKEN_METHODS:
        raise ValueError(f"unknown method {method!r}; the check compares {', '.join(TOKEN_METHODS)}")
    parts = randomisable(classifier, max_steps)
    settings = replace(settings, faithfulness=False)  # only the maps are compared
    with classifier.lock:
        if original is None:
            report = explain_text(classifier, text, (method,), target_index, settings)
            original = (report.token_map(method), report.target.index)
        attribution, index = original
        first = explain_text(classifier, text, (), index, settings)
        target = next(p for p in first.predictions if p.index == index)
        words = word_groups(classifier.encode(text))

        def recompute(twin: TextClassifier) -> np.ndarray:
            return per_word(explain_text(twin, text, (method,), index, settings).token_map(method).values, words)

        maps, step_bytes = cascade(classifier, parts, recompute, seed, progress)
    steps = cumulative(parts)
    rule_step = min(RULE_STEP, len(parts))
    lengths = word_lengths(first, words)
    return SanityResult(
        method=compared_curve(method, True, steps, per_word(attribution.values, words), maps, rule_step, VectorComparison),
        reference=compared_curve(WORD_LENGTHS, False, steps, lengths, [lengths] * len(parts), rule_step, VectorComparison),
        model=classifier.info.name,
        target=target,
        note=f"Re-initialised top-down, one part per step: {', '.join(parts)}. Maps are compared word by word.",
        threshold=THRESHOLD,
        rule_step=rule_step,
        seed=seed,
        step_bytes=tuple(step_bytes),
    )


def with_text_sanity(classifier: TextClassifier, report: TextReport, settings: TextSettings,
                     progress: Callable[[int, int], None] | None = None) -> TextReport:
    """The report with a sanity check attached to each of its token maps (`progress` counts all steps)."""
    maps = report.token_maps
    if not maps:
        return report
    total = len(maps) * len(randomisable(classifier, None))
    checked, done = {}, 0
    for attribution in maps:
        def step(k, _n, before=done):
            if progress is not None:
                progress(before + k, total)

        result = text_sanity_check(classifier, report.text, attribution.method, settings=settings,
                                   progress=step, original=(attribution, report.target.index))
        done += len(result.steps)
        checked[attribution.method] = replace(attribution, sanity=result)
    ig = checked.get("integrated-gradients")
    return replace(report, attribution=ig if ig is not None else report.attribution,
                   perturbations=tuple(checked[m.method] for m in report.perturbations))


def per_word(values: np.ndarray, words) -> np.ndarray:
    return np.array([float(np.asarray(values)[list(pieces)].sum()) for pieces in words], dtype=np.float32)


def word_lengths(report: TextReport, words) -> np.ndarray:
    """Characters of each word as the text spells it: a "map" that never looks at the model."""
    return np.array([report.spans[p[-1]][1] - report.spans[p[0]][0] for p in words], dtype=np.float32)



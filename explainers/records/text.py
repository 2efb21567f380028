"""Plain records of a text explanation, and the ways views group its tokens: no torch here.

Figures, exports and the page read these; only explainers/tasks/text.py builds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import ModelSummary, Prediction
from .faithfulness import Faithfulness
from .sanity import SanityResult


@dataclass(frozen=True)
class TokenAttribution:
    """One signed value per token for one label: Integrated Gradients (with its completeness check) or a
    perturbation method over words (LIME, Kernel SHAP, Occlusion: the word's value on its first piece)."""

    values: np.ndarray  # (T,) special tokens are 0 by construction
    convergence_delta: float | None  # sum(values) - (f(x) - f(baseline)); None where nothing promises it
    output_difference: float | None  # f(x) - f(baseline) of the explained output
    params: dict
    method: str = "integrated-gradients"
    faithfulness: Faithfulness | None = None  # word deletion / insertion against a random order, when asked
    sanity: SanityResult | None = None  # the model-randomisation check over the encoder's layers, when asked


@dataclass(frozen=True)
class TextReport:
    text: str
    model: ModelSummary
    how: str  # how the model turns text into a label, in one sentence
    pooling: str  # "cls" or "mean": which positions the classifier reads
    predictions: tuple[Prediction, ...]  # every label, most probable first
    target: Prediction
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    words: tuple[int | None, ...]
    spans: tuple[tuple[int, int], ...]
    total_tokens: int
    max_tokens: int
    cut_at: int | None  # character where the text was truncated
    attribution: TokenAttribution | None = None  # Integrated Gradients
    attention: np.ndarray | None = None  # (layers, heads, T, T), rows sum to 1
    rollout: np.ndarray | None = None  # (T, T)
    perturbations: tuple[TokenAttribution, ...] = ()  # LIME, Kernel SHAP, Occlusion, in the order asked

    @property
    def token_maps(self) -> tuple[TokenAttribution, ...]:
        """Every per-token attribution: Integrated Gradients first, then the perturbation methods."""
        return ((self.attribution,) if self.attribution is not None else ()) + self.perturbations

    def token_map(self, method: str) -> TokenAttribution | None:
        return next((m for m in self.token_maps if m.method == method), None)

    @property
    def truncation_notice(self) -> str | None:
        if self.cut_at is None:
            return None
        tail = self.text[max(0, self.cut_at - 40) : self.cut_at].replace("\n", " ")
        return (
            f"The text needs {self.total_tokens} tokens; {self.model.name} reads at most {self.max_tokens}. "
            f"It was cut after character {self.cut_at} of {len(self.text)}, after “…{tail}”."
        )


def classifier_view(report: TextReport) -> np.ndarray:
    """The rollout row(s) the classifier reads: [CLS] for a CLS head, the mean of all rows for mean pooling."""
    return report.rollout[0] if report.pooling == "cls" else report.rollout.mean(0)


def token_groups(report: TextReport, merge_words: bool, hide_special: bool) -> list[tuple[str, list[int]]]:
    """Display units: (label, token indices). Word pieces merge into the text's own word when asked."""
    groups: list[tuple[str, list[int]]] = []
    for i, (token, special, word) in enumerate(zip(report.tokens, report.special, report.words)):
        if special:
            if not hide_special:
                groups.append((token, [i]))
            continue
        if merge_words and groups and word is not None and report.words[groups[-1][1][-1]] == word:
            groups[-1][1].append(i)
            continue
        groups.append((token, [i]))
    if merge_words:
        groups = [(_text_of(report, idx) if not report.special[idx[0]] else label, idx) for label, idx in groups]
    return groups


def _text_of(report: TextReport, indices: list[int]) -> str:
    start, end = report.spans[indices[0]][0], report.spans[indices[-1]][1]
    return report.text[start:end] or report.tokens[indices[0]]


def grouped_values(values: np.ndarray, groups: list[tuple[str, list[int]]]) -> np.ndarray:
    """Sum per group: a word's attribution is the sum of its pieces, so completeness still holds."""
    return np.array([values[idx].sum() for _, idx in groups], dtype=np.float64)

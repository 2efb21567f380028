"""Agreement between methods on one photo and class: rank correlation and overlap of their top regions.

Maps are compared as the sanity check compares them (explainers/evaluation/similarity.py): on one common
grid, signed maps by absolute value. The overlap is the intersection over union of each map's top 10% of
cells; ties at the cut are broken by position, so the top set always has the same size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..records.agreement import Agreement
from ..records.common import ImageExplanation
from .similarity import Comparison, prepare

TOP_SHARE = 0.10
SAME = 0.995  # rank correlation from which two maps are called practically the same map


def agreement(explanations: Sequence[ImageExplanation], titles: Sequence[str]) -> Agreement:
    count = len(explanations)
    spearman, overlap = np.eye(count), np.eye(count)
    shape = prepare(explanations[0].scores, explanations[0].signed).shape
    tops = [_top(prepare(e.scores, e.signed, shape)) for e in explanations]
    for i in range(count):
        for j in range(i + 1, count):
            signed = explanations[i].signed or explanations[j].signed
            compare = Comparison(explanations[i].scores, signed)
            spearman[i, j] = spearman[j, i] = compare(explanations[j].scores)[0]
            overlap[i, j] = overlap[j, i] = len(tops[i] & tops[j]) / len(tops[i] | tops[j])
    same = tuple((i, j) for i in range(count) for j in range(i + 1, count) if spearman[i, j] >= SAME)
    return Agreement(tuple(e.method for e in explanations), tuple(titles), spearman, overlap, TOP_SHARE, same)


def _top(values: np.ndarray) -> set[int]:
    keep = max(1, round(TOP_SHARE * values.size))
    return set(np.argsort(-values.ravel(), kind="stable")[:keep].tolist())

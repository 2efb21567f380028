"""Plain record of how much several maps of one photo and class agree: no torch here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    methods: tuple[str, ...]  # method ids, in the order of the matrices' rows and columns
    titles: tuple[str, ...]  # what the figure calls them
    spearman: np.ndarray  # (n, n) rank correlation of the maps (signed maps by absolute value)
    overlap: np.ndarray  # (n, n) intersection over union of the top TOP_SHARE of each map
    top_share: float
    same: tuple[tuple[int, int], ...]  # pairs (i < j) that are practically one map

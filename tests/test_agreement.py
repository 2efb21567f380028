"""Agreement between methods: rank correlation and top-10% overlap of maps, and "one map" notes."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.evaluation.agreement import agreement
from explainers.figures.agreement import agreement_figure, same_map_notes
from explainers.records.common import ImageExplanation, ModelSummary, Prediction

IMAGE = np.zeros((64, 96, 3), dtype=np.uint8)


def explanation(method: str, scores: np.ndarray, signed: bool = False) -> ImageExplanation:
    return ImageExplanation(method, Prediction(1, "thing", 0.5), IMAGE, scores.astype(np.float32), signed,
                            ModelSummary("m", "test"), layer="stage 2" if "cam" in method else None)


def test_known_maps_give_known_agreement():
    rng = np.random.default_rng(0)
    base = rng.random((64, 96))
    left = np.zeros((64, 96))
    left[:, :48] = np.linspace(1, 2, 48)
    maps = [
        explanation("gradcam", base),
        explanation("layercam", 3 * base + 1),  # a monotone rescaling: the same map
        explanation("integrated-gradients", -base, signed=True),  # same magnitudes, sign flipped
        explanation("smoothgrad", left),
    ]
    result = agreement(maps, ["A", "B", "C", "D"])
    assert result.spearman[0, 1] == pytest.approx(1) and result.overlap[0, 1] == pytest.approx(1)
    assert result.spearman[0, 2] == pytest.approx(1)  # signed maps are compared by absolute value
    assert abs(result.spearman[0, 3]) < 0.2 and result.overlap[0, 3] < 0.3
    assert np.allclose(result.spearman, result.spearman.T) and np.allclose(np.diag(result.overlap), 1)
    assert (0, 1) in result.same and (0, 3) not in result.same
    notes = same_map_notes(result, at_last_layer=True)
    assert notes[0].startswith("A and B are practically the same map here")
    assert "global average pooling" in notes[-1]
    assert not any("global average pooling" in n for n in same_map_notes(result, at_last_layer=False))
    figure = agreement_figure(result)
    assert [list(map(list, t.z)) for t in figure.data] == [result.spearman.tolist(), result.overlap.tolist()]


def test_top_overlap_counts_a_tenth_of_the_cells_even_with_ties():
    flat = np.zeros((64, 96))
    half = np.zeros((64, 96))
    half[:6, :] = 1  # about a tenth of the rows
    result = agreement([explanation("gradcam", flat), explanation("smoothgrad", half)], ["flat", "half"])
    assert 0 <= result.overlap[0, 1] <= 1 and result.spearman[0, 1] == 0  # a constant map has no ranking

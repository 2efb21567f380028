"""How alike two attribution maps are, as the model-randomisation check compares them (Adebayo et al. 2018).

Both maps are first brought to one footing (`prepare`):

- Signed maps (Integrated Gradients) are compared by absolute value, as Adebayo et al. do: how much a
  pixel matters, whichever way it pushes; otherwise a sign flip alone would read as a complete change.
- Both are resized, area-averaged, to a common grid: short side COMMON_SHORT_SIDE px, the first map's
  aspect. Maps from different input sizes then compare; a CAM holds no finer detail anyway (a 7x11 grid
  upsampled); finer detail in a pixel map is mostly noise; and both measures cost about a millisecond,
  small next to the explanation they judge. The grid matters for pixel maps: per-pixel gradient noise,
  uncorrelated between models, lowers Spearman at full resolution (Integrated Gradients with 16 steps,
  Grace Hopper, head and last stage random: 0.50 at 224 px, 0.86 on the grid, where the photo shows).
- Spearman rank correlation needs no further normalisation (any monotone rescaling keeps the ranks).
- SSIM compares maps min-max normalised to [0, 1] (data_range 1, skimage's default 7x7 window).

A constant map (all zeros, say: a Grad-CAM whose ReLU removed everything) has no ranking and no structure,
so the usual formulas divide by zero. Defined here: two constant maps are alike (1 for both measures:
nothing tells them apart); a constant map against a varying one has Spearman 0 (no rank relation) and the
ordinary SSIM of the normalised maps, a constant one normalising to all zeros (SSIM's stabilising constants
keep that finite). Identical maps score exactly 1 without being computed.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.stats import rankdata
from skimage.metrics import structural_similarity

COMMON_SHORT_SIDE = 64


def common_shape(shape: tuple[int, int]) -> tuple[int, int]:
    scale = COMMON_SHORT_SIDE / min(shape)
    return max(COMMON_SHORT_SIDE, round(shape[0] * scale)), max(COMMON_SHORT_SIDE, round(shape[1] * scale))


def prepare(scores: np.ndarray, signed: bool, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The map as compared: absolute values when signed, float64 on the common grid (or `shape`)."""
    values = np.abs(scores) if signed else scores
    height, width = shape or common_shape(values.shape)
    shrinking = height * width < values.size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(values.astype(np.float32), (width, height), interpolation=interpolation).astype(np.float64)


class Comparison:
    """Spearman and SSIM of any map against one original, whose ranks and normalised form are kept."""

    def __init__(self, original: np.ndarray, signed: bool):
        self.signed = signed
        self.map = prepare(original, signed)
        self._ranks = _centred_ranks(self.map)
        self._unit = _unit_range(self.map)

    def __call__(self, scores: np.ndarray) -> tuple[float, float]:
        other = prepare(scores, self.signed, self.map.shape)
        if np.array_equal(other, self.map):
            return 1.0, 1.0
        return _spearman(self._ranks, _centred_ranks(other)), _ssim(self._unit, _unit_range(other))


def spearman(a: np.ndarray, b: np.ndarray, signed: bool = False) -> float:
    return Comparison(a, signed)(b)[0]


def ssim(a: np.ndarray, b: np.ndarray, signed: bool = False) -> float:
    return Comparison(a, signed)(b)[1]


def _centred_ranks(values: np.ndarray) -> np.ndarray | None:
    """Average ranks minus their mean (ties share a rank, as scipy.stats.spearmanr does); None if constant."""
    if np.ptp(values) == 0:
        return None
    ranks = rankdata(values.ravel())
    return ranks - ranks.mean()


def _spearman(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 1.0 if a is None and b is None else 0.0
    r = float(a @ b / np.sqrt((a @ a) * (b @ b)))
    return min(1.0, max(-1.0, r))  # rounding may step just outside


def _unit_range(values: np.ndarray) -> np.ndarray:
    low, span = values.min(), np.ptp(values)
    return (values - low) / span if span > 0 else np.zeros_like(values)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0
    return min(1.0, max(-1.0, float(structural_similarity(a, b, data_range=1.0))))


class VectorComparison:
    """Spearman and SSIM of one value per word against an original, for text.

    Spearman as for maps. SSIM over the whole vector as one window (Wang et al. 2004's formula on the
    global means, variances and covariance of the [0, 1]-normalised values, with their constants for
    data range 1): a sentence is too short for sliding windows. Constant vectors follow the maps' rules."""

    def __init__(self, original: np.ndarray, signed: bool):
        self.signed = signed
        self.values = np.abs(original) if signed else np.asarray(original, dtype=np.float64)
        self._ranks = _centred_ranks(self.values)
        self._unit = _unit_range(self.values)

    def __call__(self, values: np.ndarray) -> tuple[float, float]:
        other = np.abs(values) if self.signed else np.asarray(values, dtype=np.float64)
        if other.shape != self.values.shape:
            raise ValueError(f"cannot compare {other.shape} values with {self.values.shape}")
        if np.array_equal(other, self.values):
            return 1.0, 1.0
        return _spearman(self._ranks, _centred_ranks(other)), _global_ssim(self._unit, _unit_range(other))


def _global_ssim(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0
    c1, c2 = 0.01**2, 0.03**2
    ma, mb = a.mean(), b.mean()
    va, vb, cov = a.var(), b.var(), ((a - ma) * (b - mb)).mean()
    value = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return min(1.0, max(-1.0, float(value)))

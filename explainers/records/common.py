"""Plain, frozen records that cross from compute to figures, exports and the command line.

They hold numpy arrays and plain values only (no torch), are checked when built, and pickle,
so Streamlit can cache them and a figure can be redrawn without recomputing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .faithfulness import Faithfulness
from .sanity import SanityResult

METHOD_NAMES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "layercam": "Layer-CAM",
    "integrated-gradients": "Integrated Gradients",
    "smoothgrad": "SmoothGrad",
    "lime": "LIME",
    "kernelshap": "Kernel SHAP",
    "occlusion": "Occlusion",
    "relevancy": "Attention relevancy",
    "text-integrated-gradients": "Word relevance (Integrated Gradients)",
}
PIXEL_METHODS = ("integrated-gradients", "smoothgrad")  # one value per pixel, sparse
PERTURBATION_METHODS = ("lime", "kernelshap", "occlusion")  # one value per region or word, by hiding it
TOKEN_METHODS = ("integrated-gradients", *PERTURBATION_METHODS)  # text: one signed value per token


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float  # probability

    def as_dict(self) -> dict:
        return {"index": self.index, "label": self.label, "score": self.score}


@dataclass(frozen=True)
class ModelSummary:
    name: str
    source: str
    note: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "note": self.note}


@dataclass(frozen=True)
class ImageExplanation:
    """One attribution map for one target class of one image.

    `scores` has the image's aspect at the model's input resolution (any scale); figures stretch
    it over `image`. Values are raw: signed for gradient x input methods, non-negative for CAMs.
    `grid` is the map as computed when that is coarser (a CAM's feature-map cells, a ViT's patches;
    any shape, stretched over the whole photo): `scores` is it resampled, so pages and the command
    line send the grid, and metrics and downloads read `scores`.
    """

    method: str
    target: Prediction
    image: np.ndarray  # (H, W, 3) uint8, what the user sees
    scores: np.ndarray  # (h, w) float32
    signed: bool
    model: ModelSummary
    predictions: tuple[Prediction, ...] = ()
    layer: str | None = None
    params: dict = field(default_factory=dict)
    convergence_delta: float | None = None
    output_difference: float | None = None  # f(x) - f(baseline) of the explained output
    faithfulness: Faithfulness | None = None  # deletion / insertion against the references, when asked
    sanity: SanityResult | None = None  # the model-randomisation check, when asked
    grid: np.ndarray | None = None  # (rows, cols) float32, the map before resampling to `scores`
    photo_shape: tuple[int, int] | None = None  # (height, width) of the photo as read, which the map covers

    @property
    def native(self) -> np.ndarray:
        """The map at the resolution it has: the grid when there is one, else `scores`."""
        return self.scores if self.grid is None else self.grid

    def __post_init__(self):
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError("image must be (H, W, 3) uint8")
        if self.scores.ndim != 2:
            raise ValueError("scores must be a 2-D map")
        if not np.isfinite(self.scores).all():
            raise ValueError(f"{self.method} produced non-finite values")
        if self.grid is not None and (self.grid.ndim != 2 or not np.isfinite(self.grid).all()):
            raise ValueError(f"{self.method}'s grid must be a finite 2-D map")
        h, w = self.image.shape[:2]
        sh, sw = self.scores.shape
        if abs(sh / sw - h / w) > max(1 / sw, 1 / sh) * (h / w) * 2 + 1e-6:
            raise ValueError(f"map {sh}x{sw} does not have the image's aspect ({h}x{w})")

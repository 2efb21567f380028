"""Inside an image classifier: plain records of one forward pass seen stage by stage (InsideImage) and of
Grad-CAM for one class at every stage (DepthView). Every view (the diagram, a stage's feature maps, the
head, Grad-CAM by depth) is drawn from them, so a click on a stage redraws without a model call."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import ModelSummary, Prediction


@dataclass(frozen=True)
class StageView:
    name: str
    shape: tuple[int, int, int]  # (channels, height, width) of its output for this photo
    parameters: int
    receptive_field: int | None  # input pixels one output cell can see (theoretical); None when unknown
    jump: int | None  # input pixels between neighbouring output cells
    mean: float  # over every channel and cell
    std: float
    max: float
    active: float  # share of values above zero
    channels: tuple[int, ...]  # the most active channels (by mean), most active first
    channel_means: tuple[float, ...]
    channel_maps: np.ndarray  # (len(channels), h, w)
    average: np.ndarray  # (h, w): the output averaged over channels


@dataclass(frozen=True)
class Contribution:
    """One class's logit = bias + sum over channels of weight x pooled feature."""

    prediction: Prediction
    logit: float
    bias: float
    channels: tuple[int, ...]  # the largest contributions by size, largest first
    values: tuple[float, ...]
    rest: float  # every other channel's contributions together


@dataclass(frozen=True)
class InsideImage:
    model: ModelSummary
    image: np.ndarray  # (H, W, 3) uint8, what the user sees
    input_size: tuple[int, int]  # (h, w) the model reads
    predictions: tuple[Prediction, ...]  # top 5
    target: Prediction  # the class the page explains (the top one unless chosen)
    stages: tuple[StageView, ...]  # empty when the model is not split into stages
    head_parameters: int
    total_parameters: int  # the whole network's: the stages' and the head's add up to it
    filters: np.ndarray | None  # (n, k, k, 3) the first convolution's filters scaled to [0, 1] per filter
    contributions: tuple[Contribution, ...]  # empty when the head is not pooling then one linear layer
    pooled_features: int  # channels the head reads
    note: str  # what the view cannot show for this model, and why; empty when it shows everything

    def stage(self, name: str) -> StageView:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ValueError(f"no stage {name!r}; this model has {', '.join(s.name for s in self.stages) or 'none'}")


@dataclass(frozen=True)
class DepthView:
    """Grad-CAM of one class read at every stage's output: resolution falls and class specificity rises."""

    target: Prediction
    stages: tuple[str, ...]  # as in InsideImage.stages
    cams: tuple[np.ndarray, ...]  # (h, w) per stage, raw (>= 0), at the stage's own resolution

    def cam(self, name: str) -> np.ndarray:
        if name not in self.stages:
            raise ValueError(f"no stage {name!r}; this model has {', '.join(self.stages)}")
        return self.cams[self.stages.index(name)]


def as_json(record: InsideImage, depth: DepthView | None, source: str) -> dict:
    """What `python -m explainers inside image --json` prints: the architecture, each stage's statistics and,
    with `depth`, where its Grad-CAM peaks."""

    def gradcam(cam: np.ndarray) -> dict:
        row, col = np.unravel_index(int(cam.argmax()), cam.shape)
        return {"grid": list(cam.shape), "peak_cell": [int(row), int(col)], "max": round(float(cam.max()), 6)}

    def stage(s: StageView) -> dict:
        return {
            "name": s.name, "output_shape": list(s.shape), "parameters": s.parameters,
            "receptive_field": s.receptive_field, "jump": s.jump,
            "activation": {"mean": round(s.mean, 6), "std": round(s.std, 6), "max": round(s.max, 6),
                           "active_share": round(s.active, 6)},
            "top_channels": [{"channel": c, "mean": round(m, 6)} for c, m in zip(s.channels, s.channel_means)],
            **({"gradcam": gradcam(depth.cam(s.name))} if depth is not None else {}),
        }

    return {
        "input": source,
        "model": record.model.as_dict(),
        "input_size": list(record.input_size),
        "predictions": [p.as_dict() for p in record.predictions],
        "target": (record.target if depth is None else depth.target).as_dict(),
        "total_parameters": record.total_parameters,
        "head_parameters": record.head_parameters,
        "stages": [stage(s) for s in record.stages],
        "first_filters": None if record.filters is None else list(record.filters.shape),
        "head": [{"class": c.prediction.as_dict(), "logit": round(c.logit, 6), "bias": round(c.bias, 6),
                  "contributions": [{"channel": ch, "value": round(v, 6)} for ch, v in zip(c.channels, c.values)],
                  "rest": round(c.rest, 6)} for c in record.contributions],
        "note": record.note,
    }

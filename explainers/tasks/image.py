"""Explain an image classifier's decision: predictions plus any of the image methods, in one call.

All model work for one request happens under the model's lock, in this order: one forward pass
(predictions and, for the CAM family, the feature map), one backward pass shared by every CAM
variant, then the sampling methods. Nothing here keeps state between calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from models.image_classifier import ImageClassifier

from ..evaluation.faithfulness import STEPS, check_replacement, check_steps, measure_faithfulness
from ..inputs.image import shrink_to
from ..inputs.targets import resolve_target
from ..methods.baselines import image_baseline
from ..methods.cam import CAM_VARIANTS
from ..methods.gradients import integrated_gradients, smoothgrad
from ..records.common import ImageExplanation, ModelSummary, Prediction

PIXEL_METHODS = ("integrated-gradients", "smoothgrad")
BASELINES = ("black", "blurred", "noise")
DISPLAY_LONG_SIDE = 640
TOP_K = 5


@dataclass(frozen=True)
class ImageSettings:
    """Everything besides the image, model, methods and target that changes a result."""

    layer: str | None = None  # Grad-CAM family; None = the model's last stage
    ig_steps: int = 64  # a budget for "adaptive"; stops early once within tolerance
    ig_baseline: str = "black"
    ig_method: str = "adaptive"
    smoothgrad_samples: int = 16
    smoothgrad_noise: float = 0.15
    seed: int = 0  # noise baseline, SmoothGrad, faithfulness tie-breaks and random reference
    faithfulness: bool = False  # deletion / insertion curves for every map, against the references
    faithfulness_steps: int = STEPS
    faithfulness_replacement: str = "blurred"  # what removed pixels become: blurred, black or mean


@dataclass(frozen=True)
class ImageReport:
    predictions: tuple[Prediction, ...]
    target: Prediction
    explanations: tuple[ImageExplanation, ...]
    model: ModelSummary
    last_layer: str | None = None  # the model's last stage: only global pooling and a linear layer follow it


def methods_for(classifier: ImageClassifier) -> tuple[str, ...]:
    """The methods this model supports: CAMs need a known split into stages."""
    cams = tuple(CAM_VARIANTS) if classifier.layers else ()
    return cams + PIXEL_METHODS


def explain_image(
    classifier: ImageClassifier,
    rgb: np.ndarray,
    methods: Sequence[str] = (),
    target: int | str | None = None,
    settings: ImageSettings = ImageSettings(),
) -> ImageReport:
    unknown = [m for m in methods if m not in methods_for(classifier)]
    if unknown:
        raise ValueError(f"{', '.join(unknown)} is not available for {classifier.info.name}")
    if settings.faithfulness:
        check_steps(settings.faithfulness_steps)
        check_replacement(settings.faithfulness_replacement)
    cams = [m for m in methods if m in CAM_VARIANTS]
    layer = (settings.layer or classifier.default_layer) if cams else None
    model = ModelSummary(**classifier.info.as_dict())
    image = shrink_to(rgb, DISPLAY_LONG_SIDE)
    with classifier.lock:
        pixels = classifier.preprocess(rgb)
        with torch.no_grad():
            logits, feature = classifier.forward_from(pixels, layer) if classifier.layers else (classifier.logits(pixels), None)
        probabilities = logits.detach().softmax(-1)[0]
        predictions = _top(probabilities, classifier.labels)
        index = resolve_target(target, classifier.labels, default=predictions[0].index)
        chosen = Prediction(index, classifier.labels[index], float(probabilities[index]))

        def record(method: str, scores: torch.Tensor, signed: bool, **extra) -> ImageExplanation:
            values = stretch_to_aspect(scores.float().numpy(), rgb.shape[:2])
            return ImageExplanation(method, chosen, image, values, signed, model, predictions, **extra)

        explanations = []
        if cams:
            (gradient,) = torch.autograd.grad(logits[0, index], feature)
            A, G = feature.detach()[0], gradient[0]
            for method in cams:
                cam = upsample(CAM_VARIANTS[method](A, G), pixels.shape[-2:])
                explanations.append(record(method, cam, False, layer=layer, params={"layer": layer}))
        if "integrated-gradients" in methods:
            baseline = _baseline(classifier, pixels, settings.ig_baseline, settings.seed)
            result = integrated_gradients(
                classifier.logits, pixels, baseline, index, settings.ig_steps, settings.ig_method
            )
            params = {k: v for k, v in asdict(settings).items() if k.startswith("ig_")}
            params["gradient_steps"] = result.gradient_steps
            if settings.ig_baseline == "noise":
                params["seed"] = settings.seed
            explanations.append(
                record(
                    "integrated-gradients",
                    result.attribution[0].sum(0),
                    True,
                    params=params,
                    convergence_delta=result.convergence_delta,
                    output_difference=result.output_difference,
                )
            )
        if "smoothgrad" in methods:
            grads = smoothgrad(
                classifier.logits, pixels, index, settings.smoothgrad_samples, settings.smoothgrad_noise, settings.seed
            )
            params = {"samples": settings.smoothgrad_samples, "noise": settings.smoothgrad_noise, "seed": settings.seed}
            explanations.append(record("smoothgrad", grads[0].amax(0), False, params=params))
        if settings.faithfulness and explanations:
            explanations = _with_faithfulness(classifier, pixels, index, explanations, settings)
    order = {m: i for i, m in enumerate(methods)}
    explanations.sort(key=lambda e: order[e.method])
    return ImageReport(predictions, chosen, tuple(explanations), model, classifier.default_layer)


def _with_faithfulness(classifier, pixels, index: int, explanations, settings: ImageSettings) -> list:
    """Every map's deletion and insertion curves on the explained class's probability; references once."""
    empty = image_baseline(pixels, settings.faithfulness_replacement, *classifier.pixel_range())

    def probability(batch: torch.Tensor) -> torch.Tensor:
        return classifier.logits(batch).softmax(-1)[:, index]

    measured = measure_faithfulness(
        probability, pixels, empty, {e.method: e.scores for e in explanations},
        settings.faithfulness_steps, settings.faithfulness_replacement, settings.seed,
    )
    return [replace(e, faithfulness=measured[e.method]) for e in explanations]


def _top(probabilities: torch.Tensor, labels: Sequence[str]) -> tuple[Prediction, ...]:
    values, indices = probabilities.topk(min(TOP_K, len(labels)))
    return tuple(Prediction(int(i), labels[int(i)], float(v)) for v, i in zip(values, indices))


def upsample(cam: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(cam[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0]


def _baseline(classifier: ImageClassifier, pixels: torch.Tensor, kind: str, seed: int) -> torch.Tensor:
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")
    return image_baseline(pixels, kind, *classifier.pixel_range(), seed)


def stretch_to_aspect(scores: np.ndarray, image_shape) -> np.ndarray:
    """Stretch a map from a fixed-size (e.g. square) model input back to the photo's aspect."""
    (sh, sw), (h, w) = scores.shape, image_shape
    if abs(sh * w - sw * h) <= max(h, w):  # already the photo's aspect, up to rounding
        return scores
    scale = (sh * sw / (h * w)) ** 0.5
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(scores, size, interpolation=cv2.INTER_LINEAR)


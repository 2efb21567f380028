"""Inside an image classifier: its stages with shapes, parameters and receptive fields, each stage's most
active feature maps, Grad-CAM for one class at every depth, and the head's largest contributions, from one
forward and one backward pass (ImageClassifier.stage_gradients; nothing attached to the network)."""

from __future__ import annotations

import numpy as np
import torch

from models.anatomy import first_filters, parameter_count, receptive_fields
from models.image_classifier import ImageClassifier

from ..inputs.image import shrink_to
from ..inputs.targets import resolve_target
from ..methods.cam import grad_cam
from ..records.common import ModelSummary, Prediction
from ..records.inside_image import Contribution, InsideImage, StageView
from ..tasks.image import DISPLAY_LONG_SIDE, _top

CHANNELS = 16  # feature maps kept per stage: the small multiples
CONTRIBUTIONS = 8  # channels named per class in the head view


def inside_image(classifier: ImageClassifier, rgb: np.ndarray, target: int | str | None = None,
                 channels: int = CHANNELS) -> InsideImage:
    model = ModelSummary(**classifier.info.as_dict())
    total = parameter_count(classifier.network)
    with classifier.lock:
        pixels = classifier.preprocess(rgb)
        if not classifier.stages:
            with torch.no_grad():
                logits = classifier.logits(pixels)
            predictions, chosen = _predictions(classifier, logits, target)
            note = (f"{classifier.info.name} is not split into stages here, so its feature maps and Grad-CAM by depth "
                    "cannot be shown; its size and predictions can. The pixel methods still explain it.")
            return InsideImage(model, shrink_to(rgb, DISPLAY_LONG_SIDE), tuple(pixels.shape[-2:]), predictions, chosen,
                               (), total, total, None, (), 0, note)
        index = None if target is None else resolve_target(target, classifier.labels, default=0)
        logits, outputs, gradients = classifier.stage_gradients(pixels, index)
    predictions, chosen = _predictions(classifier, logits, target)
    fields = receptive_fields(classifier.stages)
    stages = tuple(_stage(name, module, outputs[name][0], gradients[name][0], field, channels)
                   for (name, module), field in zip(classifier.stages, fields))
    head = parameter_count(classifier.head_module())
    contributions, pooled, note = _contributions(classifier, outputs[classifier.stages[-1][0]], predictions)
    filters = first_filters(classifier.stages[0][1])
    return InsideImage(model, shrink_to(rgb, DISPLAY_LONG_SIDE), tuple(pixels.shape[-2:]), predictions, chosen, stages,
                       head, total, None if filters is None else _tiles(filters), contributions, pooled, note)


def _predictions(classifier, logits: torch.Tensor, target) -> tuple[tuple[Prediction, ...], Prediction]:
    probabilities = logits.softmax(-1)[0]
    top = _top(probabilities, classifier.labels)  # the page's top 5, built the same way
    index = resolve_target(target, classifier.labels, default=top[0].index)
    return top, Prediction(index, classifier.labels[index], float(probabilities[index]))


def _stage(name, module, output: torch.Tensor, gradient: torch.Tensor, field, keep: int) -> StageView:
    means = output.mean(dim=(-2, -1))
    order = means.argsort(descending=True)[:keep]
    values = output.float()
    return StageView(
        name=name, shape=tuple(output.shape), parameters=parameter_count(module),
        receptive_field=None if field is None else field[0], jump=None if field is None else field[1],
        mean=float(values.mean()), std=float(values.std(unbiased=False)), max=float(values.max()),
        active=float((values > 0).float().mean()),
        channels=tuple(int(c) for c in order), channel_means=tuple(float(means[c]) for c in order),
        channel_maps=values[order].numpy(), average=values.mean(0).numpy(),
        cam=grad_cam(output, gradient).float().numpy(),
    )


def _contributions(classifier, features: torch.Tensor, predictions) -> tuple[tuple[Contribution, ...], int, str]:
    if classifier.readout is None:
        return (), 0, "Its head is not pooling then one linear layer, so the logits cannot be split into contributions."
    pool, linear = classifier.readout
    with torch.no_grad():
        pooled = pool(features)[0].double()
    weight = linear.weight.detach().double()
    bias = linear.bias.detach().double() if linear.bias is not None else torch.zeros(weight.shape[0], dtype=torch.double)
    out = []
    for prediction in predictions:
        parts = weight[prediction.index] * pooled
        order = parts.abs().argsort(descending=True)[:CONTRIBUTIONS]
        named = parts[order]
        out.append(Contribution(prediction, float(parts.sum() + bias[prediction.index]), float(bias[prediction.index]),
                                tuple(int(c) for c in order), tuple(float(v) for v in named),
                                float(parts.sum() - named.sum())))
    return tuple(out), int(pooled.numel()), ""


def _tiles(weights: torch.Tensor) -> np.ndarray:
    """(out, 3, k, k) filters as (out, k, k, 3) RGB tiles, each scaled to [0, 1] on its own (0.5 = zero weight
    when the filter is symmetric about zero): what a filter looks for, in colour."""
    w = weights.float().permute(0, 2, 3, 1)
    size = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    return (0.5 + 0.5 * w / size).numpy()

"""Inside an image classifier: its stages with shapes, parameters and receptive fields, each stage's most
active feature maps and the head's largest contributions from one forward pass; Grad-CAM for one class at
every depth from one forward and one backward pass (ImageClassifier.stage_gradients). Nothing is attached
to the network."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch

from models.anatomy import first_filters, parameter_count, receptive_fields
from models.image_classifier import ImageClassifier

from ..inputs.image import shrink_to
from ..inputs.targets import resolve_target
from ..methods.cam import grad_cam
from ..records.common import ModelSummary, Prediction
from ..records.inside_image import Contribution, DepthView, InsideImage, StageView
from ..tasks.image import DISPLAY_LONG_SIDE, _top

CHANNELS = 16  # feature maps kept per stage: the small multiples
CONTRIBUTIONS = 8  # channels named per class in the head view


def inside_image(classifier: ImageClassifier, rgb: np.ndarray, target: int | str | None = None,
                 channels: int = CHANNELS) -> InsideImage:
    """The diagram, every stage's feature maps, the first filters and the head, from one forward pass
    without autograd: about what the page's prediction costs. Grad-CAM by depth is `gradcam_by_depth`."""
    model = ModelSummary(**classifier.info.as_dict())
    anatomy = _anatomy(classifier)
    with classifier.lock:
        pixels = classifier.preprocess(rgb)
        if not classifier.stages:
            with torch.no_grad():
                logits = classifier.logits(pixels)
        else:
            outputs, logits = classifier.stages_and_logits(pixels)
    predictions, chosen = _predictions(classifier, logits, target)
    image = shrink_to(rgb, DISPLAY_LONG_SIDE)
    if not classifier.stages:
        note = (f"{classifier.info.name} is not split into stages here, so its feature maps and Grad-CAM by depth "
                "cannot be shown; its size and predictions can. The pixel methods still explain it.")
        return InsideImage(model, image, tuple(pixels.shape[-2:]), predictions, chosen, (), anatomy.total,
                           anatomy.total, None, (), 0, note)
    stages = tuple(_stage(name, outputs[name][0], parameters, field, channels)
                   for (name, _), parameters, field in zip(classifier.stages, anatomy.stages, anatomy.fields))
    contributions, pooled, note = _contributions(classifier, outputs[classifier.stages[-1][0]], predictions)
    return InsideImage(model, image, tuple(pixels.shape[-2:]), predictions, chosen, stages, anatomy.head,
                       anatomy.total, anatomy.filters, contributions, pooled, note)


def gradcam_by_depth(classifier: ImageClassifier, rgb: np.ndarray, target: int | str | None = None) -> DepthView:
    """Grad-CAM for one class read at every stage's output, from one forward and one backward pass through
    the whole network (ImageClassifier.stage_gradients): the gradient at every depth costs about a second
    forward pass, which is why the page computes this only when asked."""
    if not classifier.stages:
        raise ValueError(f"{classifier.info.name} is not split into stages, so Grad-CAM by depth cannot be shown.")
    with classifier.lock:
        pixels = classifier.preprocess(rgb)
        index = None if target is None else resolve_target(target, classifier.labels, default=0)
        logits, outputs, gradients = classifier.stage_gradients(pixels, index)
    _, chosen = _predictions(classifier, logits, target)
    names = tuple(name for name, _ in classifier.stages)
    return DepthView(chosen, names, tuple(grad_cam(outputs[n][0], gradients[n][0]).float().numpy() for n in names))


@dataclass(frozen=True)
class _Anatomy:
    total: int
    head: int
    stages: tuple[int, ...]  # parameters per stage
    fields: tuple  # (receptive field, jump) or None per stage
    filters: np.ndarray | None


_ANATOMIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _anatomy(classifier: ImageClassifier) -> _Anatomy:
    """What does not depend on the photo, counted once per classifier (kept beside it, not on it: a
    randomised copy is another classifier and is counted on its own)."""
    known = _ANATOMIES.get(classifier)
    if known is None:
        stages = classifier.stages
        filters = first_filters(stages[0][1]) if stages else None
        known = _ANATOMIES[classifier] = _Anatomy(
            parameter_count(classifier.network), parameter_count(classifier.head_module()) if stages else 0,
            tuple(parameter_count(module) for _, module in stages), tuple(receptive_fields(stages)),
            None if filters is None else _tiles(filters))
    return known


def _predictions(classifier, logits: torch.Tensor, target) -> tuple[tuple[Prediction, ...], Prediction]:
    probabilities = logits.softmax(-1)[0]
    top = _top(probabilities, classifier.labels)  # the page's top 5, built the same way
    index = resolve_target(target, classifier.labels, default=top[0].index)
    return top, Prediction(index, classifier.labels[index], float(probabilities[index]))


def _stage(name, output: torch.Tensor, parameters: int, field, keep: int) -> StageView:
    values = output.float()
    means = values.mean(dim=(-2, -1))
    order = means.argsort(descending=True)[:keep]
    mean = means.mean()  # every channel has the same number of cells
    std = (values - mean).square().mean().sqrt()  # two passes: torch.std over every value is ~15x slower
    return StageView(
        name=name, shape=tuple(output.shape), parameters=parameters,
        receptive_field=None if field is None else field[0], jump=None if field is None else field[1],
        mean=float(mean), std=float(std), max=float(values.max()),
        active=int(torch.count_nonzero(values > 0)) / values.numel(),
        channels=tuple(int(c) for c in order), channel_means=tuple(float(means[c]) for c in order),
        channel_maps=values[order].numpy(), average=values.mean(0).numpy(),
    )


def _contributions(classifier, features: torch.Tensor, predictions) -> tuple[tuple[Contribution, ...], int, str]:
    if classifier.readout is None:
        return (), 0, "Its head is not pooling then one linear layer, so the logits cannot be split into contributions."
    pool, linear = classifier.readout
    with torch.no_grad():
        pooled = pool(features)[0].double()
    out = []
    for prediction in predictions:  # only the shown classes' rows, in double so the parts add up exactly
        parts = linear.weight[prediction.index].detach().double() * pooled
        bias = float(linear.bias[prediction.index]) if linear.bias is not None else 0.0
        order = parts.abs().argsort(descending=True)[:CONTRIBUTIONS]
        named = parts[order]
        out.append(Contribution(prediction, float(parts.sum()) + bias, bias, tuple(int(c) for c in order),
                                tuple(float(v) for v in named), float(parts.sum() - named.sum())))
    return tuple(out), int(pooled.numel()), ""


def _tiles(weights: torch.Tensor) -> np.ndarray:
    """(out, 3, k, k) filters as (out, k, k, 3) RGB tiles, each scaled to [0, 1] on its own (0.5 = zero weight
    when the filter is symmetric about zero): what a filter looks for, in colour."""
    w = weights.float().permute(0, 2, 3, 1)
    size = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    return (0.5 + 0.5 * w / size).numpy()

"""Explain an image classifier's decision: predictions plus any of the image methods, in one call.

A request takes two turns on the model (models/turns.py). The first look: one forward pass (predictions
and, for the CAM family, the feature map) and one backward pass shared by every CAM variant; a model
service may run many requests' first looks as one batch (`first_looks`). Then, if the request needs
more: the gradient sampling methods, then the perturbation methods (LIME, Kernel SHAP and Occlusion, on
the explained class's probability), each map's faithfulness right after it (the references once, with
the first). Nothing here keeps state between calls. `progress(what, done,
total)` hears about long work as it goes; `partial(report)` gets the report so far after each step,
so a page can draw the Grad-CAM family while the slower methods run. An exception raised in either
(a cancelled request) stops the work and releases the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
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
from ..methods import perturbation as P
from ..records.common import METHOD_NAMES, PERTURBATION_METHODS, PIXEL_METHODS, ImageExplanation, ModelSummary, Prediction

BASELINES = ("black", "blurred", "noise")
HIDDEN = ("blurred", "black", "mean")  # what a part hidden by LIME, Kernel SHAP or Occlusion becomes
Progress = Callable[[str, int, int], None]  # (what is running, done, total)
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
    perturbation_baseline: str = "blurred"  # LIME, Kernel SHAP and Occlusion: what a hidden part becomes
    segments: int = P.DEFAULT_SEGMENTS  # LIME and Kernel SHAP: superpixels asked of SLIC
    lime_samples: int = P.DEFAULT_LIME_SAMPLES
    shap_samples: int = P.DEFAULT_SHAP_SAMPLES
    occlusion_patch: int | None = None  # pixels at the model's input size; None: see occlusion_window
    occlusion_stride: int | None = None  # None: half the patch


@dataclass(frozen=True)
class ImageReport:
    predictions: tuple[Prediction, ...]
    target: Prediction
    explanations: tuple[ImageExplanation, ...]
    model: ModelSummary
    last_layer: str | None = None  # the model's last stage: only global pooling and a linear layer follow it
    pending: tuple[str, ...] = ()  # a partial report: the methods whose maps are still to come
    measuring: bool = False  # a partial report: faithfulness is still to come for some maps


def methods_for(classifier: ImageClassifier) -> tuple[str, ...]:
    """The methods this model supports: CAMs need a known split into stages."""
    cams = tuple(CAM_VARIANTS) if classifier.layers else ()
    return cams + PIXEL_METHODS + PERTURBATION_METHODS


def check_settings(size: tuple[int, int], methods: Sequence[str], settings: ImageSettings) -> None:
    """Every setting the chosen methods use, checked before any model work (ValueError with a clear message).

    `size` is the input's (h, w) as the model reads it (ImageClassifier.input_size): it bounds Occlusion's patch."""
    if settings.faithfulness:
        check_steps(settings.faithfulness_steps)
        check_replacement(settings.faithfulness_replacement)
    if any(m in PERTURBATION_METHODS for m in methods):
        if settings.perturbation_baseline not in HIDDEN:
            raise ValueError(f"Hidden parts can become {', '.join(HIDDEN)}; {settings.perturbation_baseline!r} is not one of them.")
        samples = [n for m, n in (("lime", settings.lime_samples), ("kernelshap", settings.shap_samples)) if m in methods]
        P.check_image_settings(settings.segments, samples, *occlusion_window(settings, size), *size)


def occlusion_window(settings: ImageSettings, size: tuple[int, int]) -> tuple[int, int]:
    """Occlusion's (patch, stride) in pixels: as set, or by default 48 and 24 on a 224-pixel short side,
    scaled to the model's input (h, w), so every model hides the same share of the photo."""
    patch = settings.occlusion_patch
    if patch is None:
        patch = max(P.PATCH_MIN, round(min(size) * P.DEFAULT_PATCH / 224))
    stride = settings.occlusion_stride if settings.occlusion_stride is not None else max(1, patch // 2)
    return patch, stride


def explain_image(
    classifier: ImageClassifier,
    rgb: np.ndarray,
    methods: Sequence[str] = (),
    target: int | str | None = None,
    settings: ImageSettings = ImageSettings(),
    progress: Progress | None = None,
    partial: Callable[[ImageReport], None] | None = None,
    look: Look | None = None,
) -> ImageReport:
    unknown = [m for m in methods if m not in methods_for(classifier)]
    if unknown:
        raise ValueError(f"{', '.join(unknown)} is not available for {classifier.info.name}")
    check_settings(classifier.input_size(*rgb.shape[:2]), methods, settings)
    report = progress or (lambda what, done, total: None)
    slow = [m for m in methods if m not in CAM_VARIANTS]

    def starting(method: str) -> str:
        label = f"{METHOD_NAMES[method]} ({slow.index(method) + 1} of {len(slow)})"
        report(label, 0, 1)
        return label
    cams = [m for m in methods if m in CAM_VARIANTS]
    layer = (settings.layer or classifier.default_layer) if cams else None
    model = ModelSummary(**classifier.info.as_dict())
    image = shrink_to(rgb, DISPLAY_LONG_SIDE)
    order = {m: i for i, m in enumerate(methods)}
    explanations: list[ImageExplanation] = []
    resolve_target(target, classifier.labels, default=0)  # a class the model does not have: before any model work
    report("Predicting" + (f" and computing the {', '.join(METHOD_NAMES[m] for m in cams)}" if cams else ""), 0, 1)
    pixels = classifier.preprocess(rgb)
    # The first look in a turn of its own (with others' first looks, when `look` batches them): every student
    # sees predictions and the CAM family before anyone's slower maps run.
    probabilities, index, grids = (look or first_look)(classifier, pixels, layer, target, tuple(cams))
    predictions = _top(probabilities, classifier.labels)
    chosen = Prediction(index, classifier.labels[index], float(probabilities[index]))
    # The rest in a second turn, when it needs the model: faithfulness and the slower maps.
    with classifier.lock if slow or settings.faithfulness else nullcontext():
        faithful = _Faithfulness(classifier, pixels, index, settings, report) if settings.faithfulness else None

        def so_far(done: bool = False) -> ImageReport:
            shown = tuple(sorted(explanations, key=lambda e: order[e.method]))
            pending = () if done else tuple(m for m in methods if m not in {e.method for e in shown})
            measuring = not done and faithful is not None
            return ImageReport(predictions, chosen, shown, model, classifier.default_layer, pending, measuring)

        def add(new: list[ImageExplanation]) -> None:
            """Publish the new maps at once, then again with their faithfulness."""
            explanations.extend(new)
            if partial is not None:
                partial(so_far())
            if faithful is not None and new:
                measured = faithful.measure(new)
                explanations[-len(new):] = [replace(e, faithfulness=measured[e.method]) for e in new]
                if partial is not None and len(explanations) < len(methods):
                    partial(so_far())

        def record(method: str, scores: torch.Tensor, signed: bool, **extra) -> ImageExplanation:
            values = stretch_to_aspect(scores.float().numpy(), rgb.shape[:2])
            return ImageExplanation(method, chosen, image, values, signed, model, predictions,
                                    photo_shape=tuple(rgb.shape[:2]), **extra)

        if cams:
            add([record(method, upsample(grids[method], pixels.shape[-2:]), False, layer=layer,
                        params={"layer": layer}, grid=grids[method].float().numpy()) for method in cams])
        if "integrated-gradients" in methods:
            label = starting("integrated-gradients")
            baseline = _baseline(classifier, pixels, settings.ig_baseline, settings.seed)
            most = "at most " if settings.ig_method == "adaptive" else ""  # adaptive stops once within tolerance
            forward = _counted(classifier.logits, settings.ig_steps,
                               lambda done, total: report(f"{label}: {done} of {most}{total} gradient steps", done, total))
            result = integrated_gradients(forward, pixels, baseline, index, settings.ig_steps, settings.ig_method)
            params = {k: v for k, v in asdict(settings).items() if k.startswith("ig_")}
            params["gradient_steps"] = result.gradient_steps
            if settings.ig_baseline == "noise":
                params["seed"] = settings.seed
            add([record("integrated-gradients", result.attribution[0].sum(0), True, params=params,
                        convergence_delta=result.convergence_delta, output_difference=result.output_difference)])
        if "smoothgrad" in methods:
            label = starting("smoothgrad")
            forward = _counted(classifier.logits, settings.smoothgrad_samples,
                               lambda done, total: report(f"{label}: {done} of {total} noisy samples", done, total))
            grads = smoothgrad(forward, pixels, index, settings.smoothgrad_samples, settings.smoothgrad_noise, settings.seed)
            params = {"samples": settings.smoothgrad_samples, "noise": settings.smoothgrad_noise, "seed": settings.seed}
            add([record("smoothgrad", grads[0].amax(0), False, params=params)])
        perturbing = [m for m in methods if m in PERTURBATION_METHODS]
        if perturbing:
            for method, scores, params in _perturbation_maps(classifier, rgb, pixels, index, perturbing, settings,
                                                             report, starting):
                add([record(method, scores, True, params=params)])
    return so_far(done=True)


Look = Callable[..., tuple[torch.Tensor, int, dict[str, torch.Tensor]]]  # first_look's signature


def first_look(classifier: ImageClassifier, pixels: torch.Tensor, layer: str | None, target: int | str | None,
               cams: tuple[str, ...]) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
    """(probabilities, explained class, {CAM method: grid}) for one input, in its own turn on the model."""
    return first_looks(classifier, pixels, layer, [target], cams)[0]


def first_looks(classifier: ImageClassifier, batch: torch.Tensor, layer: str | None, targets: Sequence,
                cams: tuple[str, ...]) -> list[tuple[torch.Tensor, int, dict[str, torch.Tensor]]]:
    """first_look for a batch of same-size inputs (N, 3, h, w), each with its own target, in one forward and
    one backward pass: the gradient of the sum of each input's class score is each input's own gradient (the
    network is in eval mode: no input's output depends on another's), so every look equals its look alone."""
    with classifier.lock:
        with torch.no_grad():
            logits, feature = classifier.forward_from(batch, layer) if classifier.layers else (classifier.logits(batch), None)
        probabilities = logits.detach().softmax(-1)
        indices = [resolve_target(target, classifier.labels, default=int(row.argmax()))
                   for target, row in zip(targets, probabilities)]
        grids: list[dict[str, torch.Tensor]] = [{} for _ in indices]
        if cams:
            chosen = logits[torch.arange(len(indices)), torch.tensor(indices)]
            (gradient,) = torch.autograd.grad(chosen.sum(), feature)
            A, G = feature.detach(), gradient
            for i, maps in enumerate(grids):
                for method in cams:
                    maps[method] = CAM_VARIANTS[method](A[i], G[i])
    return [(p, i, maps) for p, i, maps in zip(probabilities, indices, grids)]


def _perturbation_maps(classifier, rgb, pixels, index: int, methods, settings: ImageSettings, report, starting):
    """(method, map at the input size, params) for LIME, Kernel SHAP and Occlusion, in `methods` order.

    All three explain the class's probability, so their values are changes of probability; LIME and
    Kernel SHAP share one superpixel segmentation of the photo as the model sees it."""
    baseline = image_baseline(pixels, settings.perturbation_baseline, *classifier.pixel_range())
    labels = None
    if {"lime", "kernelshap"} & set(methods):
        labels = P.superpixels(classifier.resized(rgb), settings.segments)

    def probabilities(batch: torch.Tensor) -> torch.Tensor:
        return classifier.logits(batch).softmax(-1)

    for method in methods:
        label = starting(method)

        def counted(done: int, total: int, label=label, unit="samples" if method != "occlusion" else "patches") -> None:
            report(f"{label}: {done} of {total} {unit}", done, total)

        if method == "occlusion":
            patch, stride = occlusion_window(settings, tuple(pixels.shape[-2:]))
            result = P.occlusion_image(probabilities, pixels, baseline, index, patch, stride, counted)
        else:
            run, samples = {"lime": (P.lime_image, settings.lime_samples),
                            "kernelshap": (P.kernel_shap_image, settings.shap_samples)}[method]
            result = run(probabilities, pixels, baseline, index, labels, samples, settings.seed, counted)
            result.params["segments_asked"] = settings.segments
        params = {**result.params, "baseline": settings.perturbation_baseline, "output": "probability",
                  "forwards": result.forwards}
        yield method, result.attribution, params


class _Faithfulness:
    """Deletion and insertion curves on the explained class's probability, map by map as they come; the
    random and centre references once, with the first maps."""

    def __init__(self, classifier, pixels, index: int, settings: ImageSettings, report):
        self.pixels, self.settings, self.report = pixels, settings, report
        self.empty = image_baseline(pixels, settings.faithfulness_replacement, *classifier.pixel_range())
        self.references = None

        def probability(batch: torch.Tensor) -> torch.Tensor:
            return classifier.logits(batch).softmax(-1)[:, index]

        self.probability = probability

    def measure(self, explanations: list[ImageExplanation]) -> dict:
        first = self.references is None
        names = ", ".join(METHOD_NAMES[e.method] for e in explanations)

        def counted(done: int, total: int) -> None:
            self.report(f"Faithfulness of {names}: {done} of {total} pairs of curves"
                        + (" (references first)" if first else ""), done, total)

        settings = self.settings
        measured = measure_faithfulness(
            self.probability, self.pixels, self.empty, {e.method: e.scores for e in explanations},
            settings.faithfulness_steps, settings.faithfulness_replacement, settings.seed, counted, self.references,
        )
        self.references = next(iter(measured.values())).references
        return measured


def _counted(forward, total: int, counted: Callable[[int, int], None]):
    """`forward`, telling `counted(done, total)` after each batch how many inputs it has run (at most `total`):
    a gradient method's progress, and where a cancelled request stops it."""
    done = 0

    def run(batch: torch.Tensor) -> torch.Tensor:
        nonlocal done
        outputs = forward(batch)
        done = min(total, done + len(batch))
        counted(done, total)
        return outputs

    return run


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


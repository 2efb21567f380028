"""The cascading model-parameter randomisation check (Adebayo et al. 2018, "Sanity checks for saliency maps").

An explanation that describes the model must change when the model's learned weights are destroyed. The
map of one method, for one photo and one target class, is recomputed on copies of the model whose weights
are re-initialised from the top, cumulatively (step 1 the classifier head, step 2 also the last stage, ...
down to the stem), and compared with the original after each step (explainers/evaluation/similarity.py).
An edge detector run on the photo is scored alongside: it never looks at the model, so it stays at
similarity 1 on every copy, which is what failing the check looks like.

The shared model is only read: each step's copy (ImageClassifier.with_random) shares every tensor it
does not re-initialise, is private to this call, and is dropped after its step. For a CAM, a copy takes
the shared model's outputs of the stages below its first random one instead of recomputing them: the
same weights on the same pixels, so the same values, and the cascade costs little more than the maps. The whole check runs
under the shared model's lock, so concurrent checks come out as if run one after another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from models.image_classifier import ImageClassifier

from ..methods.cam import CAM_VARIANTS
from ..records.common import PERTURBATION_METHODS, PIXEL_METHODS, ImageExplanation
from ..records.sanity import EDGES, SanityCurve, SanityResult
from ..tasks.image import ImageSettings, explain_image, methods_for, stretch_to_aspect
from .similarity import Comparison

# The rule: a method passes when, once the head and the last stage are random (step RULE_STEP), the
# Spearman similarity of its map to the original is below THRESHOLD. Step 2 because by then both things
# a class-specific map should rest on are gone: the class weights (head) and the last feature map, what
# Grad-CAM reads and where most of what the network learned about classes lives. Measured on the bundled
# EfficientNet-Lite0 and the five sample photos at default settings (benchmarks/sanity_speed.py), step 2:
# Grad-CAM -0.54 to 0.31; Integrated Gradients (black baseline) 0.56 to 0.87, and still 0.28 to 0.78 with
# every weight random, because IG is gradient x (photo - black baseline) and that factor does not depend
# on the weights; the edge reference 1.0. 0.5 lies in the gap between the two methods, and halfway between
# no rank relation (0) and a map that ignores the model (1): a map keeping more than half its ranking
# without the weights that made it describes the photo more than the model. Negative values pass: the map
# moved elsewhere.
RULE_STEP = 2
THRESHOLD = 0.5


class SanityError(ValueError):
    """This model or method cannot be checked; the message says why in plain words."""


def sanity_check(
    classifier: ImageClassifier,
    rgb: np.ndarray,
    method: str,
    target_index: int | str | None = None,
    settings: ImageSettings = ImageSettings(),
    seed: int = 0,
    max_steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    original: ImageExplanation | None = None,
) -> SanityResult:
    """Randomise `classifier`'s parts top-down, `max_steps` of them (all by default), and score `method`.

    `target_index` None explains the original's top class; every copy then explains that same class.
    `settings` are used unchanged on every copy (SmoothGrad's noise too), so only the weights differ.
    `progress(done, total)` is called after each step. `original`: this method's explanation, already
    computed on the shared model with these settings (it is then not computed again).
    """
    parts = _parts_to_randomise(classifier, method, max_steps)
    settings = replace(settings, faithfulness=False)  # only the maps are compared
    with classifier.lock:
        # The photo at the input size every copy shares: one edge map serves every step.
        edges = edge_map(classifier, rgb)
        # A CAM needs no gradient to the pixels: each copy can start from the shared model's stage outputs
        # below its first random stage, identical by construction, and runs only what it re-initialised.
        pixels = classifier.preprocess(rgb)
        below = classifier.stage_outputs(pixels) if method in CAM_VARIANTS and classifier.layers else None

        def explained(model: ImageClassifier, target) -> ImageExplanation:
            if below is not None:
                model.reuse_stages(pixels, below)
            return explain_image(model, rgb, (method,), target, settings).explanations[0]

        if original is None:
            # A copy with nothing re-initialised is the shared model's own weights: it reuses every stage.
            original = explained(classifier.with_random([], seed), target_index) if below is not None else (
                explain_image(classifier, rgb, (method,), target_index, settings).explanations[0])
        explanation = original

        def recompute(twin: ImageClassifier) -> np.ndarray:
            return explained(twin, explanation.target.index).scores

        maps, step_bytes = cascade(classifier, parts, recompute, seed, progress)
    steps = cumulative(parts)
    rule_step = min(RULE_STEP, len(parts))
    return SanityResult(
        method=compared_curve(method, explanation.signed, steps, explanation.scores, maps, rule_step),
        reference=compared_curve(EDGES, False, steps, edges, [edges] * len(parts), rule_step),
        model=classifier.info.name,
        target=explanation.target,
        note=_note(classifier, parts),
        threshold=THRESHOLD,
        rule_step=rule_step,
        seed=seed,
        step_bytes=tuple(step_bytes),
    )


def cascade(model, parts: list[str], recompute: Callable, seed: int,
            progress: Callable[[int, int], None] | None = None) -> tuple[list[np.ndarray], list[int]]:
    """`recompute(copy)` on copies of `model` with `parts` re-initialised cumulatively, one more per step
    (call under the model's lock), and the bytes of tensors each copy holds that the model does not.
    `model` is any adapter with `network` and `with_random(names, seed)`; each copy is dropped once the
    next one is made from it."""
    shared = {id(t) for t in _tensors(model)}
    maps, step_bytes = [], []
    twin = model
    for done, part in enumerate(parts, 1):
        twin = twin.with_random([part], seed)  # the previous copy's random parts, and one more
        step_bytes.append(sum(t.nbytes for t in _tensors(twin) if id(t) not in shared))
        maps.append(recompute(twin))
        if progress is not None:
            progress(done, len(parts))
    return maps, step_bytes


def cumulative(parts: list[str]) -> tuple[str, ...]:
    """What is random after each step: "head", "head + stage 7", ..."""
    return tuple(" + ".join(parts[:k]) for k in range(1, len(parts) + 1))


def with_sanity(classifier: ImageClassifier, rgb: np.ndarray, explanations, settings: ImageSettings,
                progress: Callable[[int, int], None] | None = None) -> tuple[ImageExplanation, ...]:
    """Each explanation with its sanity check attached (`progress` counts steps over all of them)."""
    total = sum(1 for _ in explanations) * len(_parts_to_randomise(classifier, explanations[0].method, None))
    done, checked = 0, []
    for explanation in explanations:
        def step(k, _n, before=done):
            if progress is not None:
                progress(before + k, total)

        result = sanity_check(classifier, rgb, explanation.method, explanation.target.index, settings,
                              progress=step, original=explanation)
        done += len(result.steps)
        checked.append(replace(explanation, sanity=result))
    return tuple(checked)


def edge_map(classifier: ImageClassifier, rgb: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the grey photo at the model's input size, at the photo's aspect like
    every map: an "explanation" that never looks at the model."""
    return edges_of(classifier.resized(rgb), rgb.shape[:2])


def edges_of(resized: np.ndarray, photo_shape: tuple[int, int]) -> np.ndarray:
    """The edge map of the photo as resized for a model, stretched back to the photo's aspect."""
    grey = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
    grey = grey.astype(np.float32) / 255
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    return stretch_to_aspect(magnitude, photo_shape)


def _parts_to_randomise(classifier: ImageClassifier, method: str, max_steps: int | None) -> list[str]:
    known = (*CAM_VARIANTS, *PIXEL_METHODS, *PERTURBATION_METHODS)
    if method not in known:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(known)}")
    if method not in methods_for(classifier):
        raise ValueError(
            f"{method} is not available for {classifier.info.name}: it needs a model split into stages; "
            f"this one offers {', '.join(methods_for(classifier))}"
        )
    return randomisable(classifier, max_steps)


def randomisable(model, max_steps: int | None) -> list[str]:
    """The names of the parts the check re-initialises, top-down: all, or the first `max_steps`."""
    parts = [name for name, _ in model.randomisable_parts()]
    if not parts:
        why = ("its adapter cannot rebuild itself around a copied network" if not getattr(model, "rebuildable", True)
               else "it has no parts to re-initialise")
        raise SanityError(f"{model.info.name} cannot be sanity-checked: {why}")
    if max_steps is None:
        return parts
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps <= len(parts):
        raise ValueError(f"max_steps must be a whole number from 1 to {len(parts)} (the parts: {', '.join(parts)})")
    return parts[:max_steps]


def compared_curve(name, signed, steps, original, maps, rule_step, comparison=Comparison) -> SanityCurve:
    """Each step's map scored against the original (a `Comparison` of maps, or of words' values for text)."""
    compare = comparison(original, signed)
    similarity, ssim = zip(*(compare(scores) for scores in maps))
    return SanityCurve(name, signed, steps, original, tuple(maps), similarity, ssim, similarity[rule_step - 1] < THRESHOLD)


def _tensors(model) -> list:
    return [*model.network.parameters(), *model.network.buffers()]


def _note(classifier: ImageClassifier, parts: list[str]) -> str:
    if parts == ["whole network"]:
        return (f"{classifier.info.name} could not be split into parts: its whole network was re-initialised in "
                "one step.")
    found = "" if classifier.layers else " (not split into stages: parts found from its modules)"
    return f"Re-initialised top-down{found}, one part per step: {', '.join(parts)}."

"""The model-randomisation check for image-text maps (Grad-CAM, attention relevancy), over the image tower.

As for images (sanity.py): one prompt's map is recomputed on copies of the model whose image tower is
re-initialised from the top (CLIP: the projection head, then each block from the last, then the
embeddings; ConSE: its image classifier's parts), cumulatively, and compared with the original after
each step; the text tower is shared, untouched. The edge detector on the photo as the tower sees it is
the model-independent reference. The same pass rule and threshold as images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from models.image_text import ImageTextModel

from ..records.clip import ClipReport
from ..records.sanity import EDGES, SanityResult
from ..tasks.clip import ClipSettings, explain_image_text
from .sanity import RULE_STEP, THRESHOLD, compared_curve, cascade, cumulative, edges_of, randomisable

MAP_METHODS = ("gradcam", "relevancy")


def clip_sanity_check(
    model: ImageTextModel,
    rgb: np.ndarray,
    prompts: Sequence[str],
    method: str = "gradcam",
    prompt: int | None = None,
    settings: ClipSettings = ClipSettings(),
    seed: int = 0,
    max_steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SanityResult:
    """Randomise `model`'s image tower top-down and score `method`'s map for `prompt` (default: the best
    match). `prompts` are used as given (already cleaned and templated)."""
    if method not in MAP_METHODS:
        raise ValueError(f"unknown method {method!r}; the check compares {', '.join(MAP_METHODS)}")
    parts = randomisable(model, max_steps)
    settings = replace(settings, faithfulness=False)
    with model.lock:
        report = explain_image_text(model, [rgb], prompts, (method,), prompt, settings)
        original = report.maps[0]
        index = original.target.index
        edges = edges_of(model.resized(rgb), rgb.shape[:2])

        def recompute(twin: ImageTextModel) -> np.ndarray:
            return explain_image_text(twin, [rgb], prompts, (method,), index, settings).maps[0].scores

        maps, step_bytes = cascade(model, parts, recompute, seed, progress)
    steps = cumulative(parts)
    rule_step = min(RULE_STEP, len(parts))
    return SanityResult(
        method=compared_curve(method, original.signed, steps, original.scores, maps, rule_step),
        reference=compared_curve(EDGES, False, steps, edges, [edges] * len(parts), rule_step),
        model=model.info.name,
        target=original.target,
        note=f"The image tower re-initialised top-down, one part per step: {', '.join(parts)}. The text tower is "
             "unchanged.",
        threshold=THRESHOLD,
        rule_step=rule_step,
        seed=seed,
        step_bytes=tuple(step_bytes),
    )


def with_clip_sanity(model: ImageTextModel, rgb: np.ndarray, report: ClipReport, settings: ClipSettings,
                     progress: Callable[[int, int], None] | None = None) -> ClipReport:
    """The report with a sanity check attached to each of its maps (`progress` counts all steps)."""
    if not report.maps:
        return report
    total = len(report.maps) * len(randomisable(model, None))
    checked, done = [], 0
    for explanation in report.maps:
        def step(k, _n, before=done):
            if progress is not None:
                progress(before + k, total)

        result = clip_sanity_check(model, rgb, report.prompts, explanation.method, explanation.target.index,
                                   settings, progress=step)
        done += len(result.steps)
        checked.append(replace(explanation, sanity=result))
    return replace(report, maps=tuple(checked))


"""Plain JSON-ready records of results: what the command line prints and the page downloads."""

from __future__ import annotations

import numpy as np

from .clip import ClipReport
from .text import TextReport, grouped_values, token_groups
from .common import ImageExplanation, ModelSummary, Prediction


def image_record(
    model: ModelSummary,
    predictions: tuple[Prediction, ...],
    target: Prediction,
    explanation: ImageExplanation | None,
    source: str | None = None,
    full_size: bool = False,
) -> dict:
    """`attribution` is the map at the resolution it was computed (a CAM's grid), or with `full_size` the map
    resampled to the model's input at the photo's aspect, as the page's metrics read it."""
    record = {
        "input": source,
        "model": {"name": model.name, "source": model.source},
        "predictions": [p.as_dict() for p in predictions],
        "method": explanation.method if explanation else "none",
        "target": {"index": target.index, "label": target.label, "score": target.score},
    }
    if model.note:
        record["model"]["note"] = model.note
    if explanation is not None:
        record["layer"] = explanation.layer
        record["parameters"] = explanation.params
        record["signed"] = explanation.signed
        record.update(_map_fields(explanation, full_size))
        record.update(_evidence(explanation))
    return record


def _map_fields(explanation: ImageExplanation, full_size: bool) -> dict:
    """The map, its shape, the full-size shape and the photo's: its cells cover the whole photo evenly."""
    values = explanation.scores if full_size else explanation.native
    fields = {"attribution_shape": list(values.shape), "full_size_shape": list(explanation.scores.shape)}
    if explanation.photo_shape is not None:
        fields["photo_shape"] = list(explanation.photo_shape)
    fields["attribution"] = _rounded(values)
    return fields


def text_record(report: TextReport, method: str, source: str | None = None) -> dict:
    record = {
        "input": source,
        "model": report.model.as_dict(),
        "how": report.how,
        "predictions": [p.as_dict() for p in report.predictions],
        "method": method,
        "target": report.target.as_dict(),
        "tokens": list(report.tokens),
        "special_tokens": [i for i, s in enumerate(report.special) if s],
        "truncation": report.truncation_notice,
    }
    attribution = report.token_map(method)
    if attribution is not None:
        values = attribution.values
        groups = token_groups(report, merge_words=True, hide_special=True)
        record["attribution"] = _rounded(values)
        record["words"] = [
            {"word": word, "tokens": indices, "attribution": _rounded(value)}
            for (word, indices), value in zip(groups, grouped_values(values, groups))
        ]
        record["parameters"] = attribution.params
        record.update(_evidence(attribution))
    if method == "attention" and report.attention is not None:
        record["attention_shape"] = list(report.attention.shape)  # layers, heads, query token, key token
        record["attention"] = _rounded(report.attention)
    if method == "rollout" and report.rollout is not None:
        record["rollout"] = _rounded(report.rollout)
    return record


def clip_record(report: ClipReport, method: str, source: str | None = None, full_size: bool = False) -> dict:
    """One image's match with every prompt, and the chosen method for the target prompt (its map as in
    image_record)."""
    record = {
        "input": source,
        "model": report.model.as_dict(),
        "how": report.how,
        "prompts": list(report.prompts),
        "notes": list(report.notes),
        "predictions": [p.as_dict() for p in report.predictions],
        "method": method,
        "target": report.target.as_dict(),
    }
    image_map = next((m for m in report.maps if m.method == method and m.target.index == report.target.index), None)
    if image_map is not None:
        record["layer"] = image_map.layer
        record.update(_map_fields(image_map, full_size))
        record.update(_evidence(image_map))
    words = next((w for w in report.words if w.prompt == report.target.index), None)
    if method == "text-integrated-gradients" and words is not None:
        record["tokens"] = list(words.tokens)
        record["special_tokens"] = [i for i, s in enumerate(words.special) if s]
        record["attribution"] = _rounded(words.attribution.values)
        record["parameters"] = words.attribution.params
        record.update(_evidence(words.attribution))
    return record


def _evidence(result) -> dict:
    """What a map or token attribution carries beside its values: the completeness check, faithfulness and
    the sanity check, each only when present."""
    fields = {}
    if result.convergence_delta is not None:
        fields["convergence_delta"] = result.convergence_delta
        fields["explained_output_difference"] = result.output_difference
    if result.faithfulness is not None:
        fields["faithfulness"] = result.faithfulness.as_dict()
    if result.sanity is not None:
        fields["sanity"] = result.sanity.record()
    return fields


def _rounded(values) -> list | float:
    """Six significant digits, any shape: plenty for an audit, a third of the size of full floats."""

    def six(v):
        return [six(x) for x in v] if isinstance(v, list) else float(f"{v:.6g}")

    return six(np.asarray(values).tolist())

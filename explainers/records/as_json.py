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
) -> dict:
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
        record["attribution_shape"] = list(explanation.scores.shape)
        record["attribution"] = _rounded(explanation.scores)
        if explanation.convergence_delta is not None:
            record["convergence_delta"] = explanation.convergence_delta
            record["explained_output_difference"] = explanation.output_difference
        if explanation.faithfulness is not None:
            record["faithfulness"] = explanation.faithfulness.as_dict()
        if explanation.sanity is not None:
            record["sanity"] = explanation.sanity.record()
    return record


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
        if attribution.convergence_delta is not None:
            record["convergence_delta"] = attribution.convergence_delta
            record["explained_output_difference"] = attribution.output_difference
        if attribution.faithfulness is not None:
            record["faithfulness"] = attribution.faithfulness.as_dict()
        if attribution.sanity is not None:
            record["sanity"] = attribution.sanity.record()
    if method == "attention" and report.attention is not None:
        record["attention_shape"] = list(report.attention.shape)  # layers, heads, query token, key token
        record["attention"] = _rounded(report.attention)
    if method == "rollout" and report.rollout is not None:
        record["rollout"] = _rounded(report.rollout)
    return record


def clip_record(report: ClipReport, method: str, source: str | None = None) -> dict:
    """One image's match with every prompt, and the chosen method for the target prompt."""
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
        record["attribution_shape"] = list(image_map.scores.shape)
        record["attribution"] = _rounded(image_map.scores)
        if image_map.faithfulness is not None:
            record["faithfulness"] = image_map.faithfulness.as_dict()
        if image_map.sanity is not None:
            record["sanity"] = image_map.sanity.record()
    words = next((w for w in report.words if w.prompt == report.target.index), None)
    if method == "text-integrated-gradients" and words is not None:
        record["tokens"] = list(words.tokens)
        record["special_tokens"] = [i for i, s in enumerate(words.special) if s]
        record["attribution"] = _rounded(words.attribution.values)
        record["parameters"] = words.attribution.params
        record["convergence_delta"] = words.attribution.convergence_delta
        record["explained_output_difference"] = words.attribution.output_difference
    return record


def _rounded(values) -> list | float:
    """Six significant digits, any shape: plenty for an audit, a third of the size of full floats."""

    def six(v):
        return [six(x) for x in v] if isinstance(v, list) else float(f"{v:.6g}")

    return six(np.asarray(values).tolist())

"""Exports an auditor can keep: self-contained figure HTML, and raw values as JSON or CSV.

The JSON record is the same one the command line prints, so a page download and a batch run
can be compared line by line.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import plotly.graph_objects as go

from .types import ImageExplanation, ModelSummary, Prediction


def figure_html(figure: go.Figure) -> str:
    """One HTML file that opens offline: plotly.js is inlined, not fetched."""
    return figure.to_html(include_plotlyjs=True, full_html=True)


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
    return record


def explanation_json(explanation: ImageExplanation, source: str | None = None) -> str:
    record = image_record(explanation.model, explanation.predictions, explanation.target, explanation, source)
    return json.dumps(record)


def attribution_csv(explanation: ImageExplanation) -> str:
    """The raw map, one row per pixel row, with the context in comment lines on top."""
    buffer = io.StringIO()
    buffer.write(f"# model: {explanation.model.name}\n# method: {explanation.method}\n")
    buffer.write(f"# target: {explanation.target.index} {explanation.target.label}\n")
    writer = csv.writer(buffer)
    for row in explanation.scores:
        writer.writerow(f"{v:.6g}" for v in row)
    return buffer.getvalue()


def _rounded(values: np.ndarray) -> list:
    """Six significant digits: plenty for an audit, a third of the size of full floats."""
    return [[float(f"{v:.6g}") for v in row] for row in values.tolist()]

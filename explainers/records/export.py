"""Exports an auditor can keep: self-contained figure HTML, and raw values as JSON or CSV.

The JSON is the record the command line prints (as_json.py), so a page download and a batch run
can be compared line by line.
"""

from __future__ import annotations

import csv
import io
import json

import plotly.graph_objects as go

from .as_json import image_record
from .text import TextReport, token_groups
from .common import ImageExplanation


def figure_html(figure: go.Figure, *more: go.Figure) -> str:
    """One HTML file that opens offline: plotly.js is inlined once, not fetched; `more` figures follow the first."""
    page = figure.to_html(include_plotlyjs=True, full_html=True)
    if not more:
        return page
    rest = "".join(other.to_html(include_plotlyjs=False, full_html=False) for other in more)
    return page.replace("</body>", rest + "</body>", 1)


def full_figure_html(draw, *args, more: tuple[go.Figure, ...] = (), **kwargs) -> str:
    """A download's figure: `draw(*args, full=True, **kwargs)`, every value a cell, then the `more` figures.
    The page's own figure is the light one (explainers/figures/image.heatmap_layers)."""
    return figure_html(draw(*args, full=True, **kwargs), *more)


def explanation_json(explanation: ImageExplanation, source: str | None = None) -> str:
    record = image_record(explanation.model, explanation.predictions, explanation.target, explanation, source,
                          full_size=True)
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


def text_attribution_csv(report: TextReport, method: str = "integrated-gradients") -> str:
    """One row per token: position, token, the word it belongs to, attribution; context on top."""
    buffer = io.StringIO()
    buffer.write(f"# model: {report.model.name}\n# method: {method}\n")
    buffer.write(f"# target: {report.target.index} {report.target.label}\n")
    word_of = {i: word for word, indices in token_groups(report, True, False) for i in indices}
    writer = csv.writer(buffer)
    writer.writerow(["position", "token", "word", "attribution"])
    for i, (token, value) in enumerate(zip(report.tokens, report.token_map(method).values)):
        writer.writerow([i, token, word_of.get(i, token), f"{value:.6g}"])
    return buffer.getvalue()

"""Figures of an audit, from its summary (plain dicts): confusion matrix, accuracy per group,
reliability diagram, faithfulness against the references, and small overlays for the galleries.
No torch. Every label and item name comes from the user's data, so all of them are escaped."""

from __future__ import annotations

import cv2
import numpy as np
import plotly.graph_objects as go

from ..records.common import METHOD_NAMES
from ..records.faithfulness import REFERENCE_NAMES
from .faithfulness import COLOURS
from .image import _short, escape, png_data_uri

REFERENCE_COLOURS = {"random": "#7f7f7f", "centre": "#bcbd22"}


def confusion_figure(confusion: dict) -> go.Figure:
    """Counts, true classes down and predicted classes across; each cell's items ride along as customdata."""
    rows = [escape(_short(r, 28)) for r in confusion["rows"]]
    columns = [escape(_short(c, 28)) for c in confusion["columns"]]
    counts = np.array(confusion["matrix"], dtype=float)
    names = [[[rows[r], columns[c]] for c in range(len(columns))] for r in range(len(rows))]
    figure = go.Figure(go.Heatmap(
        z=counts, x=list(range(len(columns))), y=list(range(len(rows))), colorscale="Blues", zmin=0,
        text=counts.astype(int), texttemplate="%{text}", customdata=names, colorbar=dict(title="items"),
        hovertemplate="true %{customdata[0]}<br>predicted %{customdata[1]}<br>%{z} items<extra></extra>",
    ))
    figure.update_xaxes(tickvals=list(range(len(columns))), ticktext=columns, title="predicted class", tickangle=-40)
    figure.update_yaxes(tickvals=list(range(len(rows))), ticktext=rows, title="true class", autorange="reversed")
    side = 60 + 34 * max(len(rows), 4)
    figure.update_layout(height=min(900, side + 120), margin=dict(l=10, r=10, t=40, b=10), title="Confusion matrix")
    return figure


def add_cell_targets(figure: go.Figure, confusion: dict) -> None:
    """One invisible marker per non-empty cell, so that clicking a cell selects it where the page listens
    for point selections (heatmap cells themselves are not selectable there)."""
    cells = [tuple(int(v) for v in key.split(",")) for key, items in confusion["items"].items() if items]
    figure.add_trace(go.Scatter(
        x=[c for _, c in cells], y=[r for r, _ in cells], mode="markers", hoverinfo="none", showlegend=False,
        marker=dict(symbol="square", size=26, opacity=0), name="cells",
    ))


def group_figure(column: str, rows: dict, overall: float) -> go.Figure:
    """Accuracy per value of one group column, with Wilson intervals; groups too small in grey."""
    values = list(rows)
    accuracy = [rows[v]["accuracy"] for v in values]
    low = [rows[v]["accuracy"] - rows[v]["accuracy_interval"][0] for v in values]
    high = [rows[v]["accuracy_interval"][1] - rows[v]["accuracy"] for v in values]
    colours = ["#bbbbbb" if rows[v]["too_small"] else ("#d62728" if rows[v]["gap_clear"] and rows[v]["gap"] < 0 else
               "#1f77b4") for v in values]
    labels = [escape(_short(v or "(empty)", 30)) for v in values]
    hover = [f"{escape(v or '(empty)')}<br>accuracy {rows[v]['accuracy']:.1%} of {rows[v]['size']} items<br>"
             f"gap to overall {rows[v]['gap']:+.1%}" + (" (too small to say)" if rows[v]["too_small"] else "")
             + "<extra></extra>" for v in values]
    figure = go.Figure(go.Bar(x=labels, y=accuracy, marker_color=colours, hovertemplate=hover,
                              error_y=dict(type="data", symmetric=False, array=high, arrayminus=low)))
    figure.add_hline(y=overall, line_dash="dash", line_color="#333", annotation_text=f"overall {overall:.1%}",
                     annotation_position="top left")
    figure.update_yaxes(range=[0, 1.05], tickformat=".0%", title="accuracy (95% Wilson interval)")
    figure.update_layout(title=f"Accuracy by {escape(column)}", height=360, margin=dict(l=10, r=10, t=50, b=10),
                         showlegend=False)
    return figure


def reliability_figure(bins: list[dict], ece: float) -> go.Figure:
    """Accuracy against confidence per bin (bars) beside perfect calibration (the diagonal)."""
    filled = [b for b in bins if b["count"]]
    centres = [(b["low"] + b["high"]) / 2 for b in filled]
    figure = go.Figure()
    figure.add_trace(go.Bar(x=centres, y=[b["accuracy"] for b in filled], width=[b["high"] - b["low"] for b in filled],
                            name="accuracy in the bin", marker_color="#1f77b4", opacity=0.8,
                            customdata=[[b["count"], b["confidence"]] for b in filled],
                            hovertemplate="confidence %{customdata[1]:.1%} (mean)<br>accuracy %{y:.1%}<br>"
                                          "%{customdata[0]} items<extra></extra>"))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="#333"),
                                name="perfect calibration", hoverinfo="skip"))
    figure.add_trace(go.Scatter(x=centres, y=[b["confidence"] for b in filled], mode="markers", name="mean confidence",
                                marker=dict(color="#d62728", size=8), hoverinfo="skip"))
    figure.update_xaxes(range=[0, 1], tickformat=".0%", title="confidence (probability of the predicted class)")
    figure.update_yaxes(range=[0, 1.05], tickformat=".0%", title="accuracy")
    figure.update_layout(title=f"Reliability diagram (expected calibration error {ece:.3f})", height=380,
                         margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.25), bargap=0.05)
    return figure


def faithfulness_figure(faithfulness: dict) -> go.Figure:
    """Mean deletion and insertion areas per method beside each reference order, with bootstrap intervals."""
    figure = go.Figure()
    kinds = ("deletion", "insertion")
    x = [f"{k} (lower is better)" if k == "deletion" else f"{k} (higher is better)" for k in kinds]
    for number, (method, row) in enumerate(faithfulness.items()):
        _bars(figure, f"{METHOD_NAMES.get(method, method)} (n={row['items']})", x, row, COLOURS[number % len(COLOURS)])
        for name, reference in row["references"].items():
            label = f"{REFERENCE_NAMES.get(name, name)}, for {METHOD_NAMES.get(method, method)}"
            _bars(figure, label, x, reference, REFERENCE_COLOURS.get(name, "#999"))
    figure.update_yaxes(title="mean area under the curve (95% bootstrap interval)", range=[0, 1])
    figure.update_layout(barmode="group", height=400, title="Faithfulness over the measured items",
                         margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.2))
    return figure


def _bars(figure: go.Figure, name: str, x: list[str], row: dict, colour: str) -> None:
    means = [row["deletion_auc"], row["insertion_auc"]]
    intervals = [row["deletion_interval"], row["insertion_interval"]]
    figure.add_trace(go.Bar(
        name=escape(name), x=x, y=means, marker_color=colour,
        error_y=dict(type="data", symmetric=False, array=[hi - m for m, (_, hi) in zip(means, intervals)],
                     arrayminus=[m - lo for m, (lo, _) in zip(means, intervals)]),
        hovertemplate="%{y:.3f}<extra>" + escape(name) + "</extra>",
    ))


def overlay_uri(image: np.ndarray, scores: np.ndarray, signed: bool) -> str:
    """The overlay as a PNG data URI, for the report's galleries."""
    return png_data_uri(overlay(image, scores, signed))


def overlay(image: np.ndarray, scores: np.ndarray, signed: bool) -> np.ndarray:
    """The photo with its map blended over it (uint8 RGB): warmer where the map is larger."""
    values = np.abs(scores) if signed else np.clip(scores, 0, None)
    top = float(np.percentile(values, 99.5)) if values.size else 0.0
    normalised = np.clip(values / top, 0, 1) if top > 0 else np.zeros_like(values)
    height, width = image.shape[:2]
    resized = cv2.resize(normalised.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    colours = cv2.applyColorMap((resized * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    alpha = (0.15 + 0.55 * resized)[..., None]
    return (image.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha).astype(np.uint8)


def word_spans(words: list[str], values: list[float]) -> str:
    """Words coloured by attribution (red for, blue against), as escaped HTML."""
    top = max((abs(v) for v in values), default=0.0) or 1.0
    spans = []
    for word, value in zip(words, values):
        strength = min(1.0, abs(value) / top)
        colour = f"rgba(214,39,40,{strength:.2f})" if value > 0 else f"rgba(31,119,180,{strength:.2f})"
        spans.append(f'<span class="word" style="background:{colour}" title="{value:+.4f}">{escape(word)}</span>')
    return " ".join(spans)

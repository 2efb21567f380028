"""Plotly figures for inside a text classifier: one head's attention step by step, the head's map with the
chosen row outlined, how each token's state changes through the layers, and where the prediction settles.
Pure functions of the plain record (explainers/records/inside_text.py); every label is escaped."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..records.inside_text import InsideText, StepByStep, TokenPaths
from .image import escape
from .text import _cell, attention_figure

DRAWN_KEYS = 48  # keys drawn in the step-by-step bars; a longer text shows the most attended ones


def drawn_keys(step: StepByStep, limit: int = DRAWN_KEYS) -> list[int]:
    """The keys the bars show, in text order: every key when they fit, else the most attended and the query."""
    if len(step.weights) <= limit:
        return list(range(len(step.weights)))
    top = set(np.argsort(-step.weights)[: limit - 1].tolist()) | {step.token}
    return sorted(top)


def steps_figure(record: InsideText, step: StepByStep, limit: int = DRAWN_KEYS) -> go.Figure:
    """Two rows over the same key tokens: the scaled dot products q·k/√d, then their softmax."""
    keys = drawn_keys(step, limit)
    names = [f"#{j} {_cell(record.tokens[j])}" for j in keys]
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=(f"score = q·k / √{step.query.shape[0]} = q·k / {step.scale:.2f}",
                                           "weight = softmax(score): this row of the attention map"))
    colours = ["#d62728" if j == step.token else "#1f77b4" for j in keys]
    figure.add_bar(x=names, y=step.scores[keys], marker_color=colours, row=1, col=1,
                   hovertemplate="%{x}<br>score %{y:.4f}<extra></extra>")
    figure.add_bar(x=names, y=step.weights[keys], marker_color=colours, row=2, col=1,
                   hovertemplate="%{x}<br>weight %{y:.4f}<extra></extra>")
    shown = "" if len(keys) == len(step.weights) else f" (the {len(keys)} most attended of {len(step.weights)} keys)"
    title = (f"Layer {step.layer + 1}, head {step.head + 1}: how #{step.token} {escape(record.tokens[step.token])} "
             f"spreads its attention{shown}")
    figure.update_layout(title=title, showlegend=False, height=520, margin=dict(l=10, r=10, t=80, b=10))
    figure.update_xaxes(tickangle=-60, row=2, col=1)
    return figure


def head_map_figure(record: InsideText, layer: int, head: int, token: int) -> go.Figure:
    """The head's whole attention map, every row computed as the step by step does (tests show it is the
    model's own to 1e-5), the chosen token's row outlined."""
    figure = attention_figure(record.tokens, record.head_map(layer, head),
                              f"Layer {layer + 1}, head {head + 1}: its attention map, every row computed this way "
                              f"(row #{token} outlined)")
    size = len(record.tokens)
    figure.add_shape(type="rect", x0=-0.5, x1=size - 0.5, y0=token - 0.5, y1=token + 0.5,
                     line=dict(color="#d62728", width=3))
    return figure


def layers_figure(record: InsideText) -> go.Figure:
    """Layers x tokens: how similar each token's state is to what it finally becomes."""
    positions = list(range(len(record.tokens)))
    rows = ["embeddings"] + [f"layer {i}" for i in range(1, record.layers + 1)]
    hover = [[f"{row}, #{j} {escape(record.tokens[j])}" for j in positions] for row in rows]
    figure = go.Figure(go.Heatmap(z=record.self_similarity, x=positions, y=rows, customdata=hover, colorscale="Viridis",
                                  zmax=1, colorbar=dict(title="cosine", thickness=12),
                                  hovertemplate="%{customdata}<br>similarity to its final state %{z:.3f}<extra></extra>"))
    figure.update_xaxes(tickmode="array", tickvals=positions, ticktext=[_cell(t) for t in record.tokens], tickangle=-60)
    figure.update_layout(title="Each token's state, layer by layer, against its final state (cosine similarity)",
                         height=260 + 22 * record.layers, margin=dict(l=10, r=10, t=60, b=10))
    return figure


def readout_figure(record: InsideText) -> go.Figure:
    """Each label's probability with the classifier read from every layer; the settling layer marked."""
    rows = ["embeddings"] + [f"layer {i}" for i in range(1, record.layers + 1)]
    figure = go.Figure()
    for index, label in enumerate(record.labels):
        figure.add_scatter(x=rows, y=record.readout[:, index], mode="lines+markers", name=escape(label),
                           hovertemplate=f"{escape(label)}<br>%{{x}}: %{{y:.1%}}<extra></extra>")
    if record.settles_at is not None:
        figure.add_vline(x=record.settles_at, line_dash="dot", line_color="#555")
        figure.add_annotation(x=record.settles_at, y=1.05, text="settles here", showarrow=False, yref="paper")
    figure.update_yaxes(range=[0, 1], tickformat=".0%", title="probability")
    figure.update_layout(title="The classifier read from each layer", height=360, margin=dict(l=10, r=10, t=60, b=10))
    return figure


def paths_figure(record: InsideText, paths: TokenPaths, tokens: list[int]) -> go.Figure:
    """The chosen tokens' states from the embeddings to the last layer, on two principal components."""
    figure = go.Figure()
    for j in tokens:
        path = paths.coords[:, j]
        labels = ["embeddings"] + [f"layer {i}" for i in range(1, record.layers + 1)]
        figure.add_scatter(x=path[:, 0], y=path[:, 1], mode="lines+markers", name=f"#{j} {escape(record.tokens[j])}",
                           customdata=labels, hovertemplate="%{customdata}<extra>%{fullData.name}</extra>")
    a, b = paths.variance
    figure.update_xaxes(title=f"component 1 ({a:.0%} of the variance)")
    figure.update_yaxes(title=f"component 2 ({b:.0%})")
    figure.update_layout(title="Each token's path through the layers (PCA of every state)", height=460,
                         margin=dict(l=10, r=10, t=60, b=10))
    return figure

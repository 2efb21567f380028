"""Plotly figures for inside an image classifier: the stages as a diagram (a click opens one), a stage's
most active feature maps, the first convolution's filters, Grad-CAM at every depth, and the head's
contributions. Pure functions of the plain records (explainers/records/inside_image.py)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..records.inside_image import DepthView, InsideImage, StageView
from .image import escape

MAP_SCALE = "Viridis"
CAM_SCALE = "Jet"


def diagram_figure(record: InsideImage, chosen: str | None = None) -> go.Figure:
    """One box per stage in the order they run, then the head; the box's size grows with its parameters.
    Hover gives the details; clicking a stage selects it (the page opens it)."""
    names = [s.name for s in record.stages] + ["head"]
    params = [s.parameters for s in record.stages] + [record.head_parameters]
    shapes = [" × ".join(map(str, s.shape)) for s in record.stages] + [f"{len(record.predictions)} of the classes shown"]
    fields = [("?" if s.receptive_field is None else f"{s.receptive_field} px, cells {s.jump} px apart")
              for s in record.stages] + ["the whole photo (global pooling)"]
    hover = [f"<b>{escape(n)}</b><br>output {sh}<br>{p:,} parameters<br>one cell sees {f}"
             for n, sh, p, f in zip(names, shapes, params, fields)]
    sizes = [18 + 10 * math.log10(max(p, 1)) for p in params]
    colours = ["#d62728" if n == chosen else "#1f77b4" for n in names]
    colours[-1] = "#7f7f7f" if chosen != "head" else "#d62728"
    figure = go.Figure()
    figure.add_scatter(x=list(range(len(names))), y=[0] * len(names), mode="lines", line=dict(color="#bbb", width=2),
                       hoverinfo="skip", showlegend=False)
    figure.add_scatter(x=list(range(len(names))), y=[0] * len(names), mode="markers+text", text=[escape(n) for n in names],
                       textposition="top center", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                       marker=dict(symbol="square", size=sizes, color=colours), showlegend=False)
    channels = [f"{s.shape[0]} ch<br>{s.shape[1]}×{s.shape[2]}" for s in record.stages] + ["logits"]
    for x, label in enumerate(channels):
        figure.add_annotation(x=x, y=-0.6, text=label, showarrow=False, font=dict(size=11))
    figure.update_xaxes(visible=False, range=[-0.7, len(names) - 0.3])
    figure.update_yaxes(visible=False, range=[-1, 1])
    # Two lines: at the projector's font size one line runs past the figure's edge.
    figure.update_layout(title=f"{escape(record.model.name)}: {record.total_parameters:,} parameters<br>"
                               f"input {record.input_size[0]} × {record.input_size[1]} (click a stage)",
                         height=280, margin=dict(l=10, r=10, t=70, b=10), clickmode="event+select")
    return figure


def feature_maps_figure(stage: StageView, columns: int = 4) -> go.Figure:
    """The stage's most active channels as small multiples, each on its own colour scale; hover: the value."""
    count = len(stage.channels)
    rows = math.ceil(count / columns)
    titles = [f"channel {c} (mean {m:.2f})" for c, m in zip(stage.channels, stage.channel_means)]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.06)
    for i, (channel, values) in enumerate(zip(stage.channels, stage.channel_maps)):
        figure.add_heatmap(z=values, row=i // columns + 1, col=i % columns + 1, colorscale=MAP_SCALE, showscale=False,
                           hovertemplate=f"channel {channel}<br>row %{{y}}, column %{{x}}<br>value %{{z:.3f}}<extra></extra>")
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(title=f"{escape(stage.name)}: its {count} most active of {stage.shape[0]} channels "
                               f"({stage.shape[1]} × {stage.shape[2]} each)",
                         height=150 + 170 * rows, margin=dict(l=10, r=10, t=70, b=10))
    return figure


def average_figure(stage: StageView) -> go.Figure:
    figure = go.Figure(go.Heatmap(z=stage.average, colorscale=MAP_SCALE, colorbar=dict(thickness=12),
                                  hovertemplate="row %{y}, column %{x}<br>mean over channels %{z:.3f}<extra></extra>"))
    figure.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    figure.update_xaxes(visible=False)
    figure.update_layout(title=f"{escape(stage.name)} averaged over its {stage.shape[0]} channels", height=360,
                         margin=dict(l=10, r=10, t=50, b=10))
    return figure


def filters_figure(filters: np.ndarray, columns: int = 8, zoom: int = 12) -> go.Figure:
    """The first convolution's filters as RGB tiles (each scaled on its own; grey = zero weight)."""
    count, k = filters.shape[0], filters.shape[1]
    rows = math.ceil(count / columns)
    cell = k * zoom + 4
    mosaic = np.full((rows * cell, columns * cell, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(filters):
        big = np.kron((tile * 255).round().astype(np.uint8), np.ones((zoom, zoom, 1), dtype=np.uint8))
        r, c = (i // columns) * cell + 2, (i % columns) * cell + 2
        mosaic[r:r + k * zoom, c:c + k * zoom] = big
    figure = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=f"The first convolution's {count} filters ({k} × {k} × RGB): what each looks for",
                         height=80 + rows * 70, margin=dict(l=10, r=10, t=50, b=10))
    return figure


def depth_figure(depth: DepthView, columns: int = 5) -> go.Figure:
    """Grad-CAM for the target class read at every stage, side by side at each stage's own resolution."""
    count = len(depth.stages)
    rows = math.ceil(count / columns)
    titles = [f"{name} ({cam.shape[0]}×{cam.shape[1]})" for name, cam in zip(depth.stages, depth.cams)]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.08)
    for i, (name, cam) in enumerate(zip(depth.stages, depth.cams)):
        top = float(cam.max()) or 1.0
        row, col = i // columns + 1, i % columns + 1
        figure.add_heatmap(z=cam / top, row=row, col=col, colorscale=CAM_SCALE,
                           zmin=0, zmax=1, showscale=False, customdata=cam,
                           hovertemplate=f"{escape(name)}<br>cell %{{y}}, %{{x}}<br>Grad-CAM %{{customdata:.4g}}"
                                         "<extra></extra>")
        # Each map keeps its own aspect: the stages' grids differ, so each y axis follows its own x axis.
        figure.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", row=row, col=col)
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", constrain="domain")
    # Short: at the projector's font size a longer title runs past the figure's edge (the caption says more).
    figure.update_layout(title=f"Grad-CAM for “{escape(depth.target.label)}” at every depth",
                         height=130 + 190 * rows, margin=dict(l=10, r=10, t=90, b=10))
    return figure


def head_figure(record: InsideImage, which: int = 0) -> go.Figure:
    """One class's logit as a waterfall: bias, the largest channel contributions, every other channel."""
    c = record.contributions[which]
    labels = ["bias"] + [f"channel {ch}" for ch in c.channels] + [f"the other {record.pooled_features - len(c.channels)}"]
    values = [c.bias, *c.values, c.rest]
    figure = go.Figure(go.Waterfall(x=labels + ["logit"], y=values + [c.logit], measure=["relative"] * len(values) + ["total"],
                                    hovertemplate="%{x}: %{y:+.3f}<extra></extra>"))
    figure.update_layout(title=f"“{escape(c.prediction.label)}”: logit {c.logit:.2f} = bias + Σ weight × pooled "
                               f"feature ({c.prediction.score:.1%} after softmax)",
                         height=380, margin=dict(l=10, r=10, t=50, b=10))
    return figure

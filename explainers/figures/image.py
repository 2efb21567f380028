"""Plotly figures from explanation records: pure functions of data, no torch, no Streamlit.

Normalisation happens here, at draw time, so an opacity change redraws a cached record. Hover
shows the raw attribution value. User-supplied text is escaped: Plotly renders some HTML in labels.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import cv2
import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from ..records.common import METHOD_NAMES, PIXEL_METHODS, ImageExplanation, Prediction

# Colour scales whose low end is transparent, so the photo shows through where there is no evidence.
EVIDENCE_SCALE = [
    [0.0, "rgba(0,0,130,0)"],
    [0.15, "rgba(0,60,255,0.35)"],
    [0.4, "rgba(0,220,255,0.7)"],
    [0.65, "rgba(255,230,0,0.85)"],
    [1.0, "rgba(220,0,0,1)"],
]
SIGNED_SCALE = [
    [0.0, "rgba(33,102,172,1)"],
    [0.35, "rgba(103,169,207,0.7)"],
    [0.5, "rgba(255,255,255,0)"],
    [0.65, "rgba(239,138,98,0.7)"],
    [1.0, "rgba(178,24,43,1)"],
]
CLIP_PERCENTILE = 99.5  # pixel attributions have a few extreme values; clip colours, not hover values
SMOOTHING = 0.015  # the projector display's blur, sigma as a share of the map's long side


def projector_values(scores: np.ndarray) -> np.ndarray:
    """What a pixel map looks like from the back of a classroom: |attribution|, Gaussian-smoothed, so the
    regions where evidence concentrates show as areas instead of scattered single pixels."""
    sigma = max(1.0, SMOOTHING * max(scores.shape))
    return cv2.GaussianBlur(np.abs(scores).astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def escape(text: str) -> str:
    return html.escape(str(text), quote=True)


def method_title(explanation: ImageExplanation, smoothed: bool = False) -> str:
    name = METHOD_NAMES.get(explanation.method, explanation.method)
    if smoothed and explanation.method in PIXEL_METHODS:
        return f"{name}, smoothed |values|"
    return f"{name} ({escape(explanation.layer)})" if explanation.layer else name


def prediction_bars(predictions: Sequence[Prediction], highlight: int | None = None) -> go.Figure:
    """Top predictions as horizontal bars, the best on top."""
    rows = list(reversed(predictions))
    labels = [f"{escape(_short(p.label))} · {p.index}" for p in rows]
    colours = ["#d62728" if p.index == highlight else "#1f77b4" for p in rows]
    figure = go.Figure(
        go.Bar(
            x=[p.score for p in rows],
            y=list(range(len(rows))),
            orientation="h",
            marker_color=colours,
            text=[f"{p.score:.1%}" for p in rows],
            textposition="auto",
            customdata=[[escape(p.label), p.index] for p in rows],
            hovertemplate="%{customdata[0]}<br>class %{customdata[1]}<br>probability %{x:.2%}<extra></extra>",
        )
    )
    figure.update_yaxes(tickmode="array", tickvals=list(range(len(rows))), ticktext=labels)
    figure.update_xaxes(title="probability", range=[0, 1], tickformat=".0%")
    figure.update_layout(title="Top predictions", height=80 + 40 * len(rows), margin=dict(l=10, r=10, t=40, b=40))
    return figure


def heatmap_traces(explanation: ImageExplanation, opacity: float, show_scale: bool = True, smoothed: bool = False) -> list:
    """The photo and the attribution map stretched over it (no resampling of the values).

    `smoothed` draws a pixel map's projector display (projector_values); hover still shows the raw value."""
    image = explanation.image
    height, width = image.shape[:2]
    scores = explanation.scores
    rows, cols = scores.shape
    dy, dx = height / rows, width / cols
    raw = dict(hovertemplate="x %{x:.0f}, y %{y:.0f}<br>value %{z:.4g}<extra></extra>")
    title = "attribution" if explanation.signed else "evidence"
    if smoothed and explanation.method in PIXEL_METHODS:
        shown = projector_values(scores)
        # Colour starts at the median: the smoothed map has a floor everywhere, and the half above it is the story.
        low, top = np.percentile(shown, [50, CLIP_PERCENTILE])
        colour = dict(colorscale=EVIDENCE_SCALE, zmin=float(low), zmax=float(top) if top > low else float(low) + 1e-12)
        raw = dict(customdata=scores, hovertemplate="x %{x:.0f}, y %{y:.0f}<br>value %{customdata:.4g}"
                                                   "<br>smoothed |value| %{z:.4g}<extra></extra>")
        scores, title = shown, "|attr.|, smoothed"
    elif explanation.signed:
        limit = float(np.percentile(np.abs(scores), CLIP_PERCENTILE)) or 1.0
        colour = dict(colorscale=SIGNED_SCALE, zmin=-limit, zmax=limit, zmid=0)
    else:
        top = float(np.percentile(scores, CLIP_PERCENTILE)) or float(scores.max()) or 1.0
        colour = dict(colorscale=EVIDENCE_SCALE, zmin=0, zmax=top)
    return [
        go.Image(source=png_data_uri(image), hoverinfo="skip"),
        go.Heatmap(
            z=scores,
            x0=-0.5 + dx / 2,
            dx=dx,
            y0=-0.5 + dy / 2,
            dy=dy,
            opacity=opacity,
            showscale=show_scale,
            colorbar=dict(title=title, thickness=12),
            **raw,
            **colour,
        ),
    ]


def heatmap_figure(explanation: ImageExplanation, opacity: float = 0.6, smoothed: bool = False) -> go.Figure:
    figure = go.Figure(heatmap_traces(explanation, opacity, smoothed=smoothed))
    title = f"{method_title(explanation, smoothed)} for “{escape(_short(explanation.target.label))}”"
    if explanation.convergence_delta is not None:
        title += f"<br><sup>{completeness_text(explanation, short=True)}</sup>"
    _image_axes(figure, explanation.image.shape)
    figure.update_layout(title=title)
    return figure


def comparison_figure(
    explanations: Sequence[ImageExplanation], opacity: float = 0.6, titles: Sequence[str] | None = None, title: str = "",
    smoothed: bool = False,
) -> go.Figure:
    """Several maps side by side for the same image (methods, or prompts), each scaled to its own range."""
    count = len(explanations)
    columns = min(count, 4)
    rows = -(-count // columns)
    names = [escape(t) for t in titles] if titles else [method_title(e, smoothed) for e in explanations]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=names, vertical_spacing=0.08)
    for number, explanation in enumerate(explanations):
        for trace in heatmap_traces(explanation, opacity, show_scale=False, smoothed=smoothed):
            figure.add_trace(trace, row=number // columns + 1, col=number % columns + 1)
    height, width = explanations[0].image.shape[:2]
    figure.update_xaxes(showticklabels=False, range=[-0.5, width - 0.5])
    figure.update_yaxes(showticklabels=False, range=[height - 0.5, -0.5], scaleanchor="x")
    target = explanations[0].target.label
    title = escape(title) if title else f"Methods compared for “{escape(_short(target))}” (each map scaled to its own range)"
    figure.update_layout(
        title=title,
        height=120 + rows * int(900 / columns * height / width),
        margin=dict(l=10, r=10, t=80, b=10),
    )
    return figure


def completeness_text(explanation: ImageExplanation, short: bool = False) -> str:
    delta, difference = explanation.convergence_delta, explanation.output_difference
    share = abs(delta) / abs(difference) if difference else float("inf")
    if short:
        return f"completeness gap {delta:+.3g} ({share:.1%} of f(x) − f(baseline) = {difference:.3g})"
    return (
        f"sum of attributions − (f(x) − f(baseline)) = {delta:+.3g}, "
        f"{share:.1%} of f(x) − f(baseline) = {difference:.3g}"
    )


def png_data_uri(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")  # pixels only: no EXIF or other metadata
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image_axes(figure: go.Figure, shape) -> None:
    height, width = shape[:2]
    figure.update_xaxes(showticklabels=False, range=[-0.5, width - 0.5], constrain="domain")
    figure.update_yaxes(showticklabels=False, range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain")
    figure.update_layout(margin=dict(l=10, r=10, t=70, b=10), height=int(90 + 440 * min(height / width, 1.4)))


def _short(label: str, limit: int = 40) -> str:
    """First name of an ImageNet-style synonym list, shortened for axes and titles."""
    first = label.split(",")[0].strip() or label
    return first if len(first) <= limit else first[: limit - 1] + "…"

"""Plotly figures for inside an image-text model: photos and prompts in the shared embedding space (2-D),
and how one photo's cosine similarities become its probabilities. Pure functions of the plain record."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..records.inside_clip import InsideClip
from .image import escape


def embedding_figure(record: InsideClip) -> go.Figure:
    """Photos (squares) and prompts (circles) on the first two principal components; a dotted line joins each
    photo to its most probable prompt."""
    count = len(record.images)
    photos, prompts = record.points[:count], record.points[count:]
    figure = go.Figure()
    best = record.probabilities.argmax(-1)
    for i, j in enumerate(best):
        figure.add_scatter(x=[photos[i, 0], prompts[j, 0]], y=[photos[i, 1], prompts[j, 1]], mode="lines",
                           line=dict(dash="dot", color="#999", width=1.5), hoverinfo="skip", showlegend=False)
    figure.add_scatter(x=prompts[:, 0], y=prompts[:, 1], mode="markers+text", name="prompts",
                       text=[escape(p) for p in record.prompts],
                       # alternating sides: prompts close together in the plane keep their labels apart
                       textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(len(record.prompts))],
                       marker=dict(symbol="circle", size=12, color="#ff7f0e"),
                       hovertemplate="prompt: %{text}<extra></extra>")
    figure.add_scatter(x=photos[:, 0], y=photos[:, 1], mode="markers+text", name="photos",
                       text=[escape(n) for n in record.images], textposition="bottom center",
                       marker=dict(symbol="square", size=14, color="#1f77b4"),
                       hovertemplate="photo: %{text}<extra></extra>")
    a, b = record.point_variance
    figure.update_xaxes(title=f"component 1 ({a:.0%} of the variance)", zeroline=False)
    figure.update_yaxes(title=f"component 2 ({b:.0%})", zeroline=False)
    figure.update_layout(title="Photos and prompts in the shared embedding space (PCA of the unit-length embeddings)",
                         height=480, margin=dict(l=10, r=10, t=60, b=10))
    return figure


def temperature_figure(record: InsideClip, image: int = 0) -> go.Figure:
    """One photo: cosine similarity with each prompt, then scale x cosine, then the softmax over the prompts."""
    names = [escape(p) for p in record.prompts]
    figure = make_subplots(rows=1, cols=3, subplot_titles=("cosine similarity", f"× {record.scale:.1f} = logit",
                                                           "softmax = probability"))
    figure.add_bar(x=names, y=record.similarity[image], row=1, col=1, marker_color="#1f77b4",
                   hovertemplate="%{x}<br>cosine %{y:.4f}<extra></extra>")
    figure.add_bar(x=names, y=record.logits[image], row=1, col=2, marker_color="#9467bd",
                   hovertemplate="%{x}<br>logit %{y:.3f}<extra></extra>")
    figure.add_bar(x=names, y=record.probabilities[image], row=1, col=3, marker_color="#2ca02c",
                   hovertemplate="%{x}<br>probability %{y:.2%}<extra></extra>")
    figure.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=3)
    figure.update_layout(title=f"{escape(record.images[image])}: how similarities become probabilities", showlegend=False,
                         height=380, margin=dict(l=10, r=10, t=80, b=10))
    return figure

"""Plotly figures for image-text matches: prompt probabilities and the image x prompt similarity matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .image import escape

LABEL_CHARACTERS = 48


def _short(text: str) -> str:
    return escape(text if len(text) <= LABEL_CHARACTERS else text[: LABEL_CHARACTERS - 1] + "…")


def prompt_bars(prompts: Sequence[str], probabilities: np.ndarray, highlight: int | None = None) -> go.Figure:
    """Probability of each prompt for one image, in the order typed (numeric axis: duplicates stay apart)."""
    positions = list(range(len(prompts)))
    figure = go.Figure(
        go.Bar(
            x=probabilities,
            y=positions,
            orientation="h",
            marker_color=["#d62728" if i == highlight else "#1f77b4" for i in positions],
            text=[f"{p:.1%}" for p in probabilities],
            textposition="auto",
            customdata=[escape(p) for p in prompts],
            hovertemplate="%{customdata}<br>probability %{x:.2%}<extra></extra>",
        )
    )
    figure.update_yaxes(tickmode="array", tickvals=positions, ticktext=[_short(p) for p in prompts], autorange="reversed")
    figure.update_xaxes(title="probability over these prompts", range=[0, 1], tickformat=".0%")
    figure.update_layout(title="Which prompt fits the image", height=100 + 34 * len(prompts), margin=dict(l=10, r=10, t=40, b=40))
    return figure


def similarity_figure(images: Sequence[str], prompts: Sequence[str], similarity: np.ndarray, probabilities: np.ndarray) -> go.Figure:
    """Images (rows) x prompts (columns): cosine similarity, with each row's probabilities on hover."""
    hover = [[f"{escape(image)} · {escape(prompt)}" for prompt in prompts] for image in images]
    figure = go.Figure(
        go.Heatmap(
            z=similarity,
            x=list(range(len(prompts))),
            y=list(range(len(images))),
            customdata=np.dstack([np.array(hover, dtype=object), probabilities.astype(object)]),
            colorscale="Viridis",
            colorbar=dict(title="cosine", thickness=12),
            texttemplate="%{z:.3f}",
            hovertemplate="%{customdata[0]}<br>cosine %{z:.4f}<br>probability %{customdata[1]:.1%}<extra></extra>",
        )
    )
    figure.update_xaxes(tickmode="array", tickvals=list(range(len(prompts))), ticktext=[_short(p) for p in prompts], tickangle=-30)
    figure.update_yaxes(tickmode="array", tickvals=list(range(len(images))), ticktext=[_short(i) for i in images], autorange="reversed")
    figure.update_layout(title="Every image against every prompt", height=160 + 48 * len(images), margin=dict(l=10, r=10, t=50, b=10))
    return figure

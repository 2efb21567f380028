"""How much the methods agree, as two small matrices, and what to say when two are one map."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..records.agreement import Agreement
from .image import escape

LAST_LAYER_REASON = (
    "At a layer followed only by global average pooling and a linear layer (the default, last stage), the class "
    "score's gradient is the same at every position of a channel, so the per-location weighting that tells "
    "Grad-CAM++ and Layer-CAM apart has nothing to weigh: both weight each channel by its positive gradient. "
    "Grad-CAM differs from them only by also counting channels with negative gradients."
)


def agreement_figure(result: Agreement) -> go.Figure:
    names = [escape(t) for t in result.titles]
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.04, subplot_titles=(
        "Rank correlation (Spearman)", f"Overlap of the top {result.top_share:.0%} (intersection over union)"))
    for column, values, low in ((1, result.spearman, -1), (2, result.overlap, 0)):
        figure.add_trace(
            go.Heatmap(z=values, x=names, y=names, zmin=low, zmax=1, colorscale="RdBu" if low < 0 else "Blues",
                       reversescale=low < 0, showscale=False, texttemplate="%{z:.2f}",
                       hovertemplate="%{y} and %{x}: %{z:.3f}<extra></extra>"),
            row=1, col=column,
        )
    figure.update_yaxes(autorange="reversed")
    figure.update_yaxes(showticklabels=False, row=1, col=2)  # the same names as on the left
    size = 160 + 45 * len(names)
    figure.update_layout(title="How much do the methods agree?", height=size, margin=dict(l=10, r=10, t=70, b=10))
    return figure


def same_map_notes(result: Agreement, at_last_layer: bool) -> list[str]:
    """One sentence per pair that is practically one map, and why when the reason is known."""
    notes = [f"{result.titles[i]} and {result.titles[j]} are practically the same map here "
             f"(rank correlation {result.spearman[i, j]:.3f}): read them as one." for i, j in result.same]
    cams = {"gradcam", "gradcam++", "layercam"}
    if at_last_layer and any({result.methods[i], result.methods[j]} <= cams for i, j in result.same):
        notes.append(LAST_LAYER_REASON)
    return notes

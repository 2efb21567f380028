"""Plotly figures for text: token attributions, attention maps, the layer x head overview, rollout.

Pure functions of plain arrays and labels. Axes are numeric with tick labels, so a token that
occurs twice keeps two places; every label is escaped, since Plotly renders some HTML.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .image import SIGNED_SCALE, escape

ATTENTION_SCALE = "Blues"
OVERVIEW_CELL = 32  # thumbnails of long texts are averaged down to this many tokens a side
ROW_CHARACTERS = 48  # wrap the coloured text at about this many characters a line
CELL_CHARACTERS = 12  # longer tokens are shortened in the cell (the hover keeps them whole)


def _symmetric_limit(*arrays: np.ndarray) -> float:
    return max((float(np.max(np.abs(a))) for a in arrays if len(a)), default=0.0) or 1.0


def _wrap(labels: Sequence[str]) -> list[list[int]]:
    """Token positions per line, breaking at about ROW_CHARACTERS characters."""
    lines, line, width = [], [], 0
    for i, label in enumerate(labels):
        size = min(len(label), CELL_CHARACTERS) + 1
        if line and width + size > ROW_CHARACTERS:
            lines.append(line)
            line, width = [], 0
        line.append(i)
        width += size
    return lines + ([line] if line else [])


def _cell(label: str) -> str:
    label = label.replace("\n", " ")
    return escape(label if len(label) <= CELL_CHARACTERS else label[: CELL_CHARACTERS - 1] + "…")


def _text_heatmap(labels: Sequence[str], values: np.ndarray, limit: float) -> go.Heatmap:
    lines = _wrap(labels)
    columns = max(len(line) for line in lines)
    z = np.full((len(lines), columns), np.nan)
    text = [[""] * columns for _ in lines]
    hover = [[""] * columns for _ in lines]
    for r, line in enumerate(lines):
        for c, i in enumerate(line):
            z[r, c] = values[i]
            text[r][c] = _cell(labels[i])
            hover[r][c] = f"#{i}: {escape(labels[i])}"
    return go.Heatmap(
        z=z,
        text=text,
        customdata=hover,
        texttemplate="%{text}",
        textfont=dict(size=15),
        colorscale=SIGNED_SCALE,
        zmin=-limit,
        zmax=limit,
        zmid=0,
        xgap=3,
        ygap=6,
        showscale=False,  # it would be squeezed into a line of text; hover and the bars give values
        hovertemplate="%{customdata}<br>attribution %{z:+.4g}<extra></extra>",
    )


def _hide_axes(figure: go.Figure) -> None:
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, autorange="reversed")


def attribution_text_figure(labels: Sequence[str], values: np.ndarray, title: str) -> go.Figure:
    """The text itself, each token or word coloured by its signed attribution (red for, blue against)."""
    figure = go.Figure(_text_heatmap(labels, values, _symmetric_limit(values)))
    _hide_axes(figure)
    lines = len(_wrap(labels))
    figure.update_layout(title=escape(title), height=110 + 42 * lines, margin=dict(l=10, r=10, t=70, b=10))
    return figure


def attribution_bars(labels: Sequence[str], values: np.ndarray, title: str,
                     axis: str = "attribution (sums to f(x) − f(baseline))") -> go.Figure:
    """One bar per token or word, in reading order from the top; red raised the score, blue lowered it."""
    colours = ["#b2182b" if v >= 0 else "#2166ac" for v in values]
    figure = _token_bars(labels, values, colours, "attribution %{x:+.4g}", title)
    figure.update_xaxes(title=escape(axis), zeroline=True, zerolinecolor="#444")
    return figure


def _token_bars(labels: Sequence[str], values: np.ndarray, colours, value_hover: str, title: str) -> go.Figure:
    positions = list(range(len(labels)))  # numeric: a repeated token keeps its own bar
    figure = go.Figure(
        go.Bar(
            x=values,
            y=positions,
            orientation="h",
            marker_color=colours,
            customdata=[escape(label) for label in labels],
            hovertemplate=f"%{{customdata}}<br>{value_hover}<extra></extra>",
        )
    )
    figure.update_yaxes(tickmode="array", tickvals=positions, ticktext=[_cell(l) for l in labels], autorange="reversed")
    figure.update_layout(title=escape(title), height=120 + 22 * len(labels), margin=dict(l=10, r=10, t=50, b=40))
    return figure


def text_comparison_figure(
    first: tuple[Sequence[str], np.ndarray, str], second: tuple[Sequence[str], np.ndarray, str], title: str
) -> go.Figure:
    """Two texts one above the other on one colour scale, so a changed word's effect can be read off."""
    limit = _symmetric_limit(first[1], second[1])
    lines = [len(_wrap(labels)) for labels, _, _ in (first, second)]
    figure = make_subplots(
        rows=2, cols=1, subplot_titles=[escape(first[2]), escape(second[2])], row_heights=lines, vertical_spacing=0.12
    )
    for row, (labels, values, _) in enumerate((first, second), 1):
        figure.add_trace(_text_heatmap(labels, values, limit), row=row, col=1)
    _hide_axes(figure)
    figure.update_layout(title=escape(title), height=170 + 42 * sum(lines), margin=dict(l=10, r=10, t=90, b=10))
    return figure


def attention_figure(tokens: Sequence[str], matrix: np.ndarray, title: str) -> go.Figure:
    """Token x token: row = the token attending, column = the token attended to."""
    positions = list(range(len(tokens)))
    names = [escape(t) for t in tokens]
    hover = [[f"#{i} {names[i]} → #{j} {names[j]}" for j in positions] for i in positions]
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=positions,
            y=positions,
            customdata=hover,
            colorscale=ATTENTION_SCALE,
            zmin=0,
            colorbar=dict(title="attention", thickness=12),
            hovertemplate="%{customdata}<br>attention %{z:.3f}<extra></extra>",
        )
    )
    ticks = [_cell(t) for t in tokens]
    figure.update_xaxes(tickmode="array", tickvals=positions, ticktext=ticks, tickangle=-60, title="attended to")
    figure.update_yaxes(tickmode="array", tickvals=positions, ticktext=ticks, autorange="reversed", title="attending")
    side = min(900, 260 + 16 * len(tokens))
    figure.update_layout(title=escape(title), height=side + 80, margin=dict(l=10, r=10, t=60, b=10))
    return figure


def attention_overview(attention: np.ndarray) -> go.Figure:
    """Every layer x head as a small map in one mosaic; hover names the layer and head."""
    layers, heads, size = attention.shape[0], attention.shape[1], attention.shape[-1]
    cell = min(size, OVERVIEW_CELL)
    step = cell + max(1, cell // 8)  # a thin gap between maps
    z = np.full((layers * step, heads * step), np.nan, dtype=np.float32)
    for layer in range(layers):
        for head in range(heads):
            tile = attention[layer, head]
            if cell < size:
                tile = cv2.resize(tile.astype(np.float32), (cell, cell), interpolation=cv2.INTER_AREA)
            r, c = layer * step, head * step
            z[r : r + cell, c : c + cell] = tile
    tiles = [(layer, head) for layer in range(layers) for head in range(heads)]
    figure = go.Figure(
        [
            go.Heatmap(z=z, colorscale=ATTENTION_SCALE, zmin=0, zmax=float(np.nanpercentile(z, 99)) or 1.0,
                       showscale=False, hoverinfo="skip"),
            # Near-invisible markers on the tile centres: heatmaps send no click events, markers do.
            go.Scatter(
                x=[head * step + cell / 2 for _, head in tiles],
                y=[layer * step + cell / 2 for layer, _ in tiles],
                mode="markers",
                marker=dict(symbol="square", size=24, opacity=0.01, color="black"),
                customdata=[[layer + 1, head + 1] for layer, head in tiles],
                hovertemplate="layer %{customdata[0]}, head %{customdata[1]}<br>click to open<extra></extra>",
                showlegend=False,
            ),
        ]
    )
    figure.update_xaxes(
        tickmode="array", tickvals=[h * step + cell / 2 for h in range(heads)], ticktext=[f"h{h + 1}" for h in range(heads)],
        side="top", showgrid=False, zeroline=False,
    )
    figure.update_yaxes(
        tickmode="array", tickvals=[l * step + cell / 2 for l in range(layers)], ticktext=[f"L{l + 1}" for l in range(layers)],
        autorange="reversed", scaleanchor="x", showgrid=False, zeroline=False,
    )
    figure.update_layout(
        title="Every layer (rows) and head (columns)", height=min(1100, 120 + 60 * layers), margin=dict(l=10, r=10, t=80, b=10)
    )
    return figure


def overview_cell(attention_shape, x: float, y: float) -> tuple[int, int] | None:
    """(layer, head), 0-based, under a point of the overview mosaic, or None in a gap."""
    layers, heads, size = attention_shape[0], attention_shape[1], attention_shape[-1]
    cell = min(size, OVERVIEW_CELL)
    step = cell + max(1, cell // 8)
    layer, head = int(round(y)) // step, int(round(x)) // step
    return (layer, head) if 0 <= layer < layers and 0 <= head < heads else None


def rollout_focus_figure(tokens: Sequence[str], weights: np.ndarray, title: str) -> go.Figure:
    """How much of what the classifier reads flows from each input token, after every layer."""
    figure = _token_bars(tokens, weights, "#2171b5", "share %{x:.3f}", title)
    figure.update_xaxes(title="share of the classifier's input (rows sum to 1)", rangemode="tozero")
    return figure

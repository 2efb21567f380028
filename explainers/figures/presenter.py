"""Presenter mode for a projector: the same figure with larger text, thicker lines and bigger markers, and
high-contrast colour scales (a washed-out projector flattens pale scales). Values and hover stay as they are."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.colors import sequential

FONT = 20
TITLE = 24
# Inferno, dark to bright: its lightness alone separates the values. Its first colour moves off #000004:
# Streamlit's theme uses #000001, #000002, ... as stand-ins for its own colours and drew zero as pink.
SEQUENTIAL = tuple((i / (len(sequential.Inferno) - 1), "#04030f" if i == 0 else colour)
                   for i, colour in enumerate(sequential.Inferno))
DIVERGING = "RdBu"  # full-strength ends; zmid keeps white at zero


def for_projector(figure: go.Figure) -> go.Figure:
    shown = go.Figure(figure)  # a copy: the stored figure stays as the page built it
    shown.update_layout(font_size=FONT, title_font_size=TITLE, hoverlabel_font_size=FONT)
    shown.update_xaxes(tickfont_size=FONT - 2, title_font_size=FONT)
    shown.update_yaxes(tickfont_size=FONT - 2, title_font_size=FONT)
    for trace in shown.data:
        line = getattr(trace, "line", None)
        if line is not None and "width" in line:
            trace.line.width = max(3, 2 * (line.width or 2))
        marker = getattr(trace, "marker", None)
        if marker is not None and "size" in marker and isinstance(marker.size, (int, float)):
            trace.marker.size = marker.size * 1.5
        if "colorscale" in trace:
            diverging = getattr(trace, "zmid", None) is not None or getattr(trace, "cmid", None) is not None
            trace.colorscale = DIVERGING if diverging else SEQUENTIAL
        if getattr(trace, "textfont", None) is not None and "size" in trace.textfont:
            trace.textfont.size = FONT
    for annotation in shown.layout.annotations or ():
        annotation.font.size = FONT
    return shown

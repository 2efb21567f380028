"""Presenter mode: one switch for a projector, kept for the whole session across pages. It enlarges the
page's text, hides the settings inside forms (fewer controls on the wall) and every figure's toolbar, and
draws figures with explainers/figures/presenter.py. `plot` is how every page shows a figure."""

from __future__ import annotations

import streamlit as st

from explainers.figures.presenter import for_projector

KEY = "presenter"
CSS = """
<style>
html, body, [data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"], label, button, input, textarea
  { font-size: 1.35rem !important; }
h1 { font-size: 3rem !important; } h2 { font-size: 2.4rem !important; } h3 { font-size: 1.9rem !important; }
[data-testid="stForm"] [data-testid="stExpander"] { display: none; }
</style>
"""


def presenter_switch() -> None:
    """The sidebar toggle, on every page (app.py), and the page's larger text when it is on."""
    with st.sidebar:
        st.toggle("Presenter mode", key=KEY, persist_state="session",
                  help="For a projector: larger text and labels, thicker lines, high-contrast colours, fewer "
                       "controls. Stays on across pages until switched off.")
    if presenting():
        st.html(CSS)


def presenting() -> bool:
    return bool(st.session_state.get(KEY, False))


def plot(figure, key: str | None = None, **options):
    """st.plotly_chart, drawn for the projector when presenter mode is on."""
    if presenting():
        figure = for_projector(figure)
        options["config"] = {**options.get("config", {}), "displayModeBar": False}
    return st.plotly_chart(figure, key=key, **options)

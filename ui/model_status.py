"""Which model answered, from where, how it decides and why it was chosen: shown on every page."""

from __future__ import annotations

import streamlit as st

from models.info import ModelInfo

from .markdown import plain


def show_model_status(info: ModelInfo, how: str = "") -> None:
    st.caption(f"**Model answering:** {plain(info.name)} · weights from {plain(info.source)}")
    if how:
        st.caption(f"**How it classifies:** {plain(how)}")
    if info.note:
        st.warning(plain(info.note), icon="ℹ️")

"""Which model answered, from where, how it decides and why it was chosen: shown on every page."""

from __future__ import annotations

import streamlit as st

from models.info import ModelInfo


def show_model_status(info: ModelInfo, how: str = "") -> None:
    st.caption(f"**Model answering:** {info.name} · weights from {info.source}")
    if how:
        st.caption(f"**How it classifies:** {how}")
    if info.note:
        st.warning(info.note, icon="ℹ️")

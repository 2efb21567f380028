"""Which model a page asks for (its sidebar field) and which model answered, from where, how it decides and
why it was chosen: on every page."""

from __future__ import annotations

import streamlit as st

from models.info import ModelInfo

from .markdown import plain


def model_field(label: str, default: str, key: str, help: str) -> str:
    """The sidebar's model field for this page, kept for the session; empty means the page's default."""
    with st.sidebar:
        name = st.text_input(label, value=default, key=key, persist_state="session", help=help)
    return name.strip() or default


def show_model_status(info: ModelInfo, how: str = "") -> None:
    st.caption(f"**Model answering:** {plain(info.name)} · weights from {plain(info.source)}")
    if how:
        st.caption(f"**How it classifies:** {plain(how)}")
    if info.note:
        st.warning(plain(info.note), icon="ℹ️")

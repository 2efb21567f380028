"""Which model a page asks for (its sidebar field) and which model answered, from where, how it decides and
why it was chosen: on every page."""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from models.info import ModelInfo
from serving import ServiceError

from .markdown import plain

RETRY_SECONDS = 5


def model_field(label: str, default: str, key: str, help: str) -> str:
    """The sidebar's model field for this page, kept for the session; empty means the page's default."""
    with st.sidebar:
        name = st.text_input(label, value=default, key=key, persist_state="session", help=help)
    return name.strip() or default


def model_or_retry(load: Callable[[str], object], name: str):
    """`load(name)`; while the model service does not answer, a message on the page and another try every
    RETRY_SECONDS (a widget's rerun tries at once). The other pages keep working meanwhile."""
    try:
        return load(name)
    except ServiceError as error:
        st.error(plain(error) + " Trying again in a few seconds…")
        time.sleep(RETRY_SECONDS)
        st.rerun()


def show_model_status(info: ModelInfo, how: str = "") -> None:
    st.caption(f"**Model answering:** {plain(info.name)} · weights from {plain(info.source)}")
    if how:
        st.caption(f"**How it classifies:** {plain(how)}")
    if info.note:
        st.warning(plain(info.note), icon="ℹ️")

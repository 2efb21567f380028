"""One record per view and session, kept until its inputs change: a choice on the page (a stage, a head, a
token, a photo) then redraws from it without a model call. One per view, not one per input: a long
text's or a large photo's record is many MB, and a session holds only the one on its page."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

import streamlit as st

Record = TypeVar("Record")


def kept(slot: str, inputs: Hashable, compute: Callable[[], Record], doing: str) -> Record:
    """The record in session slot `slot` if it was computed from `inputs`; otherwise `compute()` under a
    spinner saying `doing`, kept in its place. An exception leaves the slot as it was."""
    held = st.session_state.get(slot)
    if held is None or held[0] != inputs:
        with st.spinner(doing):
            held = (inputs, compute())
        st.session_state[slot] = held
    return held[1]

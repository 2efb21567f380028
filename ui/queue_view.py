"""The server's lines, for the teacher: each loaded model's requests running and waiting, refreshed live."""

from __future__ import annotations

import streamlit as st

from models.turns import lines

REFRESH_SECONDS = 2


@st.fragment(run_every=REFRESH_SECONDS)
def server_lines() -> None:
    """A live table (only this part of the page reruns): what each model is doing for the class now."""
    found = lines()
    if not found:
        st.caption("No model is loaded yet: the first Explain on a page loads its model.")
        return
    st.table([{"model": line.model, "running": line.running, "waiting": line.waiting} for line in found])
    st.caption(f"Each model runs one request at a time; the others wait in line and see their place. "
               f"Refreshed every {REFRESH_SECONDS} s.")

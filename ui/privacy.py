"""Uploads stay in memory: Streamlit's web server (Starlette) parses an upload with a spooled
temporary file that rolls over to disk beyond 1 MB. Raising the threshold above the upload cap keeps
every photo in RAM, as the app promises; larger bodies are refused by the cap before they get there."""

from __future__ import annotations

import streamlit as st
from starlette.formparsers import MultiPartParser

MULTIPART_OVERHEAD = 2**20  # what Streamlit itself allows on top of the cap for the form framing


def keep_uploads_in_memory() -> None:
    cap = st.get_option("server.maxUploadSize") * 2**20 + MULTIPART_OVERHEAD
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, cap)

"""The pictures inside the page's figures (the photo, a coloured map), served as files the browser fetches
once: a figure then carries a short URL instead of the picture, so a slider move or a change of view sends
only what changed, and the photo under every figure of a result is one download.

Streamlit's media store is what st.image uses: a file's name is a hash of its bytes, so the same picture has
the same URL from run to run and the browser keeps it. A file lives while a run of a session refers to it and
is dropped after the first run that does not. Like st.image's, the URL needs no session: it is unguessable,
not private, which the README's privacy note says.
"""

from __future__ import annotations

import hashlib

import streamlit as st
from streamlit import runtime

from explainers.figures.image import data_uri

# Streamlit names a media file by a hash of every byte only up to 1 MiB (a fingerprint above): a figure's
# picture (a photo of at most 640 pixels, a map) stays far below; anything larger travels inside its figure.
WHOLE_HASH_BYTES = 2**20

# Pictures in figures drawn with a block of screen pixels per value, as Plotly draws a heatmap's cells: the
# browser's smoothing would blend a pixel map's single values into a faint haze.
SHARP = "<style>.js-plotly-plot image { image-rendering: pixelated; }</style>"


def sharp_pictures() -> None:
    """Every page, every run (app.py): the style that keeps figure pictures unblended."""
    st.html(SHARP)


def served(data: bytes, mimetype: str) -> str:
    """A URL for `data` on this server, or a data URI where no server runs (a bare script)."""
    if not runtime.exists() or len(data) > WHOLE_HASH_BYTES:
        return data_uri(data, mimetype)
    key = f"figure-picture-{hashlib.sha256(data).hexdigest()[:32]}"  # one entry per picture per session
    url = runtime.get_instance().media_file_mgr.add(data, mimetype, key)
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{url}" if base else url

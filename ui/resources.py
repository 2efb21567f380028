"""Models shared by every session (one object per model), and results keyed by input bytes."""

from __future__ import annotations

import hashlib

import streamlit as st

from models.image_models import DEFAULT_IMAGE_MODEL, load_image_classifier
from models.runtime import configure_torch


@st.cache_resource(max_entries=3, show_spinner="Loading the model (once per server)…")
def image_classifier(name: str):
    configure_torch()
    return load_image_classifier(name or DEFAULT_IMAGE_MODEL)


def sha256(data: bytes) -> str:
    """Cache key for user input: the whole content, not Streamlit's sampled hash of large arrays."""
    return hashlib.sha256(data).hexdigest()

"""Models shared by every session (one object per model), and results keyed by input bytes."""

from __future__ import annotations

import functools
import hashlib

import streamlit as st

import serving

from models.image_models import DEFAULT_IMAGE_MODEL, load_image_classifier
from models.image_text_models import DEFAULT_CLIP_MODEL, load_image_text_model
from models.runtime import configure_torch, release_freed_memory
from models.text_models import DEFAULT_TEXT_MODEL, load_text_model


@st.cache_resource(max_entries=3, show_spinner="Loading the model (once per server)…")
def image_classifier(name: str):
    configure_torch()
    return load_image_classifier(name or DEFAULT_IMAGE_MODEL)


@st.cache_resource(max_entries=3, show_spinner="Loading the model (once per server)…")
def image_model(name: str):
    """The image page's model: loaded here, or (XAI_BACKEND=ray-serve) a card of the one the model service runs.
    Raises ServiceUnavailable when the service does not answer (not cached: the next run asks again)."""
    return serving.load("image", name or DEFAULT_IMAGE_MODEL)


@st.cache_resource(max_entries=3, show_spinner="Loading the model (once per server)…")
def text_model(name: str):
    """A TextClassifier, or the bundled zero-shot encoder (its classifiers are cached on it per label set)."""
    configure_torch()
    return load_text_model(name or DEFAULT_TEXT_MODEL)


@st.cache_resource(max_entries=2, show_spinner="Loading the model (once per server)…")
def image_text_model(name: str):
    configure_torch()
    return load_image_text_model(name or DEFAULT_CLIP_MODEL)


def releasing_memory(explain):
    """Under the result cache: after each computation, the memory it freed goes back to the OS."""

    @functools.wraps(explain)
    def computed(*args, **kwargs):
        try:
            return explain(*args, **kwargs)
        finally:
            release_freed_memory()

    return computed


def sha256(data: bytes) -> str:
    """Cache key for user input: the whole content, not Streamlit's sampled hash of large arrays."""
    return hashlib.sha256(data).hexdigest()

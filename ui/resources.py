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


LOADING = "Loading the model (once per server)…"


# Models in this process: the audit's always, the pages' by default (one object per model, shared).
@st.cache_resource(max_entries=3, show_spinner=LOADING)
def image_classifier(name: str):
    configure_torch()
    return load_image_classifier(name or DEFAULT_IMAGE_MODEL)


@st.cache_resource(max_entries=3, show_spinner=LOADING)
def local_text_model(name: str):
    """A TextClassifier, or the bundled zero-shot encoder (its classifiers are cached on it per label set)."""
    configure_torch()
    return load_text_model(name or DEFAULT_TEXT_MODEL)


@st.cache_resource(max_entries=2, show_spinner=LOADING)
def local_image_text_model(name: str):
    configure_torch()
    return load_image_text_model(name or DEFAULT_CLIP_MODEL)


# The pages' models: the ones above, or (XAI_BACKEND=ray-serve) cards of the ones the model service runs. A
# service that does not answer raises ServiceUnavailable, which is not cached: the next run asks again.
@st.cache_resource(max_entries=32, show_spinner=LOADING)
def _served(kind: str, name: str | tuple):
    return serving.load(kind, name)


@st.cache_resource(max_entries=32, show_spinner="Embedding the label descriptions…")
def _served_variant(kind: str, name: str, variant):
    return serving.variant(_served(kind, name), variant)


def _here() -> bool:
    return serving.backend() == "in-process"


def image_model(name: str):
    return image_classifier(name) if _here() else _served("image", name or DEFAULT_IMAGE_MODEL)


def text_model(name: str):
    return local_text_model(name) if _here() else _served("text", name or DEFAULT_TEXT_MODEL)


def zero_shot_classifier(name: str, descriptions: tuple[tuple[str, str], ...]):
    """The zero-shot text model's classifier for these label descriptions."""
    if _here():
        return local_text_model(name).classifier(descriptions)
    return _served_variant("text", name or DEFAULT_TEXT_MODEL, descriptions)


def image_text_model(name: str):
    return local_image_text_model(name) if _here() else _served("clip", name or DEFAULT_CLIP_MODEL)


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

"""The image + text page's "Inside the model" section: the photos and the result's prompts in the shared
embedding space, the similarity matrix, and how the scale and the softmax give the page's probabilities.
One pass of each tower per set of photos and prompts (kept for the session); picking a photo redraws."""

from __future__ import annotations

import streamlit as st

import serving
from serving import ServiceError

from explainers.figures.clip import similarity_figure
from explainers.figures.inside_clip import embedding_figure, temperature_figure
from explainers.inside.clip import inside_clip

from .kept import kept
from .markdown import plain
from .presenter import plot


def show_inside(model, keys: list[str], photos: list, names: list[str], prompts: tuple[str, ...] | None) -> None:
    st.header("Inside the model")
    if not st.toggle("Show the shared embedding space: where photos and prompts land, and how similarity becomes "
                     "probability", key="clip_inside", persist_state="session"):
        return
    if not photos or not prompts:
        st.info("Choose photos and press Explain: this view places the result's prompts next to the photos.")
        return
    try:
        record = kept("clip_inside_record", (model.info.name, model.info.source, tuple(keys), tuple(prompts)),
                      lambda: serving.run(model, inside_clip, photos, prompts, names),
                      "Embedding the photos and prompts…")
    except (ValueError, ServiceError) as error:  # prompts the model cannot use (PromptError), or the model service
        # is down: a sentence, never a traceback
        st.error(plain(error))
        return
    st.caption(plain(record.embedding_is))
    plot(embedding_figure(record), key="clip_inside_space")
    st.caption(f"Projection: {plain(record.projection)}.")
    plot(similarity_figure(list(record.images), list(record.prompts), record.similarity, record.probabilities),
         key="clip_inside_matrix")
    chosen = st.selectbox("Photo", range(len(record.images)), format_func=lambda i: record.images[i], key="clip_inside_photo")
    plot(temperature_figure(record, chosen), key="clip_inside_temperature")
    st.markdown(f"Probability = softmax over the prompts of {record.scale:.1f} × cosine: the scale (the inverse of a "
                "temperature) stretches small differences in similarity into confident probabilities.")
    if record.mixtures:
        rows = [{"class": label, "weight": round(weight, 4)} for label, weight in record.mixtures[chosen]]
        st.markdown("**This photo's “embedding”** is the mixture of these class names' text embeddings:")
        st.dataframe(rows, hide_index=True, width="stretch")

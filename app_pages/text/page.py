"""Text classifier page: which words drove the label, and where the model attends."""

import streamlit as st

from models.text_models import DEFAULT_TEXT_MODEL
from ui import text_view
from ui.inside_text import show_inside
from ui.model_status import model_field, model_or_retry, show_model_status
from ui.resources import text_model, zero_shot_classifier

st.title("Why did the text model say that?")
st.write(
    "Pick an example or type a sentence, choose views and press **Explain**. Token attributions show which "
    "words raised or lowered a label's score; attention shows where each token looks, layer by layer."
)

name = model_field(
    "Text model", DEFAULT_TEXT_MODEL, key="text_model",
    help="bert-sst2, minilm (bundled, zero-shot), any Hugging Face sequence classifier id, or a local directory.")
model = model_or_retry(text_model, name)
show_model_status(model.info, model.how)
if model.zero_shot:
    descriptions = text_view.label_descriptions()
    classifier = model_or_retry(lambda name: zero_shot_classifier(name, descriptions), name)
else:
    classifier = model

request = text_view.request_form(classifier)
if request is not None:
    text_view.run(classifier, request)
text_view.follow()

stored = st.session_state.get("text_result")
if stored:
    first, second = stored
    if first.model.name != classifier.info.name or first.text != st.session_state.get("text_input"):
        st.caption("Showing the last result. Press Explain to explain the current text.")
    text_view.show_report(first, second)

# Inside the model, for the text the page explained (or, before any result, the one typed).
shown = stored[0].text if stored else st.session_state.get("text_input", "")
show_inside(classifier, shown)

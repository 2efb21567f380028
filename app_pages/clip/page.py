"""Image-text page: which pixels and which words made a prompt match a photo."""

import streamlit as st

from models.image_text_models import DEFAULT_CLIP_MODEL
from ui import clip_view, image_view
from ui.inside_clip import show_inside
from ui.markdown import plain
from ui.model_status import model_field, model_or_retry, show_model_status
from ui.resources import image_text_model

st.title("Why does this caption fit this photo?")
st.write(
    "Pick photos and type prompts, one per line. The model scores every prompt against every photo with "
    "words it was never trained to classify; the heatmaps show which pixels, and the word view which words, made the match."
)

model = model_or_retry(image_text_model, model_field(
    "Image-text model", DEFAULT_CLIP_MODEL, key="clip_model",
    help="clip (openai/clip-vit-base-patch32), conse (bundled stand-in), any CLIPModel id, or a local directory."))
show_model_status(model.info, model.how)

images = clip_view.choose_images()
decoded = [(image, image_view.decode(image)) for image in images]
usable = [(image, d) for image, d in decoded if d is not None]
if usable:
    columns = st.columns(min(len(usable), 6))
    for column, (image, d) in zip(columns, usable):
        column.image(d.rgb, caption=plain(image.name), width=160)
    names = [image.name for image, _ in usable]
    request = clip_view.request_form(model, names)
    if request is not None:
        clip_view.run(model, [i for i, _ in usable], [d for _, d in usable], request, names)
elif not images:
    st.info("Choose at least one photo.")
clip_view.follow()

stored = st.session_state.get("clip_result")
if stored:
    report, names, image_index = stored
    if report.model.name != model.info.name:
        st.caption("Showing the last result. Press Explain to use the current model.")
    clip_view.show_report(report, names, image_index)

# Inside the model: the photos on the page and the prompts of the result, in the shared embedding space.
show_inside(model, [image.key for image, _ in usable], [d.rgb for _, d in usable], [image.name for image, _ in usable],
            stored[0].prompts if stored else None)

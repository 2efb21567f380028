"""Image classifier page: what did the network look at?"""

import streamlit as st

from ui import image_view
from ui.inside_image import show_inside
from ui.markdown import plain
from ui.model_status import model_field, model_or_retry, show_model_status
from ui.resources import image_model
from models.image_models import DEFAULT_IMAGE_MODEL

st.title("Why did the image model say that?")
st.write(
    "Pick a sample or upload a photo, choose methods and press **Explain**. "
    "The heatmaps show which pixels pushed the model towards the class."
)

classifier = model_or_retry(image_model, model_field(
    "Image model", DEFAULT_IMAGE_MODEL, key="image_model",
    help="resnet-50, efficientnet-lite0 (bundled), any Hugging Face image classifier id, or a local directory."))
show_model_status(classifier.info)

image = image_view.choose_image()
decoded = image_view.decode(image) if image else None
if decoded is not None:
    st.image(decoded.rgb, caption=f"{plain(image.name)} · {decoded.original_size[0]} x {decoded.original_size[1]}", width=240)
    request = image_view.request_form(classifier, classifier.input_size(*decoded.rgb.shape[:2]))
    if request is not None:
        image_view.run(classifier, image, request, decoded)
watching = image_view.follow()  # a running request: its place in line or progress

result = st.session_state.get("image_result")
if result:
    key, name, report = result
    if image is None or key != image.key or report.model.name != classifier.info.name:
        st.caption(f"Showing the last result, for **{plain(name)}**. Press Explain to explain the current choice.")
    image_view.show_report(report, name)

# Inside the model, for the photo on the page, following the class its result explains.
if decoded is not None:
    same = bool(result) and result[0] == image.key and result[2].model.name == classifier.info.name
    show_inside(classifier, image.key, decoded.rgb, result[2].target.index if same else None)

if watching is not None:  # last: wait for the request's next maps, then draw the page again
    watching.until_news()

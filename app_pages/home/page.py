"""Landing page: what the app does and where to start."""

import streamlit as st

from ui.queue_view import server_lines

st.title("See why a model predicts what it predicts")
st.markdown(
    """
This app runs real pretrained models in your browser session and shows **why** they answer as they do.

- **Images**: an ImageNet classifier (ResNet-50, or the bundled EfficientNet-Lite0 when offline) with
  Grad-CAM, Grad-CAM++, Layer-CAM, Integrated Gradients and SmoothGrad, side by side, with downloads.
- **Text**: a BERT sentiment classifier (or the bundled MiniLM as a zero-shot classifier when offline)
  with token attributions (Integrated Gradients), attention maps for every layer and head, and attention
  rollout; compare two sentences to see what one changed word moves.
- **Image + text**: CLIP (or a bundled ConSE stand-in when offline) scores your own prompts against your
  photos; heatmaps per prompt (Grad-CAM, attention relevancy) and the words that made the match.
- **Audit**: a whole labelled dataset (yours, or the sample): accuracy per class and per group with
  intervals, the confusion matrix, calibration, the maps of the most confident errors and how faithful
  the maps are, in a report (HTML or PDF) you can hand over.

Every figure is interactive: hover for the raw values, zoom, and download it as a self-contained HTML
file. Uploaded photos and typed text stay in the server's memory and are never written to disk.
"""
)
st.page_link("app_pages/image/page.py", label="Explain an image", icon=":material/image:")
st.page_link("app_pages/text/page.py", label="Explain a sentence", icon=":material/text_fields:")
st.page_link("app_pages/clip/page.py", label="Match photos and prompts", icon=":material/join_inner:")
st.page_link("app_pages/audit/page.py", label="Audit a model on a dataset", icon=":material/fact_check:")

st.subheader("Right now on this server")
# Off by default: every student lands here, and a live table reruns every two seconds.
if st.toggle("Show each model's running and waiting requests, live (for the teacher)", key="server_lines"):
    server_lines()

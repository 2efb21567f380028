"""Entry point: `streamlit run app.py`. Builds the navigation; each page is a short script."""

import streamlit as st

from ui.pictures import sharp_pictures
from ui.presenter import presenter_switch
from ui.privacy import keep_uploads_in_memory

keep_uploads_in_memory()  # before any page can receive an upload

st.set_page_config(page_title="Why did the model say that?", page_icon="🔍", layout="wide")

pages = [
    st.Page("app_pages/home/page.py", title="Start here", icon=":material/home:", default=True),
    st.Page("app_pages/image/page.py", title="Images (ResNet)", icon=":material/image:", url_path="image"),
    st.Page("app_pages/text/page.py", title="Text (BERT)", icon=":material/text_fields:", url_path="text"),
    st.Page("app_pages/clip/page.py", title="Image + text (CLIP)", icon=":material/join_inner:", url_path="clip"),
    st.Page("app_pages/audit/page.py", title="Audit a dataset", icon=":material/fact_check:", url_path="audit"),
]
navigation = st.navigation(pages)
presenter_switch()  # every page: it stays on across pages for the session
sharp_pictures()
navigation.run()

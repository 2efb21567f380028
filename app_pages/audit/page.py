"""Audit page: a labelled dataset in, accuracy per class and group, calibration and faithful maps out, with a
report to hand over (the command line's own audit, run as a job with progress and Cancel)."""

import streamlit as st

from explainers.audit.errors import DatasetError
from ui import audit_view
from ui.markdown import plain
from ui.model_status import model_field, show_model_status

st.title("Audit a model on a labelled dataset")
st.write(
    "Upload labelled data (or take the sample), press **Run the audit**, and see how the model does overall, per "
    "class and for every group in your data, how well its confidence is calibrated, and whether its maps are "
    "faithful. The report (HTML or PDF) opens without the app and states how to reproduce every number."
)

with st.sidebar:
    task = st.radio("What to audit", list(audit_view.TASK_LABELS), format_func=audit_view.TASK_LABELS.get,
                    key="audit_task", persist_state="session")
model_name = model_field("Model", audit_view.DEFAULT_MODELS[task], key=f"audit_model_{task}",
                         help="As on the other pages: a short name, a Hugging Face id or a local directory.")
loaded, identity, how = audit_view.shared_model(task, model_name)
show_model_status(loaded.info, how)

try:
    dataset, name, digest = audit_view.dataset_form(task, st.get_option("server.maxUploadSize"))
except DatasetError as error:
    st.error(plain(error))
    dataset = None
if dataset is not None:
    request = audit_view.settings_form(task, name, digest, model_name)
    if request is not None:
        audit_view.run(dataset, loaded, identity, request)
audit_view.follow()

stored = st.session_state.get("audit_result")
if stored:
    audit, request = stored
    if request.task != task or (dataset is not None and request.digest != digest):
        st.caption("Showing the last audit. Run the audit to audit the current data.")
    audit_view.show(audit, request)

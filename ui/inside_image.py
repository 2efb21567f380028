"""The image page's "Inside the model" section for the photo on the page: the stages as a diagram (a click
opens one), its feature maps, the first convolution's filters and the head from one forward pass per
photo; Grad-CAM at every depth, when asked, from one forward and one backward pass per photo and class.
Both are kept for the session; opening a stage or another class of the head redraws without a model call."""

from __future__ import annotations

from functools import partial

import streamlit as st

import serving
from serving import ServiceError

from explainers.figures.inside_image import (
    average_figure,
    depth_figure,
    diagram_figure,
    feature_maps_figure,
    filters_figure,
    head_figure,
)
from explainers.inside.image import gradcam_by_depth, inside_image
from explainers.records.inside_image import InsideImage

from .kept import kept
from .markdown import plain
from .presenter import plot

HEAD = "head"


def show_inside(classifier, key: str, rgb, target: int | None) -> None:
    st.header("Inside the model")
    if not st.toggle("Show the network itself: its stages, feature maps, Grad-CAM at every depth, the head",
                     key="image_inside", persist_state="session"):
        return
    model = (classifier.info.name, classifier.info.source)
    try:
        record = kept("image_inside_record", (model, key), lambda: serving.run(classifier, inside_image, rgb),
                      "Reading the network…")
    except ServiceError as error:  # the model service is down: say so, the rest of the page works
        st.error(plain(error))
        return
    if not record.stages:
        st.info(plain(record.note))
        st.markdown(f"{plain(record.model.name)}: {record.total_parameters:,} parameters, input "
                    f"{record.input_size[0]} × {record.input_size[1]}.")
        return
    names = [s.name for s in record.stages] + [HEAD]
    if st.session_state.get("image_inside_stage") not in names:
        st.session_state["image_inside_stage"] = record.stages[-1].name
    chosen = st.session_state["image_inside_stage"]
    plot(diagram_figure(record, chosen), key="image_inside_diagram", on_select=partial(_clicked_stage, names),
         selection_mode="points")
    st.selectbox("Stage", names, key="image_inside_stage", help="Or click a box in the diagram.")
    if chosen == HEAD:
        _head(record)
    else:
        _stage(record, chosen)
    st.subheader("Depth")
    if not st.toggle("Grad-CAM for the explained class at every stage (one more forward and backward pass through "
                     "the whole network)", key="image_inside_depth_on", persist_state="session"):
        return
    try:
        depth = kept("image_inside_depth", (model, key, target),
                     lambda: serving.run(classifier, gradcam_by_depth, rgb, target),
                     "Following the class through every stage…")
    except (ValueError, ServiceError) as error:  # a class this model does not have, say: a sentence, never a traceback
        st.error(plain(error))
        return
    plot(depth_figure(depth), key="image_inside_depth")
    st.caption(f"The same class at every stage: resolution falls and the map gathers on the class. Early stages "
               "keep the photo's detail but respond to edges and colours anywhere; deep stages have a few coarse "
               f"cells that gather on “{plain(depth.target.label)}”. Each map is scaled to its own maximum; hover "
               "shows the raw value.")


def _clicked_stage(names: list[str]) -> None:
    points = st.session_state["image_inside_diagram"]["selection"]["points"]
    if points and 0 <= int(points[0].get("point_index", -1)) < len(names):
        st.session_state["image_inside_stage"] = names[int(points[0]["point_index"])]


def _stage(record: InsideImage, name: str) -> None:
    stage = record.stage(name)
    field = ("unknown" if stage.receptive_field is None else
             f"{stage.receptive_field} × {stage.receptive_field} input pixels, its cells {stage.jump} pixels apart")
    st.markdown(f"**{plain(name)}**: output {stage.shape[0]} channels × {stage.shape[1]} × {stage.shape[2]}, "
                f"{stage.parameters:,} parameters; one cell sees {field}. Values: mean {stage.mean:.3f}, "
                f"max {stage.max:.3f}, {stage.active:.0%} above zero.")
    if min(stage.shape[1:]) == 1:
        st.caption("This stage's maps are one cell across: the photo is so narrow that little of its layout is left.")
    plot(feature_maps_figure(stage), key="image_inside_maps")
    plot(average_figure(stage), key="image_inside_average")
    if name == record.stages[0].name and record.filters is not None:
        plot(filters_figure(record.filters), key="image_inside_filters")
        st.caption("Each tile is one filter of the first convolution, its three colour channels as RGB, scaled on "
                   "its own: grey is zero weight, a bright colour is what the filter responds to.")


def _head(record: InsideImage) -> None:
    if not record.contributions:
        st.info(plain(record.note))
        return
    which = st.radio("Class", range(len(record.contributions)), horizontal=True, key="image_inside_class",
                     format_func=lambda i: plain(record.contributions[i].prediction.label))
    plot(head_figure(record, which), key="image_inside_head")
    st.caption(f"The last stage's {record.pooled_features} channels are averaged over the photo (global pooling); each "
               "class's logit is its bias plus every channel's weight × its average. Softmax over the logits gives "
               "the probabilities.")

"""Widgets and result views for the image page. Compute comes from explainers/tasks/, figures from explainers/figures/."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial

import streamlit as st

import serving
from serving import ServiceError

from explainers.records.export import attribution_csv, explanation_json, full_figure_html
from explainers.tasks.image import (
    BASELINES, HIDDEN, ImageReport, ImageSettings, explain_image, methods_for, occlusion_window,
)
from explainers.inputs.image import MAX_BYTES, DecodedImage, ImageInputError, decode_image
from explainers.evaluation.faithfulness import MIN_STEPS, REPLACEMENTS
from explainers.evaluation.agreement import agreement
from explainers.evaluation.sanity import SanityError, with_sanity
from explainers.figures.faithfulness import REPLACEMENT_WORDS, faithfulness_caption, measured, named_maps
from explainers.figures.agreement import agreement_figure, same_map_notes
from explainers.figures.sanity import sanity_maps_figure
from explainers.figures.image import (
    comparison_figure, completeness_text, heatmap_figure, method_title, prediction_bars,
)
from explainers.inputs.samples import SAMPLES, sample_bytes
from explainers.inputs.targets import TargetError
from explainers.records.common import METHOD_NAMES, PIXEL_METHODS

from .presenter import plot
from .markdown import plain
from .pictures import served
from .evidence import download, faithfulness_section, sanity_section
from .jobs import Cancelled, Watching, server_jobs, watch_live, watcher_id
from .resources import sha256

log = logging.getLogger(__name__)
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
TOP_CHOICE = "Top prediction"
METHOD_HELP = {
    "gradcam": "Weights each feature map of a layer by how much the class score rises with it, "
    "then adds them up: a coarse map of the regions the class score depends on.",
    "gradcam++": "Like Grad-CAM, but weights each location separately, so several instances of the "
    "object all light up instead of only the strongest.",
    "layercam": "Keeps only positive gradients, location by location: sharper maps, and useful on "
    "earlier, higher-resolution layers.",
    "integrated-gradients": "Walks in small steps from a baseline (black, blurred or noise) to the photo "
    "and adds up each pixel's gradient. Red pixels raised the class score, blue lowered it, and all "
    "values add up to the score difference between photo and baseline (the completeness check below).",
    "smoothgrad": "Averages the pixel gradients of many noisy copies of the photo: which pixels the "
    "score is most sensitive to, with the noise of single gradients smoothed away.",
    "lime": "Cuts the photo into superpixels, hides random halves of them many times and fits a straight "
    "line to how the class probability changes: each superpixel's weight in that fit (Ribeiro et al. 2016). "
    "Red regions raised the probability, blue lowered it.",
    "kernelshap": "Like LIME, but weighs the samples so that the weights are Shapley values: each "
    "superpixel's fair share of the probability difference between the photo and the fully hidden photo "
    "(Lundberg and Lee 2017).",
    "occlusion": "Slides a square patch over the photo, hides what is under it and measures how much the "
    "class probability drops: no sampling, one forward pass per position (Zeiler and Fergus 2014).",
}
STRIDES = {0.25: "a quarter of the patch", 0.5: "half the patch", 1.0: "the whole patch (no overlap)"}


@dataclass(frozen=True)
class ImageInput:
    data: bytes
    key: str  # sha256 of the bytes
    name: str


@dataclass(frozen=True)
class Request:
    methods: tuple[str, ...]
    target: str | None
    settings: ImageSettings
    sanity: bool = False  # the model-randomisation check for every map


def choose_image() -> ImageInput | None:
    source = st.radio("Image", ["Sample gallery", "Upload a photo"], horizontal=True, key="image_source", persist_state="session")
    if source == "Sample gallery":
        name = st.selectbox("Sample photo", list(SAMPLES), key="image_sample", persist_state="session")
        st.caption(SAMPLES[name][1] + " Public-domain photo shipped with scikit-image or matplotlib.")
        data = sample_bytes(name)
        return ImageInput(data, sha256(data), name)
    upload = st.file_uploader(
        "Upload a photo (JPEG, PNG, WebP, BMP or GIF)",
        type=UPLOAD_TYPES,
        key="image_upload",
        help=f"Up to {MAX_BYTES // 2**20} MB. The photo stays in the server's memory and is never saved.",
    )
    if upload is None:
        return None
    data = upload.getvalue()
    return ImageInput(data, sha256(data), upload.name)


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def _decode(key: str, _data: bytes) -> DecodedImage | str:
    try:
        return decode_image(_data)
    except ImageInputError as error:
        return str(error)


def decode(image: ImageInput) -> DecodedImage | None:
    """The decoded photo, or None after showing the user why it cannot be used."""
    decoded = _decode(image.key, image.data)
    if isinstance(decoded, str):
        st.error(f"**{plain(image.name)}**: {plain(decoded)}")
        return None
    for note in decoded.notes:
        st.info(plain(note))
    return decoded


def request_form(classifier, input_size: tuple[int, int]) -> Request | None:
    """Everything that needs the model sits in one form: nothing runs until Explain is pressed.

    `input_size` is the photo's (h, w) as the model reads it: Occlusion's patch is measured in it."""
    available = methods_for(classifier)
    defaults = [m for m in ("gradcam", "integrated-gradients") if m in available]
    with st.form("image_request"):
        methods = st.multiselect(
            "Methods", available, default=defaults, format_func=METHOD_NAMES.get, key="image_methods", persist_state="session"
        )
        choices = [TOP_CHOICE] + [f"{i} · {label}" for i, label in enumerate(classifier.labels)]
        target = st.selectbox("Explain which class", choices, key="image_target", persist_state="session",
                              help="Type to search all classes.")
        layer = None
        if classifier.layers:
            layer = st.selectbox(
                "Layer for the Grad-CAM family",
                list(reversed(classifier.layers)),
                key="image_layer",
                persist_state="session",
                help="The last stage is coarse but most class-specific; earlier stages are sharper and less specific.",
            )
        with st.expander("Integrated Gradients settings"):
            baseline = st.radio("Baseline", BASELINES, horizontal=True, key="image_ig_baseline", persist_state="session")
            rule = st.radio(
                "Path sampling",
                ["adaptive", "gausslegendre", "riemann_trapezoid"],
                format_func={"adaptive": "adaptive (ours)", "gausslegendre": "Gauss-Legendre (captum's default)",
                             "riemann_trapezoid": "uniform trapezoid"}.get,
                horizontal=True,
                key="image_ig_rule",
                persist_state="session",
            )
            steps = st.slider("Steps (gradient evaluations)", 8, 256, ImageSettings.ig_steps, step=8,
                              key="image_ig_steps", persist_state="session")
        faithfulness = st.checkbox(
            "Measure faithfulness (deletion and insertion curves against a random and a centre-first order)",
            value=True,
            key="image_faithfulness",
            persist_state="session",
            help="Removes what each map ranks highest, step by step, and watches the class probability: "
            "about 2 x (steps + 1) extra forward passes per map.",
        )
        with st.expander("Faithfulness settings"):
            faithfulness_steps = st.slider("Steps per curve", MIN_STEPS, 100, ImageSettings.faithfulness_steps,
                                           key="image_faith_steps", persist_state="session")
            replacement = st.radio(
                "Removed pixels become",
                REPLACEMENTS,
                format_func=REPLACEMENT_WORDS.get,
                horizontal=True,
                key="image_faith_replacement",
                persist_state="session",
            )
        sanity = st.checkbox(
            "Sanity check: re-initialise the model's weights top-down and recompute each map",
            value=False,
            key="image_sanity",
            persist_state="session",
            help="Adebayo et al. 2018. A map that explains the model must change when its learned weights are "
            "destroyed. Costs about (parts + 1) x each method's time: seconds for the Grad-CAM family, "
            "a minute or more for Integrated Gradients.",
        )
        with st.expander("SmoothGrad settings"):
            samples = st.slider("Noisy samples", 4, 64, ImageSettings.smoothgrad_samples, step=4,
                                key="image_sg_samples", persist_state="session")
            noise = st.slider("Noise (fraction of the pixel range)", 0.05, 0.5, ImageSettings.smoothgrad_noise,
                              key="image_sg_noise", persist_state="session")
        perturbation = _perturbation_settings(input_size)
        submitted = st.form_submit_button("Explain", type="primary")
    if not submitted:
        return None
    settings = ImageSettings(
        layer=layer, ig_steps=steps, ig_baseline=baseline, ig_method=rule, smoothgrad_samples=samples,
        smoothgrad_noise=noise, faithfulness=faithfulness, faithfulness_steps=faithfulness_steps,
        faithfulness_replacement=replacement, **perturbation,
    )
    return Request(tuple(methods), None if target == TOP_CHOICE else target.split(" · ", 1)[0], settings, sanity)


def _perturbation_settings(input_size: tuple[int, int]) -> dict:
    """LIME, Kernel SHAP and Occlusion: sizes, samples, seed and what hidden parts become."""
    default_patch, _ = occlusion_window(ImageSettings(), input_size)
    with st.expander("LIME, Kernel SHAP and Occlusion settings"):
        hidden = st.radio("Hidden parts become", HIDDEN, format_func=REPLACEMENT_WORDS.get, horizontal=True,
                          key="image_hidden", persist_state="session",
                          help="Blurred keeps colours and rough shapes; black is a strong, unnatural change.")
        segments = st.slider("Superpixels asked for (LIME, Kernel SHAP)", 5, 200, ImageSettings.segments, step=5,
                             key="image_segments", persist_state="session",
                             help="SLIC usually gives a few fewer. More parts: finer maps, but more samples needed.")
        lime = st.slider("LIME samples", 20, 1000, ImageSettings.lime_samples, step=10,
                         key="image_lime_samples", persist_state="session", help="One forward pass each.")
        shap = st.slider("Kernel SHAP samples", 20, 1000, ImageSettings.shap_samples, step=10,
                         key="image_shap_samples", persist_state="session", help="One forward pass each.")
        seed = st.number_input("Seed (LIME, Kernel SHAP, SmoothGrad, faithfulness's random order)", 0, 2**31 - 1,
                               ImageSettings.seed, key="image_seed", persist_state="session",
                               help="The same seed gives the same map; another seed shows how stable it is.")
        side = min(input_size)
        patch = st.slider(f"Occlusion patch (pixels of the {input_size[1]} x {input_size[0]} input)", 4,
                          max(4, side), min(default_patch, side), key="image_patch", persist_state="session")
        stride = st.radio("Occlusion stride", list(STRIDES), index=1, format_func=STRIDES.get, horizontal=True,
                          key="image_stride", persist_state="session")
    return {"perturbation_baseline": hidden, "segments": segments, "lime_samples": lime, "shap_samples": shap,
            "seed": int(seed), "occlusion_patch": patch, "occlusion_stride": max(1, round(patch * stride))}


def run(classifier, image: ImageInput, request: Request, decoded: DecodedImage) -> None:
    """Start (or join) the work for this request; `follow` watches it from here on, across reruns."""
    model_key = f"{classifier.info.name}|{classifier.info.source}"
    key = ("image", image.key, model_key, request.methods, request.target, repr(request.settings), request.sanity)
    rgb = decoded.rgb

    def work(job):
        report = serving.run(classifier, explain_image, rgb, request.methods, request.target, request.settings,
                             progress=job.report, partial=job.publish, notice=job.note)
        if request.sanity and report.explanations:
            job.publish(report)  # every map while the sanity check runs

            def step(done: int, total: int) -> None:
                job.report(f"Sanity check: {done} of {total} recomputations on a randomised copy", done, total)

            report = replace(report, explanations=serving.run(classifier, with_sanity, rgb, report.explanations,
                                                              request.settings, progress=step, notice=job.note))
        return report

    job = server_jobs("image").start(key, work, "Explaining…", watcher_id())
    st.session_state["image_job"] = (job, image.key, image.name)


def follow() -> Watching | None:
    """This session's running request, if any: its place in line or progress, then its result or a clear message.

    Called on every run of the page, so a rerun in between (a moved slider) does not lose the work. While the
    work runs, its partial result becomes the page's result (the Grad-CAM family first, the slower maps as they
    come); the page calls the returned Watching's until_news() last, which reruns it on the next."""
    slot = st.empty()  # on every run, so what follows keeps its place
    pending = st.session_state.get("image_job")
    if pending is None:
        return None
    job, image_key, image_name = pending
    if not job.future.done():
        version, partial = job.latest()
        if partial is not None:
            st.session_state["image_result"] = (image_key, image_name, partial)
        return watch_live(job, "image_cancel", slot, version)
    del st.session_state["image_job"]
    error = job.future.exception()
    if error is None:
        st.session_state["image_result"] = (image_key, image_name, job.future.result())
        return None
    kept = ""
    if job.partial is not None:  # what was finished stays on the page, no longer waiting for the rest
        st.session_state["image_result"] = (image_key, image_name, replace(job.partial, pending=(), measuring=False))
        kept = " The maps below are the ones finished before."
    if isinstance(error, Cancelled):
        slot.info("Cancelled." + kept + " Press Explain to start again.")
    elif isinstance(error, (TargetError, SanityError, ServiceError)):
        slot.error(plain(error))
    else:  # never show a traceback, a path or the user's data
        log.error("image explanation failed: %s", type(error).__name__)
        slot.error("Something went wrong while explaining this image." + kept
                   + " The app still works: try another method or photo.")
    return None


def show_report(report: ImageReport, image_name: str) -> None:
    target = report.target
    left, right = st.columns([2, 3])
    with left:
        plot(prediction_bars(report.predictions, highlight=target.index), key="predictions")
    with right:
        st.markdown(f"**Explaining:** {plain(target.label)} (class {target.index}, probability {target.score:.1%})")
        if not report.explanations:
            st.info("Choose at least one method and press Explain to see where the evidence is.")
            return
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.6, 0.05, key="image_opacity", persist_state="session")
        views = ["One figure per method"] + (["Side by side"] if len(report.explanations) > 1 else [])
        view = st.radio("View", views, horizontal=True, key="image_view", persist_state="session")
        smoothed = False
        if any(e.method in PIXEL_METHODS for e in report.explanations):
            smoothed = st.radio(
                "Pixel maps (Integrated Gradients, SmoothGrad)",
                [False, True],
                format_func={False: "raw values", True: "smoothed |values|, for a projector"}.get,
                horizontal=True,
                key="image_pixel_display",
                persist_state="session",
                help="Pixel maps are sparse: single pixels, faint from a distance. The smoothed display blurs "
                "their absolute values so regions show; hover and downloads keep the raw values.",
            )
        with st.expander("What do these methods do?"):
            for explanation in report.explanations:
                st.markdown(f"**{METHOD_NAMES[explanation.method]}**: {METHOD_HELP[explanation.method]}")
    stem = image_name.rsplit(".", 1)[0][:40] or "image"
    if view == "Side by side":
        figure = comparison_figure(report.explanations, opacity, smoothed=smoothed, picture=served)
        plot(figure, key="comparison")
        agreeing = agreement(report.explanations, [method_title(e) for e in report.explanations])
        matrices = agreement_figure(agreeing)
        plot(matrices, key="agreement")
        cams_at_last_layer = any(e.layer is not None and e.layer == report.last_layer for e in report.explanations)
        for note in same_map_notes(agreeing, cams_at_last_layer):
            st.info(plain(note))
        download("Download comparison (HTML)", partial(full_figure_html, comparison_figure, report.explanations,
                                                        opacity, smoothed=smoothed, more=(matrices,)),
                 f"{stem}-comparison.html", "text/html")
    else:
        _one_figure_per_method(report, opacity, image_name, stem, smoothed)
    show_faithfulness(report.explanations, stem)
    show_sanity(report.explanations, stem)


def show_sanity(explanations, stem: str) -> None:
    """The model-randomisation check: each map after each step, the similarity chart, pass or fail."""
    checked = [(e.method, method_title(e), e.sanity) for e in explanations if e.sanity is not None]
    if not checked:
        return
    st.subheader("Sanity check: does the map depend on what the model learned?")
    st.write(
        "The model's weights are re-initialised from the top (the classifier, then the last stage, then the one "
        "before …), on a private copy, and each map is recomputed for the same class. A map that explains the "
        "model must stop resembling the original once the top layers are random. An edge detector, which never "
        "looks at the model, stays at similarity 1: that is what failing looks like."
    )
    sanity_section(checked, _sanity_maps, "image", lambda method: f"{stem}-{method}-sanity.html",
                   "maps are compared on a 64-pixel grid, signed maps by their absolute values")


def _sanity_maps(result, name: str):
    return sanity_maps_figure(result, f"{name} after each step (each map scaled to its own range)")


def show_faithfulness(explanations, stem: str) -> None:
    """The evidence under the maps: curves, areas against the references, a verdict per map."""
    if not measured(explanations):
        return
    st.subheader("How faithful are these maps?")
    st.write(
        "Each map ranks the photo's regions. Deletion removes the highest-ranked regions first and watches the "
        "probability fall; insertion reveals them first into an empty image and watches it come back. A map that "
        "shows what the model really uses beats a random order (and ideally the centre-first order)."
    )
    faithfulness_section(named_maps(explanations), explanations[0].target.label, "image", f"{stem}-faithfulness.html")


def _one_figure_per_method(report: ImageReport, opacity: float, image_name: str, stem: str, smoothed: bool) -> None:
    columns = st.columns(min(2, len(report.explanations) + len(report.pending)))
    for number, explanation in enumerate(report.explanations):
        with columns[number % len(columns)]:
            figure = heatmap_figure(explanation, opacity, smoothed, picture=served)
            plot(figure, key=f"figure-{explanation.method}")
            if explanation.convergence_delta is not None:
                st.caption(f"Completeness check: {completeness_text(explanation)}")
            if explanation.faithfulness is not None:
                st.caption(plain(faithfulness_caption(explanation.faithfulness)))
            elif report.measuring:
                st.caption("Faithfulness: being measured…")
            name = f"{stem}-{explanation.method}"
            a, b, c = st.columns(3)
            with a:
                download("Figure (HTML)", partial(full_figure_html, heatmap_figure, explanation, opacity, smoothed),
                         f"{name}.html", "text/html", explanation.method)
            with b:
                download("Values (JSON)", partial(explanation_json, explanation, image_name), f"{name}.json",
                          "application/json", explanation.method)
            with c:
                download("Values (CSV)", partial(attribution_csv, explanation), f"{name}.csv", "text/csv", explanation.method)
    for number, method in enumerate(report.pending, start=len(report.explanations)):  # still running
        with columns[number % len(columns)]:
            st.info(f"**{METHOD_NAMES[method]}**: on its way, see the progress bar above.")

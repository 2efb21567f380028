"""Widgets and result views for the image-text page. Compute comes from explainers/tasks/clip.py."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from functools import partial

import streamlit as st

import serving
from serving import ServiceError

from explainers.evaluation.clip_sanity import with_clip_sanity
from explainers.evaluation.faithfulness import MIN_STEPS
from explainers.evaluation.sanity import SanityError
from explainers.figures.sanity import sanity_maps_figure
from explainers.tasks.clip import CLIP_METHODS, MAX_PROMPTS, ClipSettings, PromptError, explain_image_text
from explainers.figures.clip import prompt_bars, similarity_figure
from explainers.records.clip import ClipReport
from explainers.records.export import figure_html, full_figure_html
from explainers.figures.image import comparison_figure, completeness_text, heatmap_figure
from explainers.records.as_json import clip_record
from explainers.inputs.samples import SAMPLES, sample_bytes
from explainers.figures.text import attribution_bars, attribution_text_figure
from explainers.records.common import METHOD_NAMES

from .presenter import plot
from .image_view import UPLOAD_TYPES, ImageInput
from .pictures import served
from .evidence import download, faithfulness_section, sanity_section
from .jobs import Cancelled, server_jobs, watch, watcher_id
from .markdown import plain
from .resources import sha256

log = logging.getLogger(__name__)
MAX_IMAGES = 6
DEFAULT_PROMPTS = "an astronaut\na flag\na rocket\na cat\na cup of coffee"
DEFAULT_TEMPLATE = "a photo of {}"


@dataclass(frozen=True)
class Request:
    prompts: tuple[str, ...]
    template: str
    methods: tuple[str, ...]
    image_index: int
    settings: ClipSettings
    sanity: bool = False  # the image-tower randomisation check for every map


def choose_images() -> list[ImageInput]:
    source = st.radio("Images", ["Sample gallery", "Upload photos"], horizontal=True, key="clip_source", persist_state="session")
    if source == "Sample gallery":
        names = st.multiselect("Sample photos", list(SAMPLES), default=["Astronaut (Eileen Collins)"],
                               max_selections=MAX_IMAGES, key="clip_samples", persist_state="session")
        return [ImageInput(sample_bytes(n), sha256(sample_bytes(n)), n) for n in names]
    uploads = st.file_uploader("Upload photos (JPEG, PNG, WebP, BMP or GIF)", type=UPLOAD_TYPES,
                               accept_multiple_files=True, key="clip_uploads")
    if len(uploads) > MAX_IMAGES:
        st.warning(f"{len(uploads)} photos uploaded; the first {MAX_IMAGES} are used.")
    images = []
    for upload in uploads[:MAX_IMAGES]:
        data = upload.getvalue()
        images.append(ImageInput(data, sha256(data), upload.name))
    return images


def request_form(model, names: list[str]) -> Request | None:
    available = [m for m in CLIP_METHODS if m != "relevancy" or model.has_attention]
    with st.form("clip_request"):
        prompts = st.text_area("Prompts, one per line", value=DEFAULT_PROMPTS, key="clip_prompts", persist_state="session", height=140,
                               help=f"Up to {MAX_PROMPTS}; duplicates are used once.")
        template = st.text_input("Template ({} marks where each prompt goes; leave empty for none)",
                                 value=DEFAULT_TEMPLATE, key="clip_template", persist_state="session")
        methods = st.multiselect("Views", available, default=available, format_func=METHOD_NAMES.get,
                                 key="clip_methods", persist_state="session")
        image_index = 0
        if len(names) > 1:
            image_index = st.selectbox("Image to explain", range(len(names)), format_func=lambda i: names[i],
                                       key="clip_image", persist_state="session")
        layer = None
        if "gradcam" in available and model.layers:
            layer = st.selectbox("Grad-CAM layer", list(reversed(model.layers)), key="clip_layer", persist_state="session",
                                 help="For a ViT, the input of this block, its patch tokens as a grid.")
        faithfulness = st.checkbox(
            "Measure faithfulness (deletion and insertion on the prompt's probability)",
            value=True, key="clip_faithfulness", persist_state="session",
            help="For the best-matching prompt: about 2 x (steps + 1) forward passes per map and per reference.",
        )
        every_prompt = st.checkbox(
            "… for every prompt, not only the best match", value=False, key="clip_faith_every",
            persist_state="session", help="The same cost again for each further prompt.",
        )
        steps = st.slider("Faithfulness steps per curve", MIN_STEPS, 100, ClipSettings.faithfulness_steps,
                          key="clip_faith_steps", persist_state="session")
        sanity = st.checkbox(
            "Sanity check: re-initialise the image tower top-down and recompute every map", value=False,
            key="clip_sanity", persist_state="session",
            help="Adebayo et al. 2018: one recomputation per part of the image tower, for every prompt and map.",
        )
        submitted = st.form_submit_button("Explain", type="primary")
    if not submitted:
        return None
    settings = ClipSettings(layer=layer, faithfulness=faithfulness, faithfulness_steps=steps,
                            faithfulness_every_prompt=every_prompt)
    return Request(tuple(prompts.splitlines()), template.strip(), tuple(methods), image_index, settings, sanity)


def run(model, images, decoded, request: Request, names: list[str]) -> None:
    """Start (or join) the work for this request; `follow` watches it from here on, across reruns."""
    key = ("clip", tuple(i.key for i in images), f"{model.info.name}|{model.info.source}", request)
    rgbs = [d.rgb for d in decoded]

    def work(job):  # here or in the model service (serving/)
        report = serving.run(model, explain_image_text, rgbs, request.prompts, request.methods, None,
                             request.settings, request.template, request.image_index, every_prompt=True,
                             progress=job.report, notice=job.note)
        if request.sanity and report.maps:
            def step(done: int, total: int) -> None:
                job.report(f"Sanity check: {done} of {total} recomputations on a randomised copy", done, total)

            report = serving.run(model, with_clip_sanity, rgbs[request.image_index], report, request.settings,
                                 progress=step, notice=job.note)
        return report

    job = server_jobs("clip").start(key, work, "Explaining…", watcher_id())
    st.session_state["clip_job"] = (job, names, request.image_index)


def follow() -> None:
    """Watch this session's running request, if any, then keep its result; messages for what went wrong."""
    slot = st.empty()  # on every run, so what follows keeps its place
    pending = st.session_state.get("clip_job")
    if pending is None:
        return
    job, names, image_index = pending
    try:
        st.session_state["clip_result"] = (watch(job, "clip_cancel", slot), names, image_index)
    except Cancelled:
        slot.info("Cancelled. Press Explain to start again.")
    except (PromptError, SanityError, ServiceError) as error:
        slot.error(plain(error))
    except Exception as error:  # never show a traceback, a path or the user's data
        log.error("image-text explanation failed: %s", type(error).__name__)
        slot.error("Something went wrong while explaining. The app still works: try other prompts or photos.")
    del st.session_state["clip_job"]  # not reached when a rerun interrupts the wait: the next run watches on


def show_report(report: ClipReport, names: list[str], image_index: int) -> None:
    for note in report.notes:
        st.info(plain(note))
    left, right = st.columns([3, 2])
    with left:
        figure = prompt_bars(report.prompts, report.probabilities[image_index], highlight=report.target.index)
        plot(figure, key="clip_bars")
    with right:
        chosen = st.selectbox("Prompt to explain", range(len(report.prompts)), index=report.target.index,
                              format_func=lambda i: report.prompts[i], key="clip_target", persist_state="session",
                              help="The best match by default; every prompt's maps are already computed.")
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.6, 0.05, key="clip_opacity", persist_state="session")
    if len(names) > 1:
        plot(similarity_figure(names, report.prompts, report.similarity, report.probabilities), key="clip_matrix")
    stem = f"clip-{names[image_index].rsplit('.', 1)[0][:40]}"
    for method in ("gradcam", "relevancy"):
        maps = [m for m in report.maps if m.method == method]
        if not maps:
            continue
        st.subheader(METHOD_NAMES[method])
        one = next(m for m in maps if m.target.index == chosen)
        figure = heatmap_figure(one, opacity, picture=served)
        plot(figure, key=f"clip_{method}")
        download("Figure (HTML)", partial(full_figure_html, heatmap_figure, one, opacity),
                 f"{stem}-{method}-prompt{chosen}.html", "text/html")
        if len(maps) > 1:
            title = f"{METHOD_NAMES[method]}, one map per prompt (each scaled to its own range)"
            labels = [m.target.label for m in maps]
            side = comparison_figure(maps, opacity, titles=labels, title=title, picture=served)
            plot(side, key=f"clip_{method}_side")
            download("Side by side (HTML)", partial(full_figure_html, comparison_figure, maps, opacity,
                                                    titles=labels, title=title),
                     f"{stem}-{method}-all.html", "text/html")
    words = next((w for w in report.words if w.prompt == chosen), None)
    if words is not None:
        st.subheader("Which words of the prompt made the match")
        keep = [i for i, s in enumerate(words.special) if not s]
        labels = [words.tokens[i].replace("</w>", "") for i in keep]
        values = words.attribution.values[keep]
        title = f"Word relevance for “{report.prompts[chosen]}” (red raised the match, blue lowered it)"
        text = attribution_text_figure(labels, values, title)
        plot(text, key="clip_words")
        plot(attribution_bars(labels, values, "Relevance per token"), key="clip_word_bars")
        st.caption(f"Completeness check: {completeness_text(words.attribution)}. Baseline: {words.attribution.params['baseline']}.")
        download("Figure (HTML)", partial(figure_html, text), f"{stem}-words-prompt{chosen}.html", "text/html")
    _show_evidence([m for m in report.maps if m.target.index == chosen], report.maps, report.prompts[chosen], stem, chosen)
    explained = report if chosen == report.target.index else _retarget(report, chosen)
    record = partial(_records, explained, names[image_index])
    download("Values (JSON Lines, one line per view)", record, f"{stem}-prompt{chosen}.jsonl", "application/json")


def _show_evidence(maps, all_maps, prompt: str, stem: str, chosen: int) -> None:
    """Faithfulness and the sanity check of the chosen prompt's maps, when they were measured."""
    named = [(METHOD_NAMES[m.method], m.faithfulness) for m in maps if m.faithfulness is not None]
    if named:
        st.subheader(f"How faithful are the maps for “{plain(prompt)}”?")
        st.write("Deletion removes the regions a map ranks highest and watches this prompt's probability fall; "
                 "insertion reveals them first into an empty image. A faithful map beats a random order.")
        faithfulness_section(named, prompt, "clip", f"{stem}-faithfulness-prompt{chosen}.html")
    elif any(other.faithfulness is not None for other in all_maps):
        st.caption("Faithfulness was measured for the best-matching prompt. Tick “… for every prompt” and press "
                   "Explain to measure this one too.")
    checked = [(m.method, METHOD_NAMES[m.method], m.sanity) for m in maps if m.sanity is not None]
    if checked:
        st.subheader("Sanity check: does the map depend on what the image tower learned?")
        sanity_section(checked, _sanity_maps, "clip", lambda method: f"{stem}-{method}-sanity-prompt{chosen}.html",
                       "maps are compared on a 64-pixel grid")


def _sanity_maps(result, name: str):
    return sanity_maps_figure(result, f"{name} after each step (each map scaled to its own range)")


def _retarget(report: ClipReport, chosen: int) -> ClipReport:
    return replace(report, target=report.predictions[chosen])


def _records(report: ClipReport, name: str) -> str:
    methods = ["none"] + sorted({m.method for m in report.maps}) + (["text-integrated-gradients"] if report.words else [])
    return "\n".join(json.dumps(clip_record(report, method, name, full_size=True)) for method in methods)

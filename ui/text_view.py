"""Widgets and result views for the text page. Compute comes from explainers/tasks/text.py, figures from explainers/figures/text.py."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial

import streamlit as st

import serving
from serving import ServiceError

from explainers.evaluation.faithfulness import MIN_STEPS
from explainers.evaluation.sanity import SanityError
from explainers.evaluation.text_sanity import with_text_sanity
from explainers.records.export import figure_html, text_attribution_csv
from explainers.figures.image import completeness_text, prediction_bars
from explainers.figures.sanity import sanity_words_figure
from explainers.records.as_json import text_record
from explainers.inputs.targets import TargetError
from explainers.tasks.text import TEXT_METHODS, TextInputError, TextSettings, explain_text, word_groups
from explainers.records.common import METHOD_NAMES, TOKEN_METHODS
from explainers.records.text import TextReport, TokenAttribution, classifier_view, grouped_values, token_groups
from explainers.figures.text import (
    attention_figure,
    attention_overview,
    attribution_bars,
    attribution_text_figure,
    overview_cell,
    rollout_focus_figure,
    text_comparison_figure,
)
from models.text_models import DEFAULT_DESCRIPTIONS

from .presenter import plot
from .evidence import download, faithfulness_section, sanity_section
from .jobs import Cancelled, server_jobs, watch, watcher_id
from .markdown import plain

log = logging.getLogger(__name__)
TOP_CHOICE = "Top prediction"
METHOD_LABELS = {
    "integrated-gradients": "Token attributions (Integrated Gradients)",
    "lime": "Word weights (LIME)",
    "kernelshap": "Word weights (Kernel SHAP)",
    "occlusion": "Word occlusion",
    "attention": "Attention maps",
    "rollout": "Attention rollout",
}
DEFAULT_VIEWS = ("integrated-gradients", "attention", "rollout")
AXES = {
    "integrated-gradients": "attribution (sums to f(x) − f(baseline))",
    "lime": "weight in LIME's straight-line fit (change of probability)",
    "kernelshap": "Shapley value (sums to about p(text) − p(all [PAD]))",
    "occlusion": "probability drop when the word is hidden",
}
HOW = {
    "lime": "LIME hides random halves of the words many times (each hidden word becomes [PAD]) and fits a "
    "straight line to how the label's probability changes: each word's weight in that fit.",
    "kernelshap": "Kernel SHAP hides words like LIME but weighs the samples so that the weights are Shapley "
    "values: each word's fair share of the probability difference between the text and the all-[PAD] text.",
    "occlusion": "Occlusion hides one word at a time (as [PAD]) and measures how much the label's probability "
    "drops: one forward pass per word, no sampling.",
}
EXAMPLES = (
    "The movie was wonderful, and the acting was superb.",
    "The plot was dull but the acting was excellent.",
    "I expected a disaster, yet it turned out to be a delight.",
    "The service was slow and the food arrived cold.",
    "Not bad at all.",
    "This is the worst phone I have ever owned.",
)
MAX_LABELS = 10
AVERAGE = "average of all heads"


@dataclass(frozen=True)
class Request:
    text: str
    compare_with: str
    methods: tuple[str, ...]
    target: str | None
    settings: TextSettings
    sanity: bool = False  # the model-randomisation check for every token map


def label_descriptions() -> tuple[tuple[str, str], ...]:
    """The zero-shot labels, editable: a class can try its own. Falls back to the defaults when invalid."""
    if "text_labels" not in st.session_state:
        # A new editor (first visit, or back from another page, which drops an editor's edits):
        # it starts from the labels last used, so a class's own labels survive a visit elsewhere.
        st.session_state["text_labels_start"] = st.session_state.get("text_labels_used", DEFAULT_DESCRIPTIONS)
    start = st.session_state.get("text_labels_start", DEFAULT_DESCRIPTIONS)
    with st.expander("Labels and their descriptions (zero-shot)", expanded=False):
        st.caption("The text is compared with each description; edit them or add rows to try your own labels.")
        rows = st.data_editor(
            [{"label": label, "description": text} for label, text in start],
            num_rows="dynamic",
            key="text_labels",
            width="stretch",
        )
    pairs = [(str(r.get("label") or "").strip(), str(r.get("description") or "").strip()) for r in rows]
    pairs = [(label[:40], text[:300]) for label, text in pairs if label or text]
    problem = None
    if any(not label or not text for label, text in pairs):
        problem = "Every label needs a name and a description."
    elif len({label.lower() for label, _ in pairs}) != len(pairs):
        problem = "Label names must differ."
    elif not 2 <= len(pairs) <= MAX_LABELS:
        problem = f"Give between 2 and {MAX_LABELS} labels."
    if problem:
        st.error(f"{problem} Using the default labels until that is fixed.")
        return DEFAULT_DESCRIPTIONS
    st.session_state["text_labels_used"] = tuple(pairs)
    return tuple(pairs)


def _use_example() -> None:
    choice = st.session_state.get("text_example")
    if choice in EXAMPLES:
        st.session_state["text_input"] = choice


def request_form(classifier) -> Request | None:
    st.selectbox(
        "Example sentences", ["Type your own"] + list(EXAMPLES), key="text_example", persist_state="session", on_change=_use_example
    )
    st.session_state.setdefault("text_input", EXAMPLES[0])
    with st.form("text_request"):
        text = st.text_area("Text", key="text_input", persist_state="session", height=100,
                            help="Anything the model's tokenizer can read; long texts are cut at the model's limit, with a notice.")
        compare_with = st.text_area(
            "Compare with (optional)", key="text_compare", persist_state="session", height=68,
            placeholder="Change a word or two of the text above and see what moves.",
        )
        methods = st.multiselect(
            "Views", TEXT_METHODS, default=list(DEFAULT_VIEWS), format_func=METHOD_LABELS.get,
            key="text_methods", persist_state="session",
            help="LIME, Kernel SHAP and Occlusion hide words and watch the label's probability: no gradients.",
        )
        target = st.selectbox(
            "Explain which label", [TOP_CHOICE] + list(classifier.labels), key="text_target", persist_state="session",
            help="Token attributions explain this label's score.",
        )
        with st.expander("Integrated Gradients settings"):
            rule = st.radio(
                "Path sampling", ["adaptive", "gausslegendre", "riemann_trapezoid"],
                format_func={"adaptive": "adaptive (ours)", "gausslegendre": "Gauss-Legendre (captum's default)",
                             "riemann_trapezoid": "uniform trapezoid"}.get,
                horizontal=True, key="text_ig_rule", persist_state="session",
            )
            steps = st.slider("Steps (gradient evaluations)", 8, 256, TextSettings.ig_steps, step=8,
                              key="text_ig_steps", persist_state="session")
        with st.expander("LIME and Kernel SHAP settings"):
            lime = st.slider("LIME samples", 20, 1000, TextSettings.lime_samples, step=10,
                             key="text_lime_samples", persist_state="session", help="One forward pass each.")
            shap = st.slider("Kernel SHAP samples", 20, 1000, TextSettings.shap_samples, step=10,
                             key="text_shap_samples", persist_state="session", help="One forward pass each.")
            seed = st.number_input("Seed (LIME, Kernel SHAP, faithfulness's random order)", 0, 2**31 - 1,
                                   TextSettings.seed, key="text_seed", persist_state="session",
                                   help="The same seed gives the same weights; another seed shows how stable they are.")
        faithfulness = st.checkbox(
            "Measure faithfulness (word deletion and insertion against a random order)", value=True,
            key="text_faithfulness", persist_state="session",
            help="Hides the words each map ranks highest, step by step, and watches the label's probability.",
        )
        faithfulness_steps = st.slider("Faithfulness steps (at most one per word)", MIN_STEPS, 100,
                                       TextSettings.faithfulness_steps, key="text_faith_steps", persist_state="session")
        sanity = st.checkbox(
            "Sanity check: re-initialise the model's layers top-down and recompute each word map", value=False,
            key="text_sanity", persist_state="session",
            help="Adebayo et al. 2018. A map that explains the model must change when its learned weights are "
            "destroyed: one recomputation per layer.",
        )
        submitted = st.form_submit_button("Explain", type="primary")
    if not submitted:
        return None
    # By index: a label the class invented may itself look like a number.
    chosen = None if target == TOP_CHOICE else str(classifier.labels.index(target))
    settings = TextSettings(ig_steps=steps, ig_method=rule, lime_samples=lime, shap_samples=shap, seed=int(seed),
                            faithfulness=faithfulness, faithfulness_steps=faithfulness_steps)
    return Request(text, compare_with.strip(), tuple(methods), chosen, settings, sanity)


def run(classifier, request: Request) -> None:
    """Start (or join) the work for this request; `follow` watches it from here on, across reruns."""
    key = ("text", classifier.identity, request)  # the texts are part of the key: they are the input

    def work(job):
        first = _explained(classifier, request.text, request.target, request, job)
        # The second text explains the same label, so the two maps answer the same question.
        second = None
        if request.compare_with:
            second = _explained(classifier, request.compare_with, str(first.target.index), request, job)
        return first, second

    job = server_jobs("text").start(key, work, "Explaining…", watcher_id())
    st.session_state["text_job"] = job


def _explained(classifier, text: str, target, request: Request, job) -> TextReport:
    """explain_text (and the sanity check), here or in the model service (serving/)."""
    report = serving.run(classifier, explain_text, text, request.methods, target, request.settings,
                         progress=job.report, notice=job.note)
    if request.sanity and report.token_maps:
        def step(done: int, total: int) -> None:
            job.report(f"Sanity check: {done} of {total} recomputations on a randomised copy", done, total)

        report = serving.run(classifier, with_text_sanity, report, request.settings, progress=step, notice=job.note)
    return report


def follow() -> None:
    """Watch this session's running request, if any, then keep its result; messages for what went wrong."""
    slot = st.empty()  # on every run, so what follows keeps its place
    job = st.session_state.get("text_job")
    if job is None:
        return
    try:
        st.session_state["text_result"] = watch(job, "text_cancel", slot)
    except Cancelled:
        slot.info("Cancelled. Press Explain to start again.")
    except (TextInputError, TargetError, SanityError, ServiceError) as error:
        slot.error(plain(error))
    except Exception as error:  # never show a traceback or the user's text in an error
        log.error("text explanation failed: %s", type(error).__name__)
        slot.error("Something went wrong while explaining this text. The app still works: try another text or view.")
    del st.session_state["text_job"]  # not reached when a rerun interrupts the wait: the next run watches on


def show_report(report: TextReport, second: TextReport | None) -> None:
    if report.truncation_notice:
        st.warning(plain(report.truncation_notice), icon="✂️")
    left, right = st.columns([2, 3])
    with left:
        figure = prediction_bars(report.predictions, highlight=report.target.index)
        figure.update_layout(title="Predictions")
        plot(figure, key="text_predictions")
    with right:
        st.markdown(f"**Explaining:** {plain(report.target.label)} (probability {report.target.score:.1%})")
        if second is not None:
            share = next(p.score for p in second.predictions if p.index == report.target.index)
            st.markdown(f"**Second text:** {plain(report.target.label)} probability {share:.1%} "
                        f"({share - report.target.score:+.1%} against the first)")
            if second.truncation_notice:
                st.warning(f"Second text: {plain(second.truncation_notice)}", icon="✂️")
        merge = st.toggle("Merge word pieces into words", value=True, key="text_merge", persist_state="session")
        hide = st.toggle("Hide [CLS] and [SEP]", value=True, key="text_hide_special", persist_state="session")
    names = [METHOD_LABELS[m] for m in TEXT_METHODS if _has(report, m)]
    if second is not None and report.attribution is not None:
        names.append("Compare the two texts")
    if not names:
        st.info("Choose at least one view and press Explain.")
        return
    tabs = dict(zip(names, st.tabs(names)))
    for attribution in report.token_maps:
        with tabs[METHOD_LABELS[attribution.method]]:
            _show_attribution(report, attribution, merge, hide)
    if report.attention is not None:
        with tabs[METHOD_LABELS["attention"]]:
            _show_attention(report)
    if report.rollout is not None:
        with tabs[METHOD_LABELS["rollout"]]:
            _show_rollout(report, hide)
    if "Compare the two texts" in tabs:
        with tabs["Compare the two texts"]:
            _show_comparison(report, second, merge, hide)
    show_faithfulness(report)
    show_sanity(report)


def _has(report: TextReport, method: str) -> bool:
    if method in TOKEN_METHODS:
        return report.token_map(method) is not None
    return {"attention": report.attention, "rollout": report.rollout}[method] is not None


def _units(report: TextReport, merge: bool, hide: bool, attribution: TokenAttribution | None = None):
    groups = token_groups(report, merge, hide)
    attribution = attribution or report.attribution
    return [label for label, _ in groups], grouped_values(attribution.values, groups)


def _show_attribution(report: TextReport, attribution: TokenAttribution, merge: bool, hide: bool) -> None:
    labels, values = _units(report, merge, hide, attribution)
    unit = "word" if merge else "token"
    target, method, name = report.target.label, attribution.method, METHOD_NAMES[attribution.method]
    text_figure = attribution_text_figure(
        labels, values, f"{name}: which {unit}s pushed towards “{target}” (red) or away (blue)")
    plot(text_figure, key=f"text_attribution_text_{method}")
    if attribution.convergence_delta is not None:
        st.caption(f"Completeness check: {completeness_text(attribution)}. Baseline: {attribution.params['baseline']}.")
    else:
        p = attribution.params
        used = f"{p['samples']} samples, seed {p['seed']}" if "samples" in p else f"{p['forwards']} forward passes"
        st.caption(f"{HOW[method]} Values are changes of probability; {used}. Word pieces share their word's "
                   "value (on its first piece).")
    if attribution.faithfulness is not None:
        f = attribution.faithfulness
        st.caption(f"Faithfulness: deletion area {f.curves.deletion_auc:.3f} (random order "
                   f"{f.references['random'].deletion_auc:.3f}), insertion area {f.curves.insertion_auc:.3f} "
                   f"(random order {f.references['random'].insertion_auc:.3f}).")
    bars = attribution_bars(labels, values, f"{name} per {unit} for “{target}”", AXES[method])
    plot(bars, key=f"text_attribution_bars_{method}")
    _downloads(report, method, {"text": text_figure, "bars": bars},
               csv=partial(text_attribution_csv, report, method))


def show_faithfulness(report: TextReport) -> None:
    named = [(METHOD_NAMES[m.method], m.faithfulness) for m in report.token_maps if m.faithfulness is not None]
    if not named:
        return
    st.subheader("How faithful are these word maps?")
    st.write(
        "Each map ranks the words. Deletion hides the highest-ranked words first and watches the label's probability "
        "fall; insertion reveals them first into an all-[PAD] text and watches it come back. A map that shows what "
        "the model really reads beats a random order of words."
    )
    faithfulness_section(named, report.target.label, "text", "text-faithfulness.html",
                         "A sentence has no centre, so a random order is the reference; with few words, a step hides "
                         "a whole word and the curves are coarse.")


def show_sanity(report: TextReport) -> None:
    checked = [(m.method, METHOD_NAMES[m.method], m.sanity) for m in report.token_maps if m.sanity is not None]
    if not checked:
        return
    st.subheader("Sanity check: does the map depend on what the model learned?")
    st.write(
        "The model's weights are re-initialised from the top (the classifier, then the last layer, then the one "
        "before … down to the embeddings), on a private copy, and each word map is recomputed for the same label. "
        "A map that explains the model must stop resembling the original once the top layers are random. Word "
        "lengths, which never look at the model, stay at similarity 1: that is what failing looks like."
    )
    words = [report.text[report.spans[p[0]][0]:report.spans[p[-1]][1]] for p in word_groups(report)]

    def maps(result, name: str):
        return sanity_words_figure(result, words, f"{name} after each step (|values|, each row scaled to its largest)")

    sanity_section(checked, maps, "text", lambda method: f"text-{method}-sanity.html", "on |values| per word")


def _selected_layer_head(report: TextReport) -> None:
    """A click on the overview picks that layer and head (before the pickers are drawn)."""
    event = st.session_state.get("text_overview")
    points = (event or {}).get("selection", {}).get("points") or []
    if not points:
        return
    cell = overview_cell(report.attention.shape, points[0].get("x", -1), points[0].get("y", -1))
    if cell is not None and cell != st.session_state.get("text_overview_applied"):
        st.session_state["text_overview_applied"] = cell
        st.session_state["text_layer"] = cell[0] + 1
        st.session_state["text_head"] = f"head {cell[1] + 1}"


def _show_attention(report: TextReport) -> None:
    attention = report.attention
    layers, heads = attention.shape[:2]
    _selected_layer_head(report)
    a, b = st.columns(2)
    with a:
        layer = st.selectbox("Layer", list(range(1, layers + 1)), index=layers - 1, key="text_layer", persist_state="session")
    with b:
        head = st.selectbox("Head", [AVERAGE] + [f"head {h}" for h in range(1, heads + 1)], key="text_head", persist_state="session")
    matrix = attention[layer - 1].mean(0) if head == AVERAGE else attention[layer - 1, int(head.split()[1]) - 1]
    detail = attention_figure(report.tokens, matrix, f"Layer {layer}, {head}: who attends to whom")
    plot(detail, key="text_attention")
    overview = attention_overview(attention)
    st.caption("Click a map in the overview to open it above.")
    plot(overview, key="text_overview", on_select="rerun", selection_mode="points")
    _downloads(report, "attention", {"detail": detail, "overview": overview})


def _show_rollout(report: TextReport, hide: bool) -> None:
    weights = classifier_view(report)
    keep = [i for i, s in enumerate(report.special) if not (hide and s)]
    reads = "the [CLS] token" if report.pooling == "cls" else "the average of all tokens"
    focus = rollout_focus_figure([report.tokens[i] for i in keep], weights[keep],
                                 f"Rollout: where {reads}, which the classifier reads, draws from")
    plot(focus, key="text_rollout_focus")
    matrix = attention_figure(report.tokens, report.rollout, "Rollout across all layers (Abnar & Zuidema 2020)")
    plot(matrix, key="text_rollout")
    st.caption("Rollout multiplies the head-averaged attention of every layer, counting the residual path as half. "
               "It shows how information flows, not whether a token raised or lowered the score.")
    _downloads(report, "rollout", {"focus": focus, "matrix": matrix})


def _show_comparison(first: TextReport, second: TextReport, merge: bool, hide: bool) -> None:
    a_labels, a_values = _units(first, merge, hide)
    b_labels, b_values = _units(second, merge, hide)
    target = first.target.label
    figure = text_comparison_figure(
        (a_labels, a_values, f"First: {first.target.label} {first.target.score:.1%}"),
        (b_labels, b_values, f"Second: {target} {next(p.score for p in second.predictions if p.index == first.target.index):.1%}"),
        f"Attributions for “{target}” on one colour scale",
    )
    plot(figure, key="text_comparison")
    st.caption(f"First: {completeness_text(first.attribution, short=True)} · Second: {completeness_text(second.attribution, short=True)}")
    download("Comparison (HTML)", partial(figure_html, figure), "text-comparison.html", "text/html")


def _downloads(report: TextReport, method: str, figures: dict, csv=None) -> None:
    columns = st.columns(len(figures) + 1 + (csv is not None))
    for column, (name, figure) in zip(columns, figures.items()):
        with column:
            download(f"Figure: {name} (HTML)", partial(figure_html, figure), f"text-{method}-{name}.html", "text/html")
    with columns[len(figures)]:
        download("Values (JSON)", partial(_record_json, report, method), f"text-{method}.json", "application/json")
    if csv is not None:
        with columns[-1]:
            download("Values (CSV)", csv, f"text-{method}.csv", "text/csv")


def _record_json(report: TextReport, method: str) -> str:
    return json.dumps(text_record(report, method, source=report.text))

"""Widgets and result views for the text page. Compute comes from explainers/tasks/text.py, figures from explainers/figures/text.py."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial

import streamlit as st

from explainers.records.export import figure_html, text_attribution_csv
from explainers.figures.image import completeness_text, prediction_bars
from explainers.records.as_json import text_record
from explainers.inputs.targets import TargetError
from explainers.tasks.text import TEXT_METHODS, TextInputError, TextSettings, explain_text
from explainers.records.text import TextReport, classifier_view, grouped_values, token_groups
from explainers.figures.text import (
    attention_figure,
    attention_overview,
    attribution_bars,
    attribution_text_figure,
    overview_cell,
    rollout_focus_figure,
    text_comparison_figure,
)
from models.text_models import DEFAULT_DESCRIPTIONS, ZeroShotEncoder

from .markdown import plain
from .resources import releasing_memory

log = logging.getLogger(__name__)
TOP_CHOICE = "Top prediction"
METHOD_LABELS = {
    "integrated-gradients": "Token attributions (Integrated Gradients)",
    "attention": "Attention maps",
    "rollout": "Attention rollout",
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


def is_zero_shot(model) -> bool:
    return isinstance(model, ZeroShotEncoder)


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
            "Views", TEXT_METHODS, default=list(TEXT_METHODS), format_func=METHOD_LABELS.get,
            key="text_methods", persist_state="session",
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
        submitted = st.form_submit_button("Explain", type="primary")
    if not submitted:
        return None
    # By index: a label the class invented may itself look like a number.
    chosen = None if target == TOP_CHOICE else str(classifier.labels.index(target))
    return Request(text, compare_with.strip(), tuple(methods), chosen, TextSettings(ig_steps=steps, ig_method=rule))


# Fewer entries than images: every attention map of a 512-token BERT-base text is ~150 MB.
@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
@releasing_memory
def _explain(text: str, model_key: str, methods, target, settings_key: str, _classifier, _settings) -> TextReport:
    return explain_text(_classifier, text, methods, target, _settings)


def run(classifier, request: Request) -> tuple[TextReport, TextReport | None] | None:
    """Both reports (the second when comparing), or None after telling the user what went wrong."""
    explain = partial(_explain, model_key=classifier.identity, methods=request.methods, settings_key=repr(request.settings),
                      _classifier=classifier, _settings=request.settings)
    try:
        with st.spinner("Explaining…"):
            first = explain(request.text, target=request.target)
            # The second text explains the same label, so the two maps answer the same question.
            second = explain(request.compare_with, target=str(first.target.index)) if request.compare_with else None
        return first, second
    except (TextInputError, TargetError) as error:
        st.error(plain(error))
    except Exception as error:  # never show a traceback or the user's text in an error
        log.error("text explanation failed: %s", type(error).__name__)
        st.error("Something went wrong while explaining this text. The app still works: try another text or view.")
    return None


def show_report(report: TextReport, second: TextReport | None) -> None:
    if report.truncation_notice:
        st.warning(plain(report.truncation_notice), icon="✂️")
    left, right = st.columns([2, 3])
    with left:
        figure = prediction_bars(report.predictions, highlight=report.target.index)
        figure.update_layout(title="Predictions")
        st.plotly_chart(figure, key="text_predictions")
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
    if report.attribution is not None:
        with tabs[METHOD_LABELS["integrated-gradients"]]:
            _show_attribution(report, merge, hide)
    if report.attention is not None:
        with tabs[METHOD_LABELS["attention"]]:
            _show_attention(report)
    if report.rollout is not None:
        with tabs[METHOD_LABELS["rollout"]]:
            _show_rollout(report, hide)
    if "Compare the two texts" in tabs:
        with tabs["Compare the two texts"]:
            _show_comparison(report, second, merge, hide)


def _has(report: TextReport, method: str) -> bool:
    return {"integrated-gradients": report.attribution, "attention": report.attention, "rollout": report.rollout}[method] is not None


def _units(report: TextReport, merge: bool, hide: bool):
    groups = token_groups(report, merge, hide)
    return [label for label, _ in groups], grouped_values(report.attribution.values, groups)


def _show_attribution(report: TextReport, merge: bool, hide: bool) -> None:
    labels, values = _units(report, merge, hide)
    unit = "word" if merge else "token"
    target = report.target.label
    text_figure = attribution_text_figure(labels, values, f"Which {unit}s pushed towards “{target}” (red) or away (blue)")
    st.plotly_chart(text_figure, key="text_attribution_text")
    st.caption(f"Completeness check: {completeness_text(report.attribution)}. Baseline: {report.attribution.params['baseline']}.")
    bars = attribution_bars(labels, values, f"Attribution per {unit} for “{target}”")
    st.plotly_chart(bars, key="text_attribution_bars")
    _downloads(report, "integrated-gradients", {"text": text_figure, "bars": bars},
               csv=partial(text_attribution_csv, report))


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
    st.plotly_chart(detail, key="text_attention")
    overview = attention_overview(attention)
    st.caption("Click a map in the overview to open it above.")
    st.plotly_chart(overview, key="text_overview", on_select="rerun", selection_mode="points")
    _downloads(report, "attention", {"detail": detail, "overview": overview})


def _show_rollout(report: TextReport, hide: bool) -> None:
    weights = classifier_view(report)
    keep = [i for i, s in enumerate(report.special) if not (hide and s)]
    reads = "the [CLS] token" if report.pooling == "cls" else "the average of all tokens"
    focus = rollout_focus_figure([report.tokens[i] for i in keep], weights[keep],
                                 f"Rollout: where {reads}, which the classifier reads, draws from")
    st.plotly_chart(focus, key="text_rollout_focus")
    matrix = attention_figure(report.tokens, report.rollout, "Rollout across all layers (Abnar & Zuidema 2020)")
    st.plotly_chart(matrix, key="text_rollout")
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
    st.plotly_chart(figure, key="text_comparison")
    st.caption(f"First: {completeness_text(first.attribution, short=True)} · Second: {completeness_text(second.attribution, short=True)}")
    _download("Comparison (HTML)", partial(figure_html, figure), "text-comparison.html", "text/html")


def _downloads(report: TextReport, method: str, figures: dict, csv=None) -> None:
    columns = st.columns(len(figures) + 1 + (csv is not None))
    for column, (name, figure) in zip(columns, figures.items()):
        with column:
            _download(f"Figure: {name} (HTML)", partial(figure_html, figure), f"text-{method}-{name}.html", "text/html")
    with columns[len(figures)]:
        _download("Values (JSON)", partial(_record_json, report, method), f"text-{method}.json", "application/json")
    if csv is not None:
        with columns[-1]:
            _download("Values (CSV)", csv, f"text-{method}.csv", "text/csv")


def _record_json(report: TextReport, method: str) -> str:
    return json.dumps(text_record(report, method, source=report.text))


def _download(label: str, make, file_name: str, mime: str) -> None:
    # Files are built only when clicked, and clicking does not rerun the page.
    st.download_button(label, make, file_name=file_name, mime=mime, on_click="ignore", key=f"dl-{file_name}")


"""Widgets and the dashboard of the Audit page. The audit itself is explainers/audit/ (the command line's
own code); figures come from explainers/figures/audit.py and the report from explainers/reports/."""

from __future__ import annotations

import csv
import io
import json
import logging
import zipfile
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from explainers.audit.archive import ZipLimits
from explainers.audit.batches import Loaded
from explainers.audit.config import DEFAULT_METHODS, FAITHFUL_METHODS, AuditConfig
from explainers.audit.dataset import Dataset, dataset_from_upload, load_dataset
from explainers.audit.errors import DatasetError
from explainers.audit.run import run_audit
from explainers.figures import audit as figures
from explainers.figures.image import _short
from explainers.records.audit import Audit
from explainers.records.common import METHOD_NAMES
from explainers.records.faithfulness import REFERENCE_NAMES
from explainers.reports.audit import render
from explainers.reports.pdf import PdfError, find_chromium, html_to_pdf
from models.image_models import DEFAULT_IMAGE_MODEL
from models.image_text_models import DEFAULT_CLIP_MODEL
from models.text_models import DEFAULT_DESCRIPTIONS, DEFAULT_TEXT_MODEL

from .presenter import plot
from .evidence import download
from .jobs import Cancelled, server_jobs, watch, watcher_id
from .markdown import plain
from .resources import image_classifier, local_image_text_model, local_text_model, sha256

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = {
    "image": ROOT / "datasets" / "sample-images" / "manifest.csv",
    "text": ROOT / "datasets" / "sample-texts.csv",
    "clip": ROOT / "datasets" / "sample-images" / "manifest.csv",
}
SAMPLE_TEMPLATE = "a photo of a {}"
MAX_ITEMS = 500  # on the page; the command line takes any size
PAGE_ZIP_LIMITS = ZipLimits(max_members=5_000, max_total_bytes=256 << 20, max_member_bytes=25 << 20)
TASK_LABELS = {"image": "Images (ImageNet classifier)", "text": "Texts (sentiment classifier)",
               "clip": "Images + prompts (zero-shot: the prompts are the classes)"}
SOURCE_UPLOAD, SOURCE_SAMPLE = "Upload a zip or a CSV / JSONL", "The sample dataset"
DEFAULT_MODELS = {"image": DEFAULT_IMAGE_MODEL, "text": DEFAULT_TEXT_MODEL, "clip": DEFAULT_CLIP_MODEL}


@dataclass(frozen=True)
class Request:
    task: str
    name: str  # the file's name, or "sample"
    digest: str  # sha256 of the uploaded bytes (or of the sample's manifest): part of the job's key
    config: AuditConfig


def shared_model(task: str, name: str) -> tuple[Loaded, str, str]:
    """The server's shared model for `task` in this process (the other pages' too, unless they use the model
    service: audits always run here), what identifies it, and how it decides."""
    if task == "image":
        model = image_classifier(name)
        return Loaded(model, model.labels, model.info), f"{model.info.name}|{model.info.source}", ""
    if task == "text":
        model = local_text_model(name)
        model = model.classifier(DEFAULT_DESCRIPTIONS) if model.zero_shot else model
        return Loaded(model, model.labels, model.info), model.identity, model.how
    model = local_image_text_model(name)
    return Loaded(model, (), model.info), f"{model.info.name}|{model.info.source}", model.how


def dataset_form(task: str, upload_cap_mb: int) -> tuple[Dataset | None, str, str]:
    """The chosen dataset (None until there is one), its name, and its bytes' sha256."""
    source = st.radio("Data", [SOURCE_SAMPLE, SOURCE_UPLOAD], horizontal=True, key="audit_source",
                      persist_state="session")
    if source == SOURCE_SAMPLE:
        dataset = load_dataset(SAMPLES[task], task)
        dataset = replace(dataset, origin=f"the sample dataset {SAMPLES[task].relative_to(ROOT)}")
        st.caption(plain(f"{len(dataset.items)} items from datasets/ in this repository "
                         f"({'72 sentences written for it' if task == 'text' else '6 public-domain photos x 8 transformations'}); "
                         f"group columns: {', '.join(dataset.group_columns)}."))
        download("Sample dataset (zip)", partial(sample_zip, task), f"sample-{task}.zip", "application/zip", key="sample")
        return dataset, "sample", dataset.sha256
    kinds = ["zip"] + (["csv", "jsonl"] if task == "text" else [])
    upload = st.file_uploader(
        "Dataset", type=kinds, key="audit_upload",
        help=(f"A zip with one folder per class (tabby/1.jpg ...), or with a manifest.csv (path,label[,group ...]) at its "
              f"top; for texts also a CSV or JSONL with text,label[,group ...]. Up to {upload_cap_mb} MB and "
              f"{MAX_ITEMS} items here; bigger datasets: the command line (python -m explainers audit)."))
    st.caption(plain(f"Limits here: {upload_cap_mb} MB per upload, {MAX_ITEMS} items. Uploads stay in the server's "
                     "memory and are never written to disk. For more, use the command line (README: Audit)."))
    if upload is None:
        return None, "", ""
    data = upload.getvalue()
    dataset = dataset_from_upload(upload.name, data, task, PAGE_ZIP_LIMITS)
    if len(dataset.items) > MAX_ITEMS:
        raise DatasetError(f"The dataset has {len(dataset.items):,} items; the page audits at most {MAX_ITEMS}. "
                           "Run the command line on it instead: python -m explainers audit DATA --task "
                           f"{task} --report audit.html")
    return dataset, upload.name, sha256(data)


def sample_zip(task: str) -> bytes:
    """The sample dataset as the page would take it back: a zip with its manifest at the top."""
    manifest = SAMPLES[task]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(manifest, "manifest.csv")
        if task != "text":  # the photos beside it, at the paths the manifest gives
            for row in csv.DictReader(io.StringIO(manifest.read_text())):
                archive.write(manifest.parent / row["path"], row["path"])
    return buffer.getvalue()


def settings_form(task: str, name: str, digest: str, model: str) -> Request | None:
    allowed = FAITHFUL_METHODS[task]
    with st.form("audit_request"):
        methods = st.multiselect("Maps to measure and show", allowed, default=list(DEFAULT_METHODS[task]),
                                 format_func=METHOD_NAMES.get, key=f"audit_methods_{task}", persist_state="session",
                                 help="Each gets deletion / insertion curves on the faithfulness sample; the first "
                                      "is drawn for the example items and sanity-checked.")
        left, right = st.columns(2)
        sample = left.number_input("Faithfulness sample (items)", 0, 64, 16, key="audit_sample", persist_state="session",
                                   help="A seeded sample of the items; 0 skips faithfulness.")
        sanity = right.number_input("Sanity checks (items of that sample)", 0, 4, 2, key="audit_sanity",
                                    persist_state="session", help="Each costs about ten maps.")
        seed = left.number_input("Seed", 0, 2**31 - 1, 0, key="audit_seed", persist_state="session")
        prompts, template = (), ""
        if task == "clip":
            template = right.text_input("Template", value=SAMPLE_TEMPLATE, key="audit_template", persist_state="session",
                                        help="Each class name fills the {}: 'a photo of a {}'.")
            typed = st.text_area("Prompts, one per line (empty: the dataset's labels)", key="audit_prompts",
                                 persist_state="session", height=100)
            prompts = tuple(line.strip() for line in typed.splitlines() if line.strip())
        pressed = st.form_submit_button("Run the audit", type="primary")
    if not pressed:
        return None
    config = AuditConfig(task, model=model, methods=tuple(methods), sample=int(sample), seed=int(seed),
                         sanity_items=int(sanity), prompts=prompts, template=template)
    return Request(task, name, digest, config)


def run(dataset: Dataset, loaded: Loaded, identity: str, request: Request) -> None:
    """Start (or join) the audit; `follow` watches it from here on, across reruns."""
    key = ("audit", identity, request)

    def work(job):
        def counted(what: str, done: int, total: int) -> None:
            label = {"items": "Predicting", "examples": "Explaining the example items",
                     "sanity": "Sanity checks"}.get(what, what)
            job.report(f"{label}: {done} of {total}", done, total)

        return run_audit(dataset, request.config, loaded, progress=counted)

    job = server_jobs("audit").start(key, work, "Starting the audit…", watcher_id())
    st.session_state["audit_job"] = (job, request)


def follow() -> None:
    slot = st.empty()  # on every run, so what follows keeps its place
    running = st.session_state.get("audit_job")
    if running is None:
        return
    job, request = running
    try:
        st.session_state["audit_result"] = (watch(job, "audit_cancel", slot), request)
    except Cancelled:
        slot.info("Cancelled. Press Run the audit to start again.")
    except DatasetError as error:
        slot.error(plain(error))
    except Exception as error:  # never a traceback, never the user's data in a message
        log.error("audit failed: %s", type(error).__name__)
        slot.error("Something went wrong during the audit. The app still works: try again or another dataset.")
    del st.session_state["audit_job"]


def command_for(request: Request) -> str:
    """The command line that reproduces this audit, for the report."""
    config = request.config
    data = {"sample": str(SAMPLES[request.task].relative_to(ROOT))}.get(request.name, request.name)
    parts = ["python -m explainers audit", _quoted(data), "--task", config.task]
    if config.model:
        parts += ["--model", _quoted(config.model)]
    parts += ["--methods", *(config.methods or ("none",)), "--sample", str(config.sample),
              "--sanity-items", str(config.sanity_items), "--seed", str(config.seed)]
    if config.prompts:
        parts += ["--prompts", *(_quoted(p) for p in config.prompts)]
    if config.template:
        parts += ["--template", _quoted(config.template)]
    return " ".join(parts + ["--report", "audit.html"])


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)


def show(audit: Audit, request: Request) -> None:
    summary = audit.summary
    command = command_for(request)
    st.subheader("Results")
    columns = st.columns(4)
    columns[0].metric("Accuracy", _pct(summary["accuracy"]), help=_interval_help(summary["accuracy_interval"]))
    columns[1].metric("Top-5 accuracy", _pct(summary["top5_accuracy"]),
                      help=_interval_help(summary["top5_accuracy_interval"]) if summary["top5_accuracy"] is not None
                      else "Applies with more than five classes.")
    columns[2].metric("Calibration error (ECE)", "n/a" if summary["ece"] is None else f"{summary['ece']:.3f}")
    columns[3].metric("Evaluated", f"{summary['evaluated']} of {summary['items']}",
                      delta=f"{summary['skipped']} skipped" if summary["skipped"] else None, delta_color="inverse")
    st.caption(plain(f"{audit.model['name']} on {audit.dataset['origin']}, {audit.seconds:.1f} s. "
                     "Intervals are 95%: Wilson for accuracies, bootstrap for gaps and mean areas."))
    html = partial(render, audit, command)
    left, middle, right = st.columns(3)
    with left:
        download("Report (HTML, self-contained)", html, "audit.html", "text/html", key="audit")
    with middle:
        if find_chromium():
            download("Report (PDF)", partial(_pdf, html), "audit.pdf", "application/pdf", key="audit")
        else:
            st.caption("A PDF needs Chromium on the server; print the HTML report from a browser instead.")
    with right:
        download("Per-item results (JSON Lines)", partial(_jsonl, audit), "results.jsonl", "application/jsonl", key="audit")
    st.caption(plain(f"Reproduce: {command}"))
    _confusion(summary)
    _groups(summary)
    _calibration(summary)
    _examples(audit)
    _faithfulness(summary)
    _sanity(audit)
    _per_class(summary)
    if summary["skipped_items"]:
        st.subheader("Skipped items")
        st.dataframe(pd.DataFrame(summary["skipped_items"]), hide_index=True, key="audit_skipped")


def _pdf(html) -> bytes:
    try:
        return html_to_pdf(html())
    except PdfError as error:  # the download is already under way: its content says what happened
        log.error("audit PDF failed: %s", type(error).__name__)
        return f"No PDF could be made here: {error}".encode()


def _jsonl(audit: Audit) -> bytes:
    return "".join(json.dumps({**r, "audit": audit.id}) + "\n" for r in audit.results).encode()


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _interval_help(pair) -> str:
    return f"95% Wilson interval: {pair[0]:.1%} to {pair[1]:.1%}" if pair else ""


def _confusion(summary: dict) -> None:
    confusion = summary["confusion"]
    if not confusion["rows"]:
        return
    st.subheader("Confusion matrix")
    figure = figures.confusion_figure(confusion)
    figures.add_cell_targets(figure, confusion)
    cells = [key for key, items in confusion["items"].items() if items]
    plot(figure, key="audit_confusion", on_select=partial(_clicked_cell, cells), selection_mode="points")
    names = {key: _cell_name(confusion, key) for key in cells}
    picked = st.selectbox("Items of a cell (or click a cell)", [None] + cells,
                          format_func=lambda k: "Choose a cell" if k is None else names[k], key="audit_cell")
    if picked is not None:
        st.write(plain(", ".join(confusion["items"][picked])))


def _clicked_cell(cells: list[str]) -> None:
    """A click on the matrix picks that cell in the list below it (heatmap cells carry invisible markers)."""
    points = st.session_state["audit_confusion"]["selection"]["points"]
    if points:
        key = f"{int(points[0]['y'])},{int(points[0]['x'])}"
        st.session_state["audit_cell"] = key if key in cells else None


def _cell_name(confusion: dict, key: str) -> str:
    row, column = (int(v) for v in key.split(","))
    count = len(confusion["items"][key])
    return f"true {_short(confusion['rows'][row])} → predicted {_short(confusion['columns'][column])} ({count})"


def _groups(summary: dict) -> None:
    st.subheader("Groups")
    if not summary["per_group"]:
        st.caption("This dataset has no group columns: a manifest's extra columns (e.g. path,label,region) become groups.")
        return
    for column, rows in summary["per_group"].items():
        plot(figures.group_figure(column, rows, summary["accuracy"]), key=f"audit_group_{column}")
        table = pd.DataFrame([{
            column: value or "(empty)", "items": r["size"], "accuracy": _pct(r["accuracy"]),
            "95% interval": f"{_pct(r['accuracy_interval'][0])} to {_pct(r['accuracy_interval'][1])}",
            "gap to overall": f"{r['gap']:+.1%}",
            "gap 95% interval": f"{r['gap_interval'][0]:+.1%} to {r['gap_interval'][1]:+.1%}",
            "verdict": "too small to say anything" if r["too_small"] else (
                ("clearly worse" if r["gap"] < 0 else "clearly better") if r["gap_clear"] else "no clear gap"),
        } for value, r in rows.items()])
        st.dataframe(table, hide_index=True, key=f"audit_group_table_{column}")


def _calibration(summary: dict) -> None:
    if summary["ece"] is None:
        return
    st.subheader("Calibration")
    plot(figures.reliability_figure(summary["calibration"], summary["ece"]), key="audit_reliability")


def _examples(audit: Audit) -> None:
    if not audit.examples:
        return
    method = METHOD_NAMES.get(audit.config["methods"][0], audit.config["methods"][0])
    titles = {"confident_errors": "Most confident errors", "unsure_correct": "Least confident correct answers"}
    for kind, shown in audit.examples.items():
        st.subheader(titles[kind])
        st.caption(plain(f"{method} for the predicted class."))
        if not shown:
            st.caption("None.")
            continue
        columns = st.columns(3)
        for number, example in enumerate(shown):
            with columns[number % 3]:
                caption = (f"{example['input']}: true {_short(example['label'])}, predicted "
                           f"{_short(example['prediction'])} ({example['score']:.1%})")
                if "words" in example:
                    ranked = sorted(zip(example["words"], example["values"]), key=lambda wv: -abs(wv[1]))[:4]
                    st.markdown(plain(" ".join(example["words"])))
                    st.caption(plain(caption + "; strongest words: " + ", ".join(f"{w} {v:+.3f}" for w, v in ranked)))
                else:
                    st.image(figures.overlay(example["image"], example["map"], example["signed"]), caption=caption)


def _faithfulness(summary: dict) -> None:
    table = summary["faithfulness"]
    if not table:
        return
    st.subheader("Faithfulness")
    plot(figures.faithfulness_figure(table), key="audit_faithfulness")
    rows = []
    for method, row in table.items():
        rows.append({"order": METHOD_NAMES.get(method, method), "items": row["items"],
                     "deletion (lower is better)": _area(row, "deletion"), "insertion (higher is better)": _area(row, "insertion"),
                     "map beats it (deletion / insertion)": ""})
        for name, ref in row["references"].items():
            rows.append({"order": f"  {REFERENCE_NAMES.get(name, name)}", "items": row["items"],
                         "deletion (lower is better)": _area(ref, "deletion"),
                         "insertion (higher is better)": _area(ref, "insertion"),
                         "map beats it (deletion / insertion)":
                             f"{ref['map_better_deletion']:.0%} / {ref['map_better_insertion']:.0%} of items"})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="audit_faithfulness_table")


def _area(row: dict, kind: str) -> str:
    low, high = row[f"{kind}_interval"]
    return f"{row[f'{kind}_auc']:.3f} [{low:.3f}, {high:.3f}]"


def _sanity(audit: Audit) -> None:
    if not audit.sanity:
        return
    st.subheader("Sanity check")
    rows = [{"item": c["input"], "map": METHOD_NAMES.get(c["method"], c["method"]),
             "verdict": "passed" if c["passed"] else "FAILED",
             "similarity per step": ", ".join(f"{v:+.2f}" for v in c["similarity"])} for c in audit.sanity]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="audit_sanity_table")
    first = audit.sanity[0]
    st.caption(plain(f"The map recomputed as the model's parts are re-initialised from the top; it passes when the "
                     f"rank correlation with the original falls below {first['threshold']} by step {first['rule_step']}."))


def _per_class(summary: dict) -> None:
    st.subheader("Per class")
    rows = [{"class": name, "items": r["support"], "predicted": r["predicted"], "precision": _pct(r["precision"]),
             "recall": _pct(r["recall"]), "F1": "n/a" if r["f1"] is None else f"{r['f1']:.3f}"}
            for name, r in sorted(summary["per_class"].items(), key=lambda kv: (-kv[1]["support"], kv[1]["index"]))]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="audit_per_class")

"""Run an audit: match the labels, predict every item (resuming what a results file already holds),
then measure, pick the examples to look at first, explain them and sanity-check a few.

`progress(what, done, total)` hears about the work as it goes: "items" as chunks finish, then
"examples" and "sanity" one by one. An exception raised in it (a cancelled audit) ends the work at
the next report, which comes at least before every chunk and every map; every finished line stays
in the results file.
"""

from __future__ import annotations

import datetime
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import metadata

import numpy as np

from ..records.audit import Audit
from .batches import Auditor, Loaded, load_model
from .config import CAM_METHODS, FAITHFUL_METHODS, AuditConfig, audit_id
from .dataset import Dataset
from .engine import run_local, run_ray
from .errors import DatasetError
from .labels import match_labels
from .metrics import examples, summarise
from .results import ResultsFile

LIBRARIES = ("torch", "transformers", "captum", "numpy", "scikit-image", "plotly", "streamlit", "ray")


def prepare(dataset: Dataset, config: AuditConfig, classes: Sequence[str]) -> list[dict]:
    """One row per item: its label as the model's class index, and whether it is in the faithfulness sample."""
    if config.task == "clip":
        index = _match_prompts(dataset.labels, config)
    else:
        index = match_labels(dataset.labels, classes)
    measured = set(faithfulness_sample(len(dataset.items), config.sample, config.seed)) if config.methods else set()
    return [{**item.as_row(), "label_index": index[item.label], "measure": i in measured}
            for i, item in enumerate(dataset.items)]


def faithfulness_sample(count: int, size: int, seed: int) -> list[int]:
    """The seeded sample of item positions whose maps are measured, in dataset order."""
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.permutation(count)[: min(size, count)])


def with_prompts(config: AuditConfig, dataset: Dataset) -> AuditConfig:
    """Image + text: the prompts as the model reads them (the dataset's labels when none were given)."""
    if config.task != "clip":
        return config
    from ..tasks.clip import PromptError, clean_prompts

    prompts = config.prompts or dataset.labels
    try:
        texts, _ = clean_prompts(prompts, config.template)
    except PromptError as error:
        raise DatasetError(str(error)) from None
    if len(texts) != len(prompts):
        raise DatasetError("Some prompts are the same once the template is filled in: give each class its own prompt.")
    return replace(config, prompts=tuple(prompts), prompt_texts=tuple(texts))


def _match_prompts(labels: Sequence[str], config: AuditConfig) -> dict[str, int]:
    """A label names a prompt as given, as the model reads it (template filled in), or by its number."""
    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    names = {}
    for i, (given, read) in enumerate(zip(config.prompts, config.prompt_texts)):
        names.setdefault(norm(given), i)
        names.setdefault(norm(read), i)
    matched, unmatched = {}, []
    for label in labels:
        key = norm(label)
        if key.isdigit() and int(key) < len(config.prompts):
            matched[label] = int(key)
        elif key in names:
            matched[label] = names[key]
        else:
            unmatched.append(label)
    if unmatched:
        import difflib

        hints = []
        for label in unmatched[:12]:
            close = difflib.get_close_matches(norm(label), list(names), n=2, cutoff=0.5)
            hints.append(f"{label!r} (closest prompt: {', '.join(repr(c) for c in close) or 'none is close'})")
        raise DatasetError(f"{len(unmatched)} label(s) of the dataset match none of the prompts: " + "; ".join(hints) + ".")
    return matched


def run_audit(
    dataset: Dataset,
    config: AuditConfig,
    loaded: Loaded | None = None,
    results_path=None,
    engine: str = "local",
    address: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Audit:
    started, clock = _now(), time.perf_counter()
    config = with_prompts(config, dataset)
    _check_methods(config)
    loaded = loaded or load_model(config)
    if config.maps and not getattr(loaded.model, "layers", ()):
        raise DatasetError(f"{loaded.info.name} is not split into stages, so it has no Grad-CAM maps to save.")
    model = model_facts(loaded)
    rows = prepare(dataset, config, loaded.classes)
    identity = audit_id(config, dataset.sha256, model["weights_sha256"])
    store = ResultsFile(results_path, identity)
    done = store.done()
    known = {row["input"] for row in rows}
    finished = {name: record for name, record in done.items() if name in known}
    todo = [row for row in rows if row["input"] not in finished]
    chunks = [todo[i:i + config.batch_size] for i in range(0, len(todo), config.batch_size)]
    state = ["items", len(finished), len(rows)]

    def report(what: str, done: int, total: int) -> None:
        state[:] = [what, done, total]
        if progress is not None:
            progress(what, done, total)

    def checkpoint() -> None:  # the same state again: where a cancelled audit stops
        report(*state)

    report("items", len(finished), len(rows))
    auditor = Auditor(config, dataset.source, loaded)
    stream = (run_ray(config, dataset.source, chunks, address) if engine == "ray"
              else run_local(auditor, chunks, checkpoint))
    try:
        for results in stream:
            for record in results:
                finished[record["input"]] = _without_audit(record)
                store.write(finished[record["input"]])
            report("items", len(finished), len(rows))
    finally:
        store.close()
    ordered = tuple(_without_audit(finished[row["input"]]) for row in rows)
    summary = summarise(ordered, loaded.classes, len(rows))
    picked = examples([r for r in ordered if "error" not in r])
    by_input = {item.input: item for item in dataset.items}
    explained = explain_examples(auditor, by_input, picked, report)
    checked = sanity_checks(auditor, by_input, ordered, config, report)
    facts = {"origin": dataset.origin, "sha256": dataset.sha256, "group_columns": list(dataset.group_columns)}
    return Audit(config.as_dict(), facts, model, identity, ordered, summary, explained, checked, environment(),
                 started, time.perf_counter() - clock, engine, resumed=len(done))


def _without_audit(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "audit"}


def _check_methods(config: AuditConfig) -> None:
    allowed = FAITHFUL_METHODS[config.task]
    wrong = [m for m in config.methods if m not in allowed]
    if wrong:
        raise DatasetError(f"{', '.join(wrong)} cannot be audited for {config.task}; choose from {', '.join(allowed)}.")
    if config.sample < 0 or config.sanity_items < 0:
        raise DatasetError("--sample and --sanity-items count items: give 0 or more.")
    if not 1 <= config.batch_size <= 256:
        raise DatasetError("The batch size must be between 1 and 256.")
    if config.maps and (config.task != "image" or any(m not in CAM_METHODS for m in config.maps)):
        raise DatasetError(f"Maps for every item are saved for images with {', '.join(CAM_METHODS)} "
                           "(one batched backward pass); explain single items for the others.")


def explain_examples(auditor: Auditor, by_input: dict, picked: dict, report) -> dict:
    """The first method's map (or word attributions) for each example item, for the report's galleries."""
    config = auditor.config
    if not config.methods:
        return {}
    shown, total = {}, sum(len(records) for records in picked.values())
    for kind, records in picked.items():
        shown[kind] = []
        for record in records:
            report("examples", sum(len(s) for s in shown.values()), total)
            explained = auditor.explain(by_input[record["input"]], config.methods[0], record["prediction_index"])
            shown[kind].append({**explained, "prediction": record["prediction"], "score": record["score"]})
    return shown


def sanity_checks(auditor: Auditor, by_input: dict, results: Sequence[dict], config: AuditConfig, report) -> tuple:
    """The sanity check of the first method on the first few items of the faithfulness sample."""
    if not config.methods or not config.sanity_items:
        return ()
    picked = [r for r in results if "faithfulness" in r][: config.sanity_items]
    checked = []
    for record in picked:
        report("sanity", len(checked), len(picked))
        checked.append(auditor.sanity(by_input[record["input"]], config.methods[0], record["prediction_index"]))
    return tuple(checked)


def model_facts(loaded: Loaded) -> dict:
    info = loaded.info
    return {"name": info.name, "source": info.source, "note": info.note, "weights_sha256": weights_digest(loaded.model)}


def weights_digest(model) -> str:
    """sha256 over every parameter and buffer, by name: which weights answered, checkable by anyone."""
    import hashlib

    import torch

    networks = [getattr(model, name, None) for name in ("network", "text_network")]
    unique = list({id(n): n for n in networks if isinstance(n, torch.nn.Module)}.values())
    digest = hashlib.sha256()
    for network in unique:
        for name, tensor in sorted(network.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def environment() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"python": platform.python_version(), "platform": platform.platform(), "libraries": versions}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()

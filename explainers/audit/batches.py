"""The per-batch function of an audit: one chunk of items in, one result dict per item out.

Both engines run exactly this: in process (engine.py) or inside a Ray actor that holds its own
model. Images are decoded and preprocessed one by one (a bad item fails alone, with its reason),
then predicted in one forward pass per input size (photos keep their aspect, so only same-size
inputs stack); texts go in one padded pass. Items picked for the faithfulness sample are explained
afterwards, one at a time, with the page's own code (tasks/), for the predicted class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.runtime import release_freed_memory

from ..methods.batching import batch_for
from .config import AuditConfig
from .dataset import Source

TOP_K = 5
TRIM_EVERY = 64  # items between hand-backs of freed memory to the OS (each takes a few ms)


@dataclass
class Loaded:
    """A model ready for one task: its class names and how to score a list of prepared inputs."""

    model: object
    classes: tuple[str, ...]
    info: object


def load_model(config: AuditConfig) -> Loaded:
    from models.runtime import configure_torch

    configure_torch()
    if config.task == "image":
        from models.image_models import load_image_classifier

        classifier = load_image_classifier(config.model)
        return Loaded(classifier, classifier.labels, classifier.info)
    if config.task == "text":
        from models.text_models import DEFAULT_DESCRIPTIONS, ZeroShotEncoder, load_text_model

        model = load_text_model(config.model)
        classifier = model.classifier(DEFAULT_DESCRIPTIONS) if isinstance(model, ZeroShotEncoder) else model
        return Loaded(classifier, classifier.labels, classifier.info)
    from models.image_text_models import load_image_text_model

    model = load_image_text_model(config.model)
    return Loaded(model, config.prompt_texts, model.info)


class Auditor:
    """Holds one model (loaded once, on first use) and audits chunks of items with it."""

    def __init__(self, config: AuditConfig, source: Source, loaded: Loaded | None = None):
        self.config = config
        self.source = source
        self._loaded = loaded
        self._prompt_embeddings = None
        self._since_trim = 0

    @property
    def loaded(self) -> Loaded:
        if self._loaded is None:
            self._loaded = load_model(self.config)
        return self._loaded

    def __call__(self, chunk: Sequence[dict], stop: Callable[[], None] | None = None) -> list[dict]:
        """`chunk` rows: input, label, label_index, groups, text, measure (in the faithfulness sample)."""
        prepared, results = [], [None] * len(chunk)
        for position, row in enumerate(chunk):
            try:
                prepared.append((position, *self._prepare(row)))
            except Exception as error:  # one bad item must not stop the audit
                results[position] = _failed(row, _message(error))
        scores, maps = self._score([p[2] for p in prepared])
        for (position, digest, _, raw), probabilities, item_maps in zip(prepared, scores, maps):
            results[position] = _predicted(chunk[position], digest, probabilities, self.loaded.classes)
            if item_maps:
                results[position]["maps"] = item_maps
        for (position, digest, _, raw) in prepared:
            row = chunk[position]
            if row.get("measure") and self.config.methods:
                if stop is not None:
                    stop()
                try:
                    results[position]["faithfulness"] = self._faithfulness(raw, results[position]["prediction_index"])
                except Exception as error:
                    results[position]["faithfulness_error"] = _message(error)
        self._since_trim += len(chunk)
        if self._since_trim >= TRIM_EVERY:  # glibc keeps freed activations otherwise: memory creeps over an audit
            release_freed_memory()
            self._since_trim = 0
        return results

    def _prepare(self, row: dict):
        """(sha256 of the item, model input, the raw item for explaining later)."""
        if self.config.task == "text":
            from ..tasks.text import check_text

            text = check_text(row["text"])
            return hashlib.sha256(text.encode("utf-8")).hexdigest(), text, text
        from ..inputs.image import decode_image

        data = self.source.read(row["input"])
        rgb = decode_image(data).rgb
        return hashlib.sha256(data).hexdigest(), self.loaded.model.preprocess(rgb), rgb

    def _score(self, inputs: list) -> tuple[list[np.ndarray], list[dict]]:
        """Class probabilities per input, in order, from one forward pass per same-shaped group; and per
        input the CAM-family maps asked for with `maps` (from that same pass and one backward pass)."""
        if not inputs:
            return [], []
        model = self.loaded.model
        if self.config.task == "text":
            return [row for row in model.logits_batch(inputs).softmax(-1).numpy()], [{}] * len(inputs)
        scores: list = [None] * len(inputs)
        maps: list = [{}] * len(inputs)
        by_shape: dict[tuple, list[int]] = {}
        for i, pixels in enumerate(inputs):
            by_shape.setdefault(tuple(pixels.shape), []).append(i)
        groups = []  # same-shaped inputs, at most batch_for(...) per forward call (larger is slower on CPUs)
        for shape, indices in by_shape.items():
            size = batch_for(int(np.prod(shape)))
            groups += [indices[start:start + size] for start in range(0, len(indices), size)]
        with model.lock, torch.no_grad():
            for indices in groups:
                batch = torch.cat([inputs[i] for i in indices])
                if self.config.task == "image" and self.config.maps:
                    probabilities, cams = _with_cams(model, batch, self.config.maps)
                    for i, item_maps in zip(indices, cams):
                        maps[i] = item_maps
                elif self.config.task == "image":
                    probabilities = model.logits(batch).softmax(-1)
                else:
                    embeddings = model.image_embedding(batch)
                    probabilities = (model.scale * embeddings @ self._prompts().T).softmax(-1)
                for i, row in zip(indices, probabilities.numpy()):
                    scores[i] = row
        return scores, maps

    def _prompts(self) -> torch.Tensor:
        if self._prompt_embeddings is None:
            model = self.loaded.model
            self._prompt_embeddings = model.text_embeddings(model.tokenize(list(self.config.prompt_texts)))
        return self._prompt_embeddings

    def _raw(self, item) -> object:
        if self.config.task == "text":
            return item.text
        from ..inputs.image import decode_image

        return decode_image(self.source.read(item.input)).rgb

    def _explained(self, raw, methods: Sequence[str], index: int, faithfulness: bool = False):
        """The page's own explanation of `raw` for class (or prompt) `index`: (report, its maps by method)."""
        config, model = self.config, self.loaded.model
        steps, seed = config.faithfulness_steps, config.seed
        if config.task == "image":
            from ..tasks.image import ImageSettings, explain_image

            settings = ImageSettings(faithfulness=faithfulness, faithfulness_steps=steps, seed=seed)
            report = explain_image(model, raw, methods, index, settings)
            return report, settings, {e.method: e for e in report.explanations}
        if config.task == "text":
            from ..tasks.text import TextSettings, explain_text

            settings = TextSettings(faithfulness=faithfulness, faithfulness_steps=steps, seed=seed)
            report = explain_text(model, raw, methods, index, settings)
            return report, settings, {m: report.token_map(m) for m in methods}
        from ..tasks.clip import ClipSettings, explain_image_text

        settings = ClipSettings(faithfulness=faithfulness, faithfulness_steps=steps, seed=seed)
        report = explain_image_text(model, [raw], list(config.prompt_texts), methods, index, settings)
        return report, settings, {m.method: m for m in report.maps}

    def explain(self, item, method: str, index: int) -> dict:
        """One item's map for the report's galleries: a plain record (the photo small, the map as computed)."""
        raw = self._raw(item)
        report, _, maps = self._explained(raw, [method], index)
        shown = {"input": item.input, "label": item.label, "method": method}
        if self.config.task == "text":
            from ..records.text import grouped_values, token_groups

            groups = token_groups(report, merge_words=True, hide_special=True)
            values = grouped_values(maps[method].values, groups)
            return {**shown, "words": [word for word, _ in groups], "values": [float(v) for v in values]}
        from ..inputs.image import shrink_to

        explanation = maps[method]
        return {**shown, "image": shrink_to(explanation.image, 256), "map": explanation.scores, "signed": explanation.signed}

    def sanity(self, item, method: str, index: int) -> dict:
        """The sanity check of one item's map: the contract fields of the command line, with the item."""
        raw = self._raw(item)
        report, settings, maps = self._explained(raw, [method], index)
        model = self.loaded.model
        if self.config.task == "image":
            from ..evaluation.sanity import with_sanity

            result = with_sanity(model, raw, (maps[method],), settings)[0].sanity
        elif self.config.task == "text":
            from ..evaluation.text_sanity import with_text_sanity

            result = with_text_sanity(model, report, settings).token_map(method).sanity
        else:
            from ..evaluation.clip_sanity import with_clip_sanity

            result = with_clip_sanity(model, raw, report, settings).maps[0].sanity
        return {"input": item.input, "method": method, **result.record()}

    def _faithfulness(self, raw, index: int) -> dict:
        """Deletion / insertion areas of each method's map for the predicted class, and the references'."""
        _, _, maps = self._explained(raw, self.config.methods, index, faithfulness=True)
        return {method: _areas(m.faithfulness) for method, m in maps.items() if m is not None and m.faithfulness}


def _with_cams(classifier, batch: torch.Tensor, methods: Sequence[str]) -> tuple[torch.Tensor, list[dict]]:
    """Probabilities of a batch and each item's CAM maps for its top class, at the layer's own grid.

    The stages up to the layer run without autograd and the layer's output becomes a leaf (as on the
    page), so one backward pass of the summed top logits gives every item its own gradient: the items
    of a batch do not interact in an eval-mode network."""
    from ..methods.cam import CAM_VARIANTS

    layer = classifier.default_layer
    logits, feature = classifier.forward_from(batch, layer)
    probabilities = logits.detach().softmax(-1)
    top = probabilities.argmax(-1)
    with torch.enable_grad():  # the caller's no_grad would leave the selected logits off the graph
        (gradient,) = torch.autograd.grad(logits.gather(1, top[:, None]).sum(), feature)
    A, G = feature.detach(), gradient
    per_item = []
    for i in range(len(batch)):
        per_item.append({m: {"layer": layer, "shape": list(A.shape[-2:]),
                             "values": np.round(CAM_VARIANTS[m](A[i], G[i]).numpy().astype(float), 6).tolist()}
                         for m in methods})
    return probabilities, per_item


def _areas(faithfulness) -> dict:
    return {**faithfulness.curves.aucs(),
            "references": {name: curves.aucs() for name, curves in faithfulness.references.items()}}


def _predicted(row: dict, digest: str, probabilities: np.ndarray, classes: Sequence[str]) -> dict:
    order = np.argsort(-probabilities, kind="stable")[:TOP_K]
    index = int(order[0])
    return {
        **_base(row, digest),
        "prediction": classes[index],
        "prediction_index": index,
        "score": round(float(probabilities[index]), 6),
        "label_score": round(float(probabilities[row["label_index"]]), 6),
        "top5": [{"index": int(i), "label": classes[int(i)], "score": round(float(probabilities[i]), 6)} for i in order],
        "correct": index == row["label_index"],
        "top5_correct": row["label_index"] in {int(i) for i in order},
    }


def _base(row: dict, digest: str | None) -> dict:
    base = {"input": row["input"], "label": row["label"], "label_index": row["label_index"], "groups": row["groups"]}
    if digest:
        base["sha256"] = digest
    return base


def _failed(row: dict, message: str) -> dict:
    return {**_base(row, None), "error": message}


def _message(error: Exception) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file in the dataset"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not an image file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return str(error) or type(error).__name__

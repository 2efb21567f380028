"""Inside a text classifier: the plain record of one forward pass seen from inside, and the step-by-step
arithmetic of one attention head for one token, redone in numpy from the states that entered the layer and
the layer's own projection weights (a click on a layer, a head or a token redraws without a model call)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import ModelSummary, Prediction


@dataclass(frozen=True)
class StepByStep:
    """softmax(q . k_j / sqrt(d)) for one query token against every key, then the weighted sum of values."""

    layer: int  # from 0, as the first index of the attention maps
    head: int
    token: int  # index into the record's tokens
    query: np.ndarray  # (d,)
    keys: np.ndarray  # (T, d)
    scale: float  # sqrt(d)
    scores: np.ndarray  # (T,) q . k_j / sqrt(d)
    weights: np.ndarray  # (T,) softmax of the scores: row `token` of this head's attention map
    values: np.ndarray  # (T, d)
    output: np.ndarray  # (d,) sum_j weights_j v_j, this head's share of the token's new representation


@dataclass(frozen=True)
class TokenPaths:
    """Every token's states, from the embeddings to the last layer, on the first two principal components of
    all of them together (explainers.inside.text.token_paths): computed from InsideText.states when asked."""

    coords: np.ndarray  # (layers + 1, T, 2)
    variance: tuple[float, float]  # share of the states' variance each component holds


@dataclass(frozen=True)
class InsideText:
    text: str
    model: ModelSummary
    how: str
    pooling: str  # "cls" or "mean"
    labels: tuple[str, ...]
    predictions: tuple[Prediction, ...]  # most probable first
    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    special: tuple[bool, ...]
    total_tokens: int  # what the whole text needs, special tokens included
    max_tokens: int
    cut_at: int | None  # character where truncation cut the text
    heads: int  # attention heads per layer
    states: np.ndarray  # (layers + 1, T, D): what entered each layer, then the last layer's output
    # Per layer (Wq, bq, Wk, bk, Wv, bv), read-only views of the model's weights; None when its attention's
    # layout is unknown. With `states` they give every head's queries, keys and values, and so its whole
    # map, on demand: the record keeps no attention maps (12 layers x 12 heads x 512 x 512 would be 150 MB).
    projections: tuple | None
    self_similarity: np.ndarray  # (layers + 1, T): cosine of each token's state with its final-layer state
    readout: np.ndarray | None  # (layers + 1, classes) probabilities with the classifier read from each layer
    readout_note: str  # how the readout was made, or why there is none

    @property
    def layers(self) -> int:
        return int(self.states.shape[0]) - 1

    @property
    def settles_at(self) -> int | None:
        """The first layer (0 = the embeddings) from which the readout's top label is the final one and stays."""
        if self.readout is None:
            return None
        top = self.readout.argmax(-1)
        layer = len(top) - 1
        while layer > 0 and top[layer - 1] == top[-1]:
            layer -= 1
        return int(layer)

    def default_token(self) -> int:
        """What the classifier reads: [CLS] for a fine-tuned head, else the first word piece."""
        if self.pooling == "cls":
            return 0
        return next((i for i, s in enumerate(self.special) if not s), 0)

    def check_choice(self, layer: int, head: int, token: int) -> None:
        for what, value, count in (("layer", layer, self.layers), ("head", head, self.heads),
                                   ("token", token, len(self.tokens))):
            if not 0 <= value < count:
                raise ValueError(f"{what} {value} does not exist: this model and text have {what}s 0 to {count - 1}.")

    def step_by_step(self, layer: int, head: int, token: int) -> StepByStep:
        self.check_choice(layer, head, token)
        queries, keys, values = self._projected(layer, head, slice(token, token + 1))
        query = queries[0]
        scale = float(np.sqrt(query.shape[-1]))
        scores = keys @ query / scale
        weights = _softmax(scores)
        return StepByStep(layer, head, token, query, keys, scale, scores, weights, values, weights @ values)

    def head_map(self, layer: int, head: int) -> np.ndarray:
        """(T, T) this head's attention map: every token's row computed as in `step_by_step`."""
        self.check_choice(layer, head, 0)
        queries, keys, _ = self._projected(layer, head, slice(None))
        return _softmax(queries @ keys.T / np.sqrt(queries.shape[-1]))

    def _projected(self, layer: int, head: int, asking: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The asking tokens' queries and every token's keys and values for one head, from the states that
        entered the layer and the layer's own projections."""
        if self.projections is None:
            raise ValueError(f"{self.model.name}'s attention cannot be taken apart into queries, keys and values.")
        wq, bq, wk, bk, wv, bv = self.projections[layer]
        size = wq.shape[0] // self.heads
        rows = slice(head * size, (head + 1) * size)  # this head's share of the projections
        states = self.states[layer].astype(np.float64)
        return (states[asking] @ wq[rows].T + bq[rows], states @ wk[rows].T + bk[rows],
                states @ wv[rows].T + bv[rows])


def as_json(record: InsideText, layer: int | None = None, head: int = 0, token: int | None = None,
            paths: TokenPaths | None = None) -> dict:
    """What `python -m explainers inside text --json` prints. Token indices are those of `tokens`, as in the
    `text` command's output; `step_by_step.weights` is row `token` of `attention[layer][head]` there."""
    from .as_json import _rounded

    layer = record.layers - 1 if layer is None else layer
    token = record.default_token() if token is None else token
    record.check_choice(layer, head, token)
    out = {
        "text": record.text,
        "model": record.model.as_dict(),
        "how": record.how,
        "predictions": [p.as_dict() for p in record.predictions],
        "tokens": list(record.tokens),
        "token_ids": list(record.ids),
        "special_tokens": [i for i, s in enumerate(record.special) if s],
        "total_tokens": record.total_tokens,
        "max_tokens": record.max_tokens,
        "truncated": record.cut_at is not None,
        "cut_at_character": record.cut_at,
        "layers": record.layers,
        "heads": record.heads,
        "self_similarity": _rounded(record.self_similarity),
        **({"path_variance": [round(v, 6) for v in paths.variance]} if paths is not None else {}),
        "readout": None if record.readout is None else _rounded(record.readout),
        "settles_at_layer": record.settles_at,
        "readout_note": record.readout_note,
    }
    if record.projections is None:
        out["step_by_step"] = None
        out["step_by_step_note"] = f"{record.model.name}'s attention cannot be taken apart into queries, keys and values."
        return out
    step = record.step_by_step(layer, head, token)
    out["step_by_step"] = {
        "layer": layer, "head": head, "token": token, "token_text": record.tokens[token],
        "scale": round(step.scale, 6),
        "query": _rounded(step.query), "keys": _rounded(step.keys), "values": _rounded(step.values),
        "scores": _rounded(step.scores), "weights": _rounded(step.weights), "output": _rounded(step.output),
    }
    return out


def _softmax(scores: np.ndarray) -> np.ndarray:
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True)

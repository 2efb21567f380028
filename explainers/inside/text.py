"""Inside a text classifier: tokenisation, every layer's states (with the layers' projection weights they
give every head's queries, keys and values), how similar each token's state stays to its last one, and the
classifier read from every layer, all from one forward pass; each token's path on two principal components
from those states when asked."""

from __future__ import annotations

import numpy as np
import torch

from models.text_classifier import TextClassifier

from ..records.common import ModelSummary
from ..records.inside_text import InsideText, TokenPaths
from ..tasks.text import ranked, readable_encoding


def inside_text(classifier: TextClassifier, text: str) -> InsideText:
    if not classifier.traceable:
        raise ValueError(f"{classifier.info.name} does not return its layers' states, so its inside cannot be shown; "
                         "its attention maps are on the page.")
    encoding = readable_encoding(classifier, text)
    with classifier.lock:
        trace = classifier.trace(encoding.ids)
    hidden = trace.hidden.double().numpy()

    def plain(tensor):
        return tensor.float().numpy()

    readout = None if trace.readout is None else trace.readout.softmax(-1).double().numpy()
    return InsideText(
        text=text,
        model=ModelSummary(**classifier.info.as_dict()),
        how=classifier.how,
        pooling=classifier.pooling,
        labels=classifier.labels,
        predictions=ranked(trace.logits[0].softmax(-1), classifier.labels),
        tokens=encoding.tokens,
        ids=tuple(encoding.ids[0].tolist()),
        special=encoding.special,
        total_tokens=encoding.total_tokens,
        max_tokens=classifier.max_tokens,
        cut_at=encoding.cut_at,
        heads=int(trace.attention.shape[1]),
        states=plain(trace.hidden),
        projections=classifier.projections(),
        self_similarity=self_similarity(hidden),
        readout=readout,
        readout_note=_readout_note(classifier, readout is not None),
    )


def self_similarity(hidden: np.ndarray) -> np.ndarray:
    """(layers + 1, T): cosine similarity of each token's state at every layer with its final-layer state."""
    unit = hidden / np.maximum(np.linalg.norm(hidden, axis=-1, keepdims=True), 1e-12)
    return (unit * unit[-1]).sum(-1)


def token_paths(record: InsideText) -> TokenPaths:
    """Every token's path through the layers on two principal components of all the states: no model call,
    but a PCA that costs a good part of a forward pass on a long text, so the page asks for it on demand."""
    return TokenPaths(*principal_paths(record.states.astype(np.float64)))


def principal_paths(hidden: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Every state (layers + 1, T, D) on the first two principal components of all of them together, and
    the share of variance each component holds (a component is 0 where there is no variance left)."""
    states = torch.from_numpy(hidden.reshape(-1, hidden.shape[-1]))
    centred = states - states.mean(0)
    # The eigenvectors of the smaller Gram matrix give the same components as an SVD at a fraction of its
    # cost; torch, not numpy: numpy's BLAS threads keep spinning afterwards and slow the next forward pass.
    wide = centred.shape[0] <= centred.shape[1]
    gram = centred @ centred.T if wide else centred.T @ centred
    variances, vectors = torch.linalg.eigh(gram)  # ascending
    variances, vectors = variances.flip(0).clamp_min(0), vectors.flip(1)
    kept = min(2, len(variances))
    top = vectors[:, :kept]
    projected = top * variances[:kept].sqrt() if wide else centred @ top
    coords = np.zeros((len(states), 2))
    coords[:, :kept] = projected.numpy()
    total = float(variances.sum())
    shares = [float(variances[i] / total) if total > 0 and i < kept else 0.0 for i in range(2)]
    shares = [share if share > 1e-12 else 0.0 for share in shares]  # rounding noise where nothing varies
    return coords.reshape(*hidden.shape[:2], 2), (shares[0], shares[1])


def _readout_note(classifier: TextClassifier, available: bool) -> str:
    if not available:
        return (f"{classifier.info.name}'s head cannot be read from the inner layers (it does not take a layer's "
                "states the way it takes the last one's), so where the prediction settles is not shown.")
    if classifier.pooling == "cls":
        return ("The trained head (pooler and classifier) read from each layer's [CLS] state as if it were the last "
                "layer's. Inner layers were never trained for this head: read it as where the answer becomes "
                "legible, not as what the layer 'thinks'.")
    return ("Each layer's token states averaged and compared with the label descriptions' final-layer embeddings, as "
            "the last layer's are. Inner layers were never trained for this comparison: read it as where the answer "
            "becomes legible.")

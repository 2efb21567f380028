"""Inside an image-text model: photos and prompts in the shared embedding space, the cosine similarities,
and how the scale and the softmax turn them into the probabilities the page shows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import ModelSummary


@dataclass(frozen=True)
class InsideClip:
    model: ModelSummary
    how: str
    images: tuple[str, ...]  # names
    prompts: tuple[str, ...]
    notes: tuple[str, ...]  # what happened to the prompts (duplicates, cuts)
    image_embeddings: np.ndarray  # (N, D), unit length
    prompt_embeddings: np.ndarray  # (P, D), unit length
    scale: float  # the temperature's inverse: logits = scale x cosine
    points: np.ndarray  # (N + P, 2): images then prompts on the first two principal components
    point_variance: tuple[float, float]  # share of the embeddings' variance each component holds
    projection: str  # which projection, in words
    embedding_is: str  # what the image embedding is, for this model
    mixtures: tuple[tuple[tuple[str, float], ...], ...] = ()  # ConSE: per image, its classes and their weights

    @property
    def similarity(self) -> np.ndarray:
        """(N, P) cosine similarities: the embeddings are unit length, so dot products."""
        return self.image_embeddings @ self.prompt_embeddings.T

    @property
    def logits(self) -> np.ndarray:
        return self.scale * self.similarity

    @property
    def probabilities(self) -> np.ndarray:
        """(N, P) softmax over the prompts of each image's logits: the page's probabilities."""
        logits = self.logits - self.logits.max(-1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(-1, keepdims=True)


def as_json(record: InsideClip) -> dict:
    from .as_json import _rounded

    return {
        "model": record.model.as_dict(),
        "how": record.how,
        "images": list(record.images),
        "prompts": list(record.prompts),
        "notes": list(record.notes),
        "embedding_size": int(record.image_embeddings.shape[1]),
        "scale": round(record.scale, 6),
        "similarity": _rounded(record.similarity),
        "logits": _rounded(record.logits),
        "probabilities": _rounded(record.probabilities),
        "projection": record.projection,
        "points": {"images": _rounded(record.points[: len(record.images)]),
                   "prompts": _rounded(record.points[len(record.images):])},
        "point_variance": [round(v, 6) for v in record.point_variance],
        "embedding_is": record.embedding_is,
        "mixtures": [[{"class": label, "weight": round(weight, 6)} for label, weight in mix] for mix in record.mixtures],
    }

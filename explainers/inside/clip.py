"""Inside an image-text model: one forward pass of each tower, the embeddings kept (unit length), and a
2-D view of them (principal components of images and prompts together)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.image_text import ConseModel, ImageTextModel

from ..records.common import ModelSummary
from ..records.inside_clip import InsideClip
from ..tasks.clip import clean_prompts, embed_prompts
from .text import principal_paths

PROJECTION = ("the first two principal components of the unit-length embeddings of every photo and prompt "
              "together (PCA); distances in 2-D only approximate the cosine similarities, which the matrix gives exactly")


def inside_clip(model: ImageTextModel, images: Sequence[np.ndarray], prompts: Sequence[str],
                names: Sequence[str] = (), template: str = "") -> InsideClip:
    if not images:
        raise ValueError("no image to place in the embedding space")
    prompts, notes = clean_prompts(prompts, template)
    mixtures = ()
    with model.lock:
        _, text = embed_prompts(model, prompts, notes)
        pixels = [model.preprocess(rgb) for rgb in images]
        with torch.no_grad():
            if isinstance(model, ConseModel):
                logits = torch.cat([model.classifier.logits(p) for p in pixels])
                indices, weights = model.mixture(logits)
                embedded = torch.nn.functional.normalize((weights[..., None] * model.class_embeddings[indices]).sum(1), dim=-1)
                labels = model.classifier.labels
                mixtures = tuple(tuple((labels[int(i)], float(w)) for i, w in zip(row_i, row_w))
                                 for row_i, row_w in zip(indices, weights))
            else:
                embedded = torch.cat([model.image_embedding(p) for p in pixels])
    image_embeddings, prompt_embeddings = embedded.double().numpy(), text.double().numpy()
    points, variance = principal_paths(np.concatenate([image_embeddings, prompt_embeddings])[None])
    names = tuple(names) or tuple(f"photo {i + 1}" for i in range(len(images)))
    return InsideClip(ModelSummary(**model.info.as_dict()), model.how, names, tuple(prompts), tuple(notes),
                      image_embeddings, prompt_embeddings, model.scale, points[0], variance, PROJECTION,
                      _embedding_is(model), mixtures)


def _embedding_is(model: ImageTextModel) -> str:
    if isinstance(model, ConseModel):
        return (f"Not a learned image embedding: ConSE has no image tower trained with text. Its 'image embedding' is "
                f"the mixture of the text encoder's embeddings of the ImageNet classifier's {model.TOP_CLASSES} most "
                "probable class names, weighted by their probabilities (listed per photo), so a photo can only land "
                "where some mix of class names lies.")
    return ("The image tower's output projected into the space the text tower shares, trained contrastively so that "
            "matching photos and captions point the same way.")

"""Plain records of an image-text explanation: no torch here. Figures, exports and the page read them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .text import TokenAttribution
from .common import ImageExplanation, ModelSummary, Prediction


@dataclass(frozen=True)
class PromptRelevance:
    prompt: int
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    attribution: TokenAttribution


@dataclass(frozen=True)
class ClipReport:
    model: ModelSummary
    how: str
    prompts: tuple[str, ...]
    notes: tuple[str, ...]  # what was done to the prompts (duplicates dropped, truncation)
    probabilities: np.ndarray  # (images, prompts), rows sum to 1
    similarity: np.ndarray  # (images, prompts), cosine
    predictions: tuple[Prediction, ...]  # the explained image, one per prompt, in prompt order
    target: Prediction
    maps: tuple[ImageExplanation, ...] = ()  # image methods x explained prompts
    words: tuple[PromptRelevance, ...] = ()  # word relevance per explained prompt

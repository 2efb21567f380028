"""Plain records of the model-randomisation sanity check (Adebayo et al. 2018): no torch here.

explainers/evaluation/sanity.py builds them; figures, exports and the command line read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # common.py imports this module
    from .common import Prediction

EDGES = "edges"  # the model-independent reference's name in results: images
WORD_LENGTHS = "word lengths"  # and text
REFERENCE_WORDS = {EDGES: "edge detector", WORD_LENGTHS: "word lengths"}


@dataclass(frozen=True)
class SanityCurve:
    """One map recomputed on every randomised copy and compared with the shared model's map."""

    name: str  # the method, or EDGES
    signed: bool
    steps: tuple[str, ...]  # what was random at each step, cumulatively: "head", "head + stage 7", ...
    original: np.ndarray  # (h, w) float32, the shared model's map
    maps: tuple[np.ndarray, ...]  # after each step, like `original`
    similarity: tuple[float, ...]  # Spearman rank correlation with the original, per step
    ssim: tuple[float, ...]
    passed: bool

    def as_dict(self) -> dict:
        return {"steps": list(self.steps), "similarity": list(self.similarity), "ssim": list(self.ssim),
                "passed": self.passed}


@dataclass(frozen=True)
class SanityResult:
    """The check of one method on one photo and class; plain values only, so it pickles."""

    method: SanityCurve
    reference: SanityCurve  # edges (images) or word lengths (text): model-independent, similarity stays at 1
    model: str
    target: Prediction
    note: str  # what was randomised, and how the model's parts were found
    threshold: float
    rule_step: int  # the step (1-based) the pass rule reads
    seed: int  # of the re-initialised weights
    step_bytes: tuple[int, ...]  # memory of each step's copy: bytes of tensors the shared model does not hold

    @property
    def subject(self) -> str:
        """What the map is of: "photo" or "text"."""
        return "text" if self.reference.name == WORD_LENGTHS else "photo"

    @property
    def steps(self) -> tuple[str, ...]:
        return self.method.steps

    @property
    def passed(self) -> bool:
        return self.method.passed

    def as_dict(self) -> dict:
        """{"steps": [...], "similarity": [...], "ssim": [...], "passed": bool} for the method."""
        return self.method.as_dict()

    def record(self) -> dict:
        """The JSON object of the command line and the page's downloads: the contract fields, then context."""
        return {**self.as_dict(), "threshold": self.threshold, "rule_step": self.rule_step, "seed": self.seed,
                "note": self.note, "reference": {"name": self.reference.name, **self.reference.as_dict()}}

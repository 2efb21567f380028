"""Plain records of a faithfulness measurement (deletion and insertion curves): no torch here.

Figures, exports and the command line read these; explainers/evaluation/faithfulness.py builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REFERENCE_NAMES = {"random": "Random order (seeded)", "centre": "Centre first"}


@dataclass(frozen=True)
class Curves:
    """The explained probability as the most-attributed regions are removed (deletion) from the photo
    or revealed (insertion) into the empty image, at `fractions` of the regions."""

    fractions: np.ndarray  # (steps + 1,) from 0 to 1
    deletion: np.ndarray  # starts at the photo's probability
    insertion: np.ndarray  # starts at the empty image's probability
    deletion_auc: float  # lower is better: the probability falls fast
    insertion_auc: float  # higher is better: the probability comes back fast

    def __post_init__(self):
        if not (self.fractions.shape == self.deletion.shape == self.insertion.shape):
            raise ValueError("curves must share their fractions")
        if not (np.isfinite(self.deletion).all() and np.isfinite(self.insertion).all()):
            raise ValueError("faithfulness curves must be finite")

    def aucs(self) -> dict:
        return {"deletion_auc": self.deletion_auc, "insertion_auc": self.insertion_auc}

    def at(self, fraction: float) -> tuple[float, float]:
        """(deletion, insertion) probability once `fraction` of the regions is removed or revealed."""
        return (
            float(np.interp(fraction, self.fractions, self.deletion)),
            float(np.interp(fraction, self.fractions, self.insertion)),
        )


@dataclass(frozen=True)
class Faithfulness:
    curves: Curves
    references: dict[str, Curves]  # "random", "centre": the same photo and target, computed once
    steps: int
    replacement: str  # what removed regions become: blurred, black or mean
    unit: str  # what is removed at a time, e.g. "8 x 8 pixel cells"
    seed: int
    notes: tuple[str, ...] = field(default=())  # e.g. the map is constant

    def as_dict(self) -> dict:
        return {
            **self.curves.aucs(),
            "steps": self.steps,
            "replacement": self.replacement,
            "references": {name: curves.aucs() for name, curves in self.references.items()},
            "unit": self.unit,
            "seed": self.seed,
            "fractions": [round(float(f), 6) for f in self.curves.fractions],
            "deletion": [round(float(p), 6) for p in self.curves.deletion],
            "insertion": [round(float(p), 6) for p in self.curves.insertion],
            "notes": list(self.notes),
        }

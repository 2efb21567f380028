"""Deletion and insertion curves (Petsiuk et al. 2018, RISE): does the map show what the model uses?

Regions are ranked by the map, then removed from the photo (deletion) or revealed into an empty image
(insertion) in `steps` equal steps; every step's image goes through the model, in batches. A faithful
map makes the explained probability fall fast under deletion (a low area under the curve) and rise
fast under insertion (a high area). The areas mean something only next to references on the same
photo and target, computed once for all maps: a random order, and the centre first.

Regions are square cells, not single pixels: Integrated Gradients and SmoothGrad maps are pixel-sparse,
and deleting scattered pixels under a blur hardly changes a photo, so pixel-level curves would mostly
measure the blur. A cell's score is the mean of the map over it, signed (evidence against the class
comes last). Scores within a millionth of the map's largest magnitude count as zero, and ties are
broken in a seeded random order, never in raster order (which would delete the photo top down).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np
import torch

from ..methods.batching import batch_for
from ..records.faithfulness import Curves, Faithfulness

CELL = 8  # pixels per side of a region, at the model's input resolution
STEPS = 20  # default: see benchmarks/faithfulness_speed.py for how the areas settle with more steps
MIN_STEPS, MAX_STEPS = 4, 200
REPLACEMENTS = ("blurred", "black", "mean")
NEAR_ZERO = 1e-6

# (batch, 3, h, w) normalised pixels -> (batch,) probability of the explained output
Probability = Callable[[torch.Tensor], torch.Tensor]


def check_steps(steps: int) -> int:
    if not isinstance(steps, int) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"Faithfulness steps must be a whole number from {MIN_STEPS} to {MAX_STEPS} (got {steps}).")
    return steps


def check_replacement(replacement: str) -> str:
    if replacement not in REPLACEMENTS:
        raise ValueError(f"Removed pixels can become {', '.join(REPLACEMENTS)}; {replacement!r} is not one of them.")
    return replacement


def measure_faithfulness(
    probability: Probability,
    pixels: torch.Tensor,
    empty: torch.Tensor,
    maps: Mapping[str, np.ndarray],
    steps: int = STEPS,
    replacement: str = "blurred",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    references: Mapping[str, Curves] | None = None,
) -> dict[str, Faithfulness]:
    """Curves for each named map, with the random and centre references computed once.

    `pixels` (1, 3, h, w) is the photo as the model reads it and `empty` the same shape: what removed
    regions become. Maps may have any size with the photo's aspect; they are resized to (h, w).
    `progress(done, total)` is called after each pair of curves (the references first).
    `references`: the curves of an earlier call on the same photo, probability and settings, reused.
    """
    check_steps(steps)
    check_replacement(replacement)
    height, width = pixels.shape[-2:]
    rows, cols = -(-height // CELL), -(-width // CELL)
    unit = f"{CELL} x {CELL} pixel cells ({rows} x {cols})"
    total, done = (0 if references else 2) + len(maps), 0

    def curves(values: np.ndarray) -> Curves:
        nonlocal done
        measured = _curves(probability, pixels, empty, values, steps, seed)
        done += 1
        if progress is not None:
            progress(done, total)
        return measured

    if references is None:
        references = {name: curves(values) for name, values in reference_cells(rows, cols, seed).items()}
    results = {}
    for name, scores in maps.items():
        values = cell_scores(scores, (height, width))
        notes = ()
        if np.ptp(values) <= NEAR_ZERO * max(np.abs(values).max(), 1e-30):
            notes = ("The map is constant: no region ranks above another, so its order is the seeded random one "
                     "and its curves say nothing about the method.",)
        results[name] = Faithfulness(curves(values), references, steps, replacement, unit, seed, notes)
    return results


def cell_scores(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The map resized to the model's input (h, w), then averaged over CELL x CELL cells (edge cells smaller)."""
    height, width = size
    values = np.asarray(scores, dtype=np.float32)
    if values.shape != (height, width):
        values = cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
    starts_y, starts_x = np.arange(0, height, CELL), np.arange(0, width, CELL)
    sums = np.add.reduceat(np.add.reduceat(values.astype(np.float64), starts_y, axis=0), starts_x, axis=1)
    counts = np.outer(np.diff(np.append(starts_y, height)), np.diff(np.append(starts_x, width)))
    return sums / counts


def reference_cells(rows: int, cols: int, seed: int) -> dict[str, np.ndarray]:
    """A seeded random map, and a centre prior (closer to the centre ranks higher, aspect-normalised)."""
    random = np.random.default_rng([seed, 1]).random((rows, cols))
    y = (np.arange(rows) + 0.5) / rows - 0.5
    x = (np.arange(cols) + 0.5) / cols - 0.5
    centre = -np.hypot(y[:, None], x[None, :])
    return {"random": random, "centre": centre}


def removal_order(values: np.ndarray, seed: int) -> np.ndarray:
    """Flat cell indices, most attributed first; near-zero scores tie, ties in a seeded random order."""
    flat = values.ravel().astype(np.float64)
    span = np.abs(flat).max()
    flat = np.where(np.abs(flat) <= NEAR_ZERO * span, 0.0, flat) if span > 0 else np.zeros_like(flat)
    tie_break = np.random.default_rng([seed, 0]).permutation(flat.size)
    return np.lexsort((tie_break, -flat))


def _curves(probability: Probability, pixels, empty, values: np.ndarray, steps: int, seed: int) -> Curves:
    rows, cols = values.shape
    height, width = pixels.shape[-2:]
    removed = _removed(values.ravel(), steps, seed)
    cells = removed.reshape(-1, rows, cols)  # (steps + 1, rows, cols): removed or revealed
    masks = torch.from_numpy(cells.repeat(CELL, 1).repeat(CELL, 2)[:, None, :height, :width])
    return _measured(probability, pixels, empty, masks, removed.mean(1))


def _removed(values: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """(steps + 1, n) booleans: which of the n units are removed (or revealed) at each step, best first."""
    rank = np.empty(values.size, dtype=np.int64)
    rank[removal_order(values, seed)] = np.arange(values.size)
    counts = np.rint(np.linspace(0, values.size, steps + 1)).astype(np.int64)
    return rank[None, :] < counts[:, None]


def _measured(probability: Probability, inputs, empty, masks: torch.Tensor, fractions: np.ndarray) -> Curves:
    """Both curves: `masks` (steps + 1, ...) broadcast against `inputs` (1, ...), True where `empty` shows;
    `fractions` says how much is removed at each step."""
    per_call = max(1, batch_for(inputs[0].numel()) // 2)  # steps per forward call: two inputs each
    deletion, insertion = [], []
    with torch.no_grad():
        for chunk in masks.split(per_call):
            deleted = torch.where(chunk, empty, inputs)
            revealed = torch.where(chunk, inputs, empty)
            out = probability(torch.cat([deleted, revealed])).float()
            deletion.append(out[: len(chunk)])
            insertion.append(out[len(chunk) :])
    deletion, insertion = torch.cat(deletion).numpy(), torch.cat(insertion).numpy()
    return Curves(
        fractions, deletion, insertion,
        float(np.trapezoid(deletion, fractions)), float(np.trapezoid(insertion, fractions)),
    )


# --- Text: whole words, removed or revealed as the [PAD] token the Integrated Gradients baseline uses ----------


def measure_word_faithfulness(
    probability: Probability,
    embeddings: torch.Tensor,
    empty: torch.Tensor,
    words: Sequence[Sequence[int]],
    maps: Mapping[str, np.ndarray],
    steps: int = STEPS,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Faithfulness]:
    """Word deletion and insertion for each named token map, against a seeded random order of words.

    `embeddings` and `empty` are (1, T, D); `words` lists each word's token indices (special tokens are in
    none and never change). A word's score is the sum over its pieces, so a word-level method (its value
    on the first piece) and a token-level one rank words alike. A text has fewer words than a photo has
    cells: the steps are capped at the number of words, so every step removes at least one whole word.
    (There is no centre for a sentence; reading order is no reference either, so random is the only one.)
    """
    check_steps(steps)
    if not len(words):
        raise ValueError("The text has no words to remove (only special tokens).")
    count, length = len(words), embeddings.shape[1]
    steps = min(steps, count)
    owner = np.zeros((count, length), dtype=bool)
    for index, pieces in enumerate(words):
        owner[index, list(pieces)] = True
    unit = f"words ({count})"
    total, done = 1 + len(maps), 0

    def curves(word_values: np.ndarray) -> Curves:
        nonlocal done
        removed = _removed(word_values, steps, seed)  # (steps + 1, words)
        masks = torch.from_numpy(removed @ owner)[:, :, None]  # (steps + 1, T, 1): the removed words' pieces
        measured = _measured(probability, embeddings, empty, masks, removed.mean(1))  # fractions of words
        done += 1
        if progress is not None:
            progress(done, total)
        return measured

    references = {"random": curves(np.random.default_rng([seed, 1]).random(count))}
    results = {}
    for name, values in maps.items():
        word_values = np.array([np.asarray(values, dtype=np.float64)[list(p)].sum() for p in words])
        notes = ()
        if np.ptp(word_values) <= NEAR_ZERO * max(np.abs(word_values).max(), 1e-30):
            notes = ("The map is constant: no word ranks above another, so its order is the seeded random one "
                     "and its curves say nothing about the method.",)
        results[name] = Faithfulness(curves(word_values), references, steps, "pad", unit, seed, notes)
    return results

"""An audit's numbers from its per-item results (plain dicts, as written to results.jsonl).

Intervals are 95%: Wilson score intervals for accuracies (a proportion; sound for small groups and
for accuracies near 0 or 1), and seeded percentile bootstraps for a group's gap to the overall
accuracy and for mean faithfulness areas (no closed form; the seed makes them reproducible).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
MIN_GROUP = 5  # a group this small, or whose accuracy interval is wider than
MAX_INTERVAL_WIDTH = 0.5  # this, is flagged: too small to say anything about it
CALIBRATION_BINS = 10
MAX_CONFUSION_EXTRA = 20  # predicted classes that no item carries as its label, beyond which they merge
OTHER = "(other classes)"
STATISTICS = {  # how the numbers above were made, for the report to state
    "accuracy_interval": "Wilson score, 95%",
    "gap_and_mean_interval": "percentile bootstrap, 95%",
    "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
    "bootstrap_seed": BOOTSTRAP_SEED,
    "small_group_items": MIN_GROUP,
    "small_group_interval_width": MAX_INTERVAL_WIDTH,
    "calibration_bins": CALIBRATION_BINS,
}


def wilson(successes: int, n: int) -> list[float] | None:
    """Wilson score interval for a proportion (95%); None for no trials."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def summarise(results: Sequence[dict], classes: Sequence[str], items: int, top_k: int = 5) -> dict:
    """Everything the report and `--json` show, from the per-item results of one audit."""
    evaluated = [r for r in results if "error" not in r]
    correct = np.array([r["correct"] for r in evaluated], dtype=bool)
    n = len(evaluated)
    summary = {
        "items": items,
        "evaluated": n,
        "skipped": len(results) - n,
        "accuracy": float(correct.mean()) if n else None,
        "accuracy_interval": wilson(int(correct.sum()), n),
        "top5_accuracy": None,
        "top5_accuracy_interval": None,
    }
    if len(classes) > top_k and n:
        top5 = sum(r["top5_correct"] for r in evaluated)
        summary["top5_accuracy"] = top5 / n
        summary["top5_accuracy_interval"] = wilson(top5, n)
    summary["per_class"] = per_class(evaluated, classes)
    summary["confusion"] = confusion(evaluated, classes)
    summary["per_group"] = per_group(evaluated)
    summary.update(calibration(evaluated))
    summary["faithfulness"] = faithfulness(evaluated)
    summary["skipped_items"] = [{"input": r["input"], "error": r["error"]} for r in results if "error" in r]
    summary["statistics"] = STATISTICS
    return summary


def per_class(evaluated: Sequence[dict], classes: Sequence[str]) -> dict:
    """Precision, recall and F1 per class that is some item's label or some item's prediction."""
    truth = Counter(r["label_index"] for r in evaluated)
    predicted = Counter(r["prediction_index"] for r in evaluated)
    hits = Counter(r["label_index"] for r in evaluated if r["correct"])
    table = {}
    for index in sorted(set(truth) | set(predicted)):
        precision = hits[index] / predicted[index] if predicted[index] else None
        recall = hits[index] / truth[index] if truth[index] else None
        f1 = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        table[classes[index]] = {"index": index, "support": truth[index], "predicted": predicted[index],
                                 "precision": precision, "recall": recall, "f1": f1}
    return table


def confusion(evaluated: Sequence[dict], classes: Sequence[str]) -> dict:
    """Counts with true classes as rows and predicted classes as columns; each cell lists its items.

    Columns are the labels' classes, then predicted-only classes, the rarest of those merged into one
    column when there are many (an ImageNet model can answer with any of 1000)."""
    rows = sorted({r["label_index"] for r in evaluated})
    extra = Counter(r["prediction_index"] for r in evaluated if r["prediction_index"] not in rows)
    kept = [i for i, _ in sorted(extra.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CONFUSION_EXTRA]]
    columns = rows + sorted(kept)
    merged = len(extra) > len(kept)
    column_of = {index: position for position, index in enumerate(columns)}
    width = len(columns) + merged
    matrix = [[0] * width for _ in rows]
    cells: dict[str, list[str]] = {}
    for r in evaluated:
        row = rows.index(r["label_index"])
        column = column_of.get(r["prediction_index"], len(columns))
        matrix[row][column] += 1
        cells.setdefault(f"{row},{column}", []).append(r["input"])
    return {"rows": [classes[i] for i in rows], "columns": [classes[i] for i in columns] + ([OTHER] if merged else []),
            "matrix": matrix, "items": cells}


def per_group(evaluated: Sequence[dict]) -> dict:
    """For every group column: each value's size, accuracy (Wilson) and gap to the overall (bootstrap)."""
    if not evaluated:
        return {}
    correct = np.array([r["correct"] for r in evaluated], dtype=float)
    columns = list(dict.fromkeys(c for r in evaluated for c in r.get("groups", {})))
    table = {}
    for column in columns:
        values = [r.get("groups", {}).get(column, "") for r in evaluated]
        table[column] = {}
        for value in sorted(set(values)):
            member = np.array([v == value for v in values])
            size = int(member.sum())
            accuracy = float(correct[member].mean())
            low, high = _bootstrap_gap(correct, member)
            interval = wilson(int(correct[member].sum()), size)
            too_small = size < MIN_GROUP or interval[1] - interval[0] > MAX_INTERVAL_WIDTH
            table[column][value] = {
                "size": size,
                "accuracy": accuracy,
                "accuracy_interval": interval,
                "gap": accuracy - float(correct.mean()),
                "gap_interval": [low, high],
                "too_small": too_small,
                "gap_clear": not too_small and (low > 0 or high < 0),
            }
    return table


def _bootstrap_gap(correct: np.ndarray, member: np.ndarray) -> tuple[float, float]:
    """95% percentile interval of (group accuracy - overall accuracy), items resampled with replacement."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n, gaps = len(correct), []
    chunk = max(1, min(BOOTSTRAP_RESAMPLES, 5_000_000 // n))  # bounds memory on big datasets
    for start in range(0, BOOTSTRAP_RESAMPLES, chunk):
        picks = rng.integers(0, n, size=(min(chunk, BOOTSTRAP_RESAMPLES - start), n))
        hit, inside = correct[picks], member[picks]
        counts = inside.sum(1)
        group = np.divide((hit * inside).sum(1), counts, out=np.full(len(picks), np.nan), where=counts > 0)
        gaps.append(group - hit.mean(1))
    gaps = np.concatenate(gaps)
    gaps = gaps[np.isfinite(gaps)]
    return float(np.percentile(gaps, 2.5)), float(np.percentile(gaps, 97.5))


def calibration(evaluated: Sequence[dict], bins: int = CALIBRATION_BINS) -> dict:
    """Reliability diagram (equal-width confidence bins) and the expected calibration error."""
    confidence = np.array([r["score"] for r in evaluated], dtype=float)
    correct = np.array([r["correct"] for r in evaluated], dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        entry = {"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
                 "confidence": float(confidence[inside].mean()) if count else None,
                 "accuracy": float(correct[inside].mean()) if count else None}
        if count:
            ece += count / len(evaluated) * abs(entry["accuracy"] - entry["confidence"])
        table.append(entry)
    return {"ece": ece if len(evaluated) else None, "calibration": table}


def faithfulness(evaluated: Sequence[dict]) -> dict:
    """Mean deletion / insertion areas per method over the measured items, with bootstrap intervals,
    beside the same means for each reference order on the same items."""
    measured: dict[str, list[dict]] = {}
    for r in evaluated:
        for method, areas in (r.get("faithfulness") or {}).items():
            measured.setdefault(method, []).append(areas)
    table = {}
    for method, rows in measured.items():
        entry = {"items": len(rows)}
        entry.update(_mean_areas(rows))
        names = list(dict.fromkeys(name for row in rows for name in row["references"]))
        entry["references"] = {name: _mean_areas([row["references"][name] for row in rows]) for name in names}
        for name in names:
            entry["references"][name]["map_better_deletion"] = float(np.mean(
                [row["deletion_auc"] < row["references"][name]["deletion_auc"] for row in rows]))
            entry["references"][name]["map_better_insertion"] = float(np.mean(
                [row["insertion_auc"] > row["references"][name]["insertion_auc"] for row in rows]))
        table[method] = entry
    return table


def _mean_areas(rows: Sequence[dict]) -> dict:
    result = {}
    for key in ("deletion_auc", "insertion_auc"):
        values = np.array([row[key] for row in rows], dtype=float)
        result[key] = float(values.mean())
        result[key.replace("_auc", "_interval")] = _bootstrap_mean(values)
    return result


def _bootstrap_mean(values: np.ndarray) -> list[float]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))].mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def examples(evaluated: Sequence[dict], count: int = 6) -> dict:
    """The most confident errors and the least confident correct answers: where to look first."""
    errors = sorted((r for r in evaluated if not r["correct"]), key=lambda r: (-r["score"], r["input"]))
    unsure = sorted((r for r in evaluated if r["correct"]), key=lambda r: (r["score"], r["input"]))
    return {"confident_errors": errors[:count], "unsure_correct": unsure[:count]}

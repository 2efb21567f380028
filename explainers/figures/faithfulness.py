"""Faithfulness figures and words: every map's deletion and insertion curves beside the references,
and a plain verdict per map, for photos (regions) and texts (words) alike. Maps come as (name,
Faithfulness) pairs, all measured on one input and target. Pure functions of records: no torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..records.common import ImageExplanation
from ..records.faithfulness import REFERENCE_NAMES, Faithfulness
from .image import escape, method_title

MARGIN = 0.01  # area differences below this are "about the same" (the random reference moves ~0.01 between seeds)
COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
REFERENCE_STYLE = {"random": dict(color="#7f7f7f", dash="dash"), "centre": dict(color="#7f7f7f", dash="dot")}
REPLACEMENT_WORDS = {"blurred": "the photo blurred", "black": "black", "mean": "the photo's mean colour",
                     "pad": "the [PAD] token (the Integrated Gradients baseline)"}
Named = Sequence[tuple[str, Faithfulness]]


def measured(explanations: Sequence[ImageExplanation]) -> list[ImageExplanation]:
    return [e for e in explanations if e.faithfulness is not None]


def named_maps(explanations: Sequence[ImageExplanation]) -> list[tuple[str, Faithfulness]]:
    """An image report's measured maps as (title, Faithfulness) pairs."""
    return [(method_title(e), e.faithfulness) for e in measured(explanations)]


def _text(faithfulness: Faithfulness) -> bool:
    return faithfulness.replacement == "pad"


def _subject(faithfulness: Faithfulness) -> str:
    return "text" if _text(faithfulness) else "photo"


def _parts(faithfulness: Faithfulness) -> str:
    return "words" if _text(faithfulness) else "regions"


def faithfulness_figure(named: Named, target: str, title: str = "") -> go.Figure:
    """Deletion and insertion side by side: one line per map, the references dashed and dotted in grey."""
    figure = make_subplots(
        rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
        subplot_titles=("Deletion: most attributed removed first (lower area is better)",
                        "Insertion: most attributed revealed first (higher area is better)"),
    )
    first = named[0][1]
    parts = _parts(first)
    lines = [(name, f.curves, dict(color=COLOURS[i % len(COLOURS)], width=3)) for i, (name, f) in enumerate(named)]
    lines += [(REFERENCE_NAMES[name], curves, dict(REFERENCE_STYLE[name], width=2))
              for name, curves in first.references.items()]
    for name, curves, style in lines:
        for column, values, auc in ((1, curves.deletion, curves.deletion_auc), (2, curves.insertion, curves.insertion_auc)):
            figure.add_trace(
                go.Scatter(
                    x=curves.fractions * 100, y=values, mode="lines", name=escape(name), legendgroup=name,
                    showlegend=column == 1, line=style,
                    hovertemplate=f"{escape(name)}<br>%{{x:.0f}}% of {parts}<br>probability %{{y:.1%}}"
                                  f"<br>area {auc:.3f}<extra></extra>",
                ),
                row=1, col=column,
            )
    figure.update_xaxes(title=f"% of the {_subject(first)}'s {parts} removed / revealed", range=[0, 100], ticksuffix="%")
    figure.update_yaxes(title="probability of the explained class", tickformat=".0%", rangemode="tozero", col=1)
    target = escape(target.split(",")[0])
    removed = "words" if _text(first) else "pixels"
    figure.update_layout(
        title=escape(title) if title else f"How fast does “{target}” fall and come back? "
                                          f"<sup>removed {removed} become {escape(REPLACEMENT_WORDS[first.replacement])}</sup>",
        height=460, margin=dict(l=10, r=10, t=90, b=40), legend=dict(orientation="h", y=-0.2),
    )
    return figure


def judgement(faithfulness: Faithfulness) -> str:
    """A few words: does the map beat a random order on both curves, one, or neither?"""
    if faithfulness.notes:
        return "constant map: no ranking"
    curves, random = faithfulness.curves, faithfulness.references["random"]
    deletes = curves.deletion_auc < random.deletion_auc - MARGIN
    inserts = curves.insertion_auc > random.insertion_auc + MARGIN
    return {(True, True): "faithful", (True, False): "partly: deletion only",
            (False, True): "partly: insertion only", (False, False): "not faithful here"}[(deletes, inserts)]


def verdict(name: str, faithfulness: Faithfulness) -> str:
    """Plain sentences with numbers a teacher can say: how much must go before the probability halves?"""
    if faithfulness.notes:
        return faithfulness.notes[0]
    curves, random = faithfulness.curves, faithfulness.references["random"]
    subject, parts = _subject(faithfulness), _parts(faithfulness)
    start, full = float(curves.deletion[0]), float(curves.insertion[-1])
    removed, random_removed = (crossing(c.fractions, c.deletion, start / 2, falling=True) for c in (curves, random))
    revealed, random_revealed = (crossing(c.fractions, c.insertion, full / 2, falling=False) for c in (curves, random))
    opening = {"faithful": f"Faithful on this {subject}", "partly: deletion only": "Partly faithful (deletion only)",
               "partly: insertion only": "Partly faithful (insertion only)",
               "not faithful here": f"Not faithful on this {subject}"}[judgement(faithfulness)]
    text = (f"{opening}: removing {_share(removed)} of what {name} ranks highest halves the probability "
            f"(from {start:.0%}), a random order needs {_share(random_removed)}; revealing {_share(revealed)} of its "
            f"{parts} first brings back half of it, a random order needs {_share(random_revealed)}.")
    centre = faithfulness.references.get("centre")
    if centre is not None and judgement(faithfulness) != "not faithful here":
        beats_centre = (curves.deletion_auc < centre.deletion_auc - MARGIN
                        and curves.insertion_auc > centre.insertion_auc + MARGIN)
        text += (" It also beats the centre-first order." if beats_centre else
                 " The centre-first order does about as well on at least one curve: here, much of it is “look at the middle”.")
    return text


def crossing(fractions: np.ndarray, values: np.ndarray, level: float, falling: bool) -> float | None:
    """The first fraction at which a curve reaches `level` (linear between steps); None if it never does."""
    reached = values <= level if falling else values >= level
    if not reached.any():
        return None
    i = int(np.argmax(reached))
    if i == 0:
        return 0.0
    before, after = float(values[i - 1]), float(values[i])
    return float(fractions[i - 1] + (fractions[i] - fractions[i - 1]) * (before - level) / (before - after))


def _share(fraction: float | None) -> str:
    return "all (it never does)" if fraction is None else f"{fraction:.0%}"


def faithfulness_rows(named: Named) -> list[dict]:
    """The table under the figure: areas of every map and the references, and a few words of judgement."""
    rows = []
    for name, f in named:
        rows.append({"map": name, "deletion area (lower is better)": round(f.curves.deletion_auc, 3),
                     "insertion area (higher is better)": round(f.curves.insertion_auc, 3),
                     "against a random order": judgement(f)})
    for key, curves in named[0][1].references.items():
        rows.append({"map": f"reference: {REFERENCE_NAMES[key].lower()}", "deletion area (lower is better)":
                     round(curves.deletion_auc, 3), "insertion area (higher is better)": round(curves.insertion_auc, 3),
                     "against a random order": ""})
    return rows


def faithfulness_caption(faithfulness: Faithfulness) -> str:
    """One line under a map: its two areas beside the random order's."""
    curves, random = faithfulness.curves, faithfulness.references["random"]
    return (f"Faithfulness: deletion area {curves.deletion_auc:.3f} (random order {random.deletion_auc:.3f}, lower is "
            f"better), insertion area {curves.insertion_auc:.3f} (random order {random.insertion_auc:.3f}, higher is better).")


def replacement_note(faithfulness: Faithfulness) -> str:
    removed = "words" if _text(faithfulness) else "regions"
    return (
        f"Removed {removed} ({faithfulness.unit}, {faithfulness.steps} steps) become "
        f"{REPLACEMENT_WORDS[faithfulness.replacement]}. Whatever replaces them is something the model never saw "
        "in training, so part of a drop can be the model reacting to the replacement itself: compare maps only "
        "with the same replacement, and against the references, which use it too."
    )

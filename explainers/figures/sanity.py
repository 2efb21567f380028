"""Sanity-check figures and words: the map after each randomisation step, how alike it stays, and a plain
verdict. Pure functions of records: no torch."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..records.sanity import REFERENCE_WORDS, SanityResult
from .image import escape

COLUMNS = 6
MAP_SCALE = "Viridis"  # opaque and perceptually even: the maps are shown without the photo


def step_labels(result: SanityResult) -> list[str]:
    """Short names: "head", "+ head conv", ... (each step adds one part to the random ones)."""
    parts = [step.split(" + ")[-1] for step in result.steps]
    return [parts[0]] + [f"+ {part}" for part in parts[1:]]


def sanity_maps_figure(result: SanityResult, title: str) -> go.Figure:
    """The original map, the map after each step, each scaled to its own range (|values| when signed), and
    last the edge detector, which is the same at every step: what failing looks like."""
    curve = result.method
    maps = (curve.original, *curve.maps, result.reference.original)
    names = (["original model"] + [f"{escape(label)}<br>ρ {r:+.2f}" for label, r in zip(step_labels(result), curve.similarity)]
             + ["edge detector<br>every step: ρ +1.00"])
    rows = -(-len(maps) // COLUMNS)
    figure = make_subplots(rows=rows, cols=COLUMNS, subplot_titles=names,
                           horizontal_spacing=0.01, vertical_spacing=0.12)
    for number, scores in enumerate(maps):
        values = np.abs(scores) if curve.signed else scores
        top = float(np.percentile(values, 99.5)) or float(values.max()) or 1.0
        figure.add_trace(
            go.Heatmap(z=values, zmin=0, zmax=top, colorscale=MAP_SCALE, showscale=False,
                       hovertemplate="value %{z:.4g}<extra></extra>"),
            row=number // COLUMNS + 1, col=number % COLUMNS + 1,
        )
    height, width = curve.original.shape
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed", scaleanchor="x")
    figure.update_annotations(font_size=11)
    figure.update_layout(title=escape(title), height=110 + rows * int(1000 / COLUMNS * height / width) + rows * 40,
                         margin=dict(l=10, r=10, t=80, b=10))
    return figure


def sanity_words_figure(result: SanityResult, words, title: str) -> go.Figure:
    """Text: one row per model (the original, then after each step) and one column per word, each row scaled
    to its own range (|values|), and last the word lengths, which are the same at every step."""
    curve = result.method
    rows = [curve.original, *curve.maps, result.reference.original]
    names = (["original model"] + [f"{label} (ρ {r:+.2f})" for label, r in zip(step_labels(result), curve.similarity)]
             + ["word lengths (every step: ρ +1.00)"])
    scaled = []
    for values in rows:
        values = np.abs(values)
        top = float(values.max()) or 1.0
        scaled.append(values / top)
    figure = go.Figure(go.Heatmap(
        z=scaled, x=list(range(len(words))), y=list(range(len(rows))), colorscale=MAP_SCALE, zmin=0, zmax=1,
        showscale=False, customdata=[[escape(w) for w in words]] * len(rows),
        hovertemplate="%{customdata}: %{z:.2f} of the row's largest<extra></extra>",
    ))
    figure.update_xaxes(tickmode="array", tickvals=list(range(len(words))), ticktext=[escape(w) for w in words],
                        tickangle=-45)
    figure.update_yaxes(tickmode="array", tickvals=list(range(len(rows))), ticktext=[escape(n) for n in names],
                        autorange="reversed")
    figure.update_layout(title=escape(title), height=140 + 28 * len(rows), margin=dict(l=10, r=10, t=60, b=10))
    return figure


def sanity_chart(result: SanityResult, name: str) -> go.Figure:
    """Similarity to the original after each step: the method (rank correlation and SSIM) and the reference."""
    labels = step_labels(result)
    x = list(range(1, len(labels) + 1))
    figure = go.Figure()
    lines = [
        (f"{name}: rank correlation (Spearman)", result.method.similarity, dict(color="#d62728", width=3)),
        (f"{name}: SSIM", result.method.ssim, dict(color="#d62728", width=2, dash="dot")),
        (f"{REFERENCE_WORDS[result.reference.name]} (ignores the model): rank correlation", result.reference.similarity,
         dict(color="#7f7f7f", width=2, dash="dash")),
    ]
    for trace_name, values, style in lines:
        figure.add_trace(go.Scatter(x=x, y=list(values), mode="lines+markers", name=escape(trace_name), line=style,
                                    customdata=labels, hovertemplate="%{customdata}: %{y:.2f}<extra></extra>"))
    figure.add_hline(y=result.threshold, line=dict(color="#444", dash="dot", width=1),
                     annotation_text=f"pass line: below {result.threshold} at step {result.rule_step}",
                     annotation_position="bottom right")
    figure.update_xaxes(tickmode="array", tickvals=x, ticktext=labels, title="re-initialised so far (top-down)")
    figure.update_yaxes(title="similarity to the original map", range=[-1.05, 1.05])
    figure.update_layout(title=escape(f"Does {name} change when the model's weights are destroyed?"), height=420,
                         margin=dict(l=10, r=10, t=60, b=40), legend=dict(orientation="h", y=-0.35))
    return figure


def sanity_verdict(name: str, result: SanityResult) -> str:
    step = result.rule_step
    at = result.method.similarity[step - 1]
    random = result.steps[step - 1]
    reference = REFERENCE_WORDS[result.reference.name]
    if result.passed:
        return (f"Passes: once {random} are random, {name}'s map keeps a rank correlation of {at:+.2f} with the "
                f"original (the pass line is {result.threshold}). It depends on what the model learned, as an "
                f"explanation of the model must; the {reference}, which ignore the model, stay at 1."
                if result.subject == "text" else
                f"Passes: once {random} are random, {name}'s map keeps a rank correlation of {at:+.2f} with the "
                f"original (the pass line is {result.threshold}). It depends on what the model learned, as an "
                "explanation of the model must; the edge detector, which ignores the model, stays at 1.")
    looked = "read" if result.subject == "text" else "looked at"
    return (f"Fails: once {random} are random, {name}'s map still has a rank correlation of {at:+.2f} with the "
            f"original ({result.threshold} or more). Much of it describes the {result.subject} rather than the model, "
            f"like the {reference} that stay{'' if result.subject == 'text' else 's'} at 1: do not read it as what this "
            f"model {looked}. (Gradient x input methods such as Integrated Gradients multiply by input − baseline, "
            "a factor no weight changes.)")

"""Plotly figures from explanation records: pure functions of data, no torch, no Streamlit.

Normalisation happens here, at draw time, so an opacity change redraws a cached record. Hover
shows the raw attribution value. User-supplied text is escaped: Plotly renders some HTML in labels.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from ..records.common import METHOD_NAMES, PIXEL_METHODS, ImageExplanation, Prediction

# Colour scales whose low end is transparent, so the photo shows through where there is no evidence.
EVIDENCE_SCALE = [
    [0.0, "rgba(0,0,130,0)"],
    [0.15, "rgba(0,60,255,0.35)"],
    [0.4, "rgba(0,220,255,0.7)"],
    [0.65, "rgba(255,230,0,0.85)"],
    [1.0, "rgba(220,0,0,1)"],
]
SIGNED_SCALE = [
    [0.0, "rgba(33,102,172,1)"],
    [0.35, "rgba(103,169,207,0.7)"],
    [0.5, "rgba(255,255,255,0)"],
    [0.65, "rgba(239,138,98,0.7)"],
    [1.0, "rgba(178,24,43,1)"],
]
Picture = Callable[[bytes, str], str]  # (encoded picture, its mimetype) -> the source a figure points to
CLIP_PERCENTILE = 99.5  # pixel attributions have a few extreme values; clip colours, not hover values
SMOOTHING = 0.015  # the projector display's blur, sigma as a share of the map's long side
HOVER_CELLS = 48  # a pixel map's hover grid: blocks of values, at most this many along the long side
PALETTE = 255  # colours of a drawn map: a byte each, an odd count so that a signed map's zero is its own
JPEG_QUALITY = 90  # the page's photo: a tenth of a PNG's bytes, no difference to see


def projector_values(scores: np.ndarray) -> np.ndarray:
    """What a pixel map looks like from the back of a classroom: |attribution|, Gaussian-smoothed, so the
    regions where evidence concentrates show as areas instead of scattered single pixels."""
    sigma = max(1.0, SMOOTHING * max(scores.shape))
    return cv2.GaussianBlur(np.abs(scores).astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def escape(text: str) -> str:
    return html.escape(str(text), quote=True)


def method_title(explanation: ImageExplanation, smoothed: bool = False) -> str:
    name = METHOD_NAMES.get(explanation.method, explanation.method)
    if smoothed and explanation.method in PIXEL_METHODS:
        return f"{name}, smoothed |values|"
    return f"{name} ({escape(explanation.layer)})" if explanation.layer else name


def prediction_bars(predictions: Sequence[Prediction], highlight: int | None = None) -> go.Figure:
    """Top predictions as horizontal bars, the best on top."""
    rows = list(reversed(predictions))
    labels = [f"{escape(_short(p.label))} · {p.index}" for p in rows]
    colours = ["#d62728" if p.index == highlight else "#1f77b4" for p in rows]
    figure = go.Figure(
        go.Bar(
            x=[p.score for p in rows],
            y=list(range(len(rows))),
            orientation="h",
            marker_color=colours,
            text=[f"{p.score:.1%}" for p in rows],
            textposition="auto",
            customdata=[[escape(p.label), p.index] for p in rows],
            hovertemplate="%{customdata[0]}<br>class %{customdata[1]}<br>probability %{x:.2%}<extra></extra>",
        )
    )
    figure.update_yaxes(tickmode="array", tickvals=list(range(len(rows))), ticktext=labels)
    figure.update_xaxes(title="probability", range=[0, 1], tickformat=".0%")
    figure.update_layout(title="Top predictions", height=80 + 40 * len(rows), margin=dict(l=10, r=10, t=40, b=40))
    return figure


def heatmap_layers(
    explanation: ImageExplanation, opacity: float, show_scale: bool = True, smoothed: bool = False, full: bool = False,
    picture: Picture | None = None,
) -> tuple[list, list[dict]]:
    """(traces, pictures) of the photo with the attribution map stretched over it (no resampling of values).

    The page's figure (`full=False`) is light: two pictures, laid out as layout images (plotly.js draws an
    image trace only from a data URI), the photo as a JPEG and the coloured map as a PNG at the map's
    resolution; and a transparent hover grid of raw values, the map's own grid for a CAM, blocks of pixels
    for a pixel map. `picture(bytes, mimetype)` gives a picture's source: a data URI by default, on the page a
    URL the browser fetches once and keeps (ui/pictures.py). `full=True` is the download's: every value a
    heatmap cell, the photo a PNG inside.
    `smoothed` draws a pixel map's projector display (projector_values); hover still shows raw values."""
    shown, colour, title = _colouring(explanation, smoothed)
    bar = dict(showscale=show_scale, colorbar=dict(title=title, thickness=12), **colour)
    if full:
        return [go.Image(source=png_data_uri(explanation.image), hoverinfo="skip"), go.Heatmap(
            **_cells(shown, explanation.image.shape), **_full_hover(explanation, shown), opacity=opacity, **bar)], []
    picture = picture or data_uri
    height, width = explanation.image.shape[:2]
    place = dict(x=-0.5, y=-0.5, sizex=width, sizey=height, xanchor="left", yanchor="top", sizing="stretch")
    # Two layers: plotly.js keys a layer's images by their place, so a second image on the same spot is dropped.
    pictures = [dict(source=picture(jpeg_bytes(explanation.image), "image/jpeg"), layer="below", **place),
                dict(source=picture(png_bytes(colour_map(shown, colour)), "image/png"), opacity=opacity,
                     layer="above", **place)]
    # Invisible: it carries hover and the colour bar (which trace opacity does not fade).
    return [go.Heatmap(**_hover_grid(explanation), opacity=0, **bar)], pictures


def _colouring(explanation: ImageExplanation, smoothed: bool) -> tuple[np.ndarray, dict, str]:
    """(the values drawn, the colour scale and its range, the colour bar's title)."""
    scores = explanation.scores
    if smoothed and explanation.method in PIXEL_METHODS:
        shown = projector_values(scores)
        # Colour starts at the median: the smoothed map has a floor everywhere, and the half above it is the story.
        low, top = np.percentile(shown, [50, CLIP_PERCENTILE])
        return shown, dict(colorscale=EVIDENCE_SCALE, zmin=float(low),
                           zmax=float(top) if top > low else float(low) + 1e-12), "|attr.|, smoothed"
    if explanation.signed:
        limit = float(np.percentile(np.abs(scores), CLIP_PERCENTILE)) or 1.0
        return scores, dict(colorscale=SIGNED_SCALE, zmin=-limit, zmax=limit, zmid=0), "attribution"
    top = float(np.percentile(scores, CLIP_PERCENTILE)) or float(scores.max()) or 1.0
    return scores, dict(colorscale=EVIDENCE_SCALE, zmin=0, zmax=top), "evidence"


def colour_map(values: np.ndarray, colour: dict) -> Image.Image:
    """The values coloured as Plotly's heatmap colours them (linear in RGBA between the scale's stops, clipped
    at the range's ends), as a palette image (PALETTE colours): a byte per value, so a PNG of it stays small."""
    low, high = colour["zmin"], colour["zmax"]
    where = np.clip((values - low) / (high - low), 0, 1) if high > low else np.zeros_like(values)
    stops = [position for position, _ in colour["colorscale"]]
    channels = np.array([_rgba(c) for _, c in colour["colorscale"]]).T  # (4, stops)
    levels = np.linspace(0, 1, PALETTE)
    palette = np.stack([np.interp(levels, stops, c) for c in channels], axis=-1).round().astype(np.uint8)
    image = Image.fromarray((where * (PALETTE - 1)).round().astype(np.uint8), mode="P")
    image.putpalette(palette[:, :3].tobytes())
    image.info["transparency"] = palette[:, 3].tobytes()
    return image


def _rgba(text: str) -> tuple[float, float, float, float]:
    r, g, b, a = (float(v) for v in text[text.index("(") + 1 : -1].split(","))
    return r, g, b, a * 255


def _cells(values: np.ndarray, shape) -> dict:
    """Placement of a (rows, cols) array's cells over a photo of `shape`: each cell's size in photo pixels."""
    (height, width), (rows, cols) = shape[:2], values.shape[:2]
    dx, dy = width / cols, height / rows
    return dict(x0=-0.5 + dx / 2, dx=dx, y0=-0.5 + dy / 2, dy=dy)


def _full_hover(explanation: ImageExplanation, shown: np.ndarray) -> dict:
    """The download's heatmap: every value a cell; a smoothed display hovers the raw value beside it."""
    if shown is explanation.scores:
        return dict(z=shown, hovertemplate="x %{x:.0f}, y %{y:.0f}<br>value %{z:.4g}<extra></extra>")
    return dict(z=shown, customdata=explanation.scores, hovertemplate="x %{x:.0f}, y %{y:.0f}<br>value "
                "%{customdata:.4g}<br>smoothed |value| %{z:.4g}<extra></extra>")


def _hover_grid(explanation: ImageExplanation) -> dict:
    """Raw values to hover over: the grid a map was computed on, or a pixel map's blocks (mean, least, most)."""
    shape = explanation.image.shape
    if explanation.grid is not None:
        return dict(z=explanation.grid.astype(np.float32), **_cells(explanation.grid, shape),
                    hovertemplate="x %{x:.0f}, y %{y:.0f}<br>value %{z:.4g}<extra></extra>")
    scores = explanation.scores
    side = -(-max(scores.shape) // HOVER_CELLS)
    rows, cols = -(-scores.shape[0] // side), -(-scores.shape[1] // side)
    padded = np.pad(scores, ((0, rows * side - scores.shape[0]), (0, cols * side - scores.shape[1])),
                    constant_values=np.nan).reshape(rows, side, cols, side)
    mean = np.nanmean(padded, axis=(1, 3)).astype(np.float32)
    spread = np.stack([np.nanmin(padded, axis=(1, 3)), np.nanmax(padded, axis=(1, 3))], axis=-1).astype(np.float32)
    dx, dy = side * shape[1] / scores.shape[1], side * shape[0] / scores.shape[0]
    return dict(z=mean, customdata=spread, x0=-0.5 + dx / 2, dx=dx, y0=-0.5 + dy / 2, dy=dy,
                hovertemplate=f"x %{{x:.0f}}, y %{{y:.0f}}, a block of {side}x{side} map values<br>mean %{{z:.4g}}, "
                              "from %{customdata[0]:.4g} to %{customdata[1]:.4g}<extra></extra>")


def heatmap_figure(explanation: ImageExplanation, opacity: float = 0.6, smoothed: bool = False,
                   full: bool = False, picture: Picture | None = None) -> go.Figure:
    """One map over its photo; `full` for a download, `picture` for the page (see heatmap_layers)."""
    traces, pictures = heatmap_layers(explanation, opacity, smoothed=smoothed, full=full, picture=picture)
    figure = go.Figure(traces)
    for one in pictures:
        figure.add_layout_image(xref="x", yref="y", **one)
    title = f"{method_title(explanation, smoothed)} for “{escape(_short(explanation.target.label))}”"
    if explanation.convergence_delta is not None:
        title += f"<br><sup>{completeness_text(explanation, short=True)}</sup>"
    _image_axes(figure, explanation.image.shape)
    figure.update_layout(title=title)
    return figure


def comparison_figure(
    explanations: Sequence[ImageExplanation], opacity: float = 0.6, titles: Sequence[str] | None = None, title: str = "",
    smoothed: bool = False, full: bool = False, picture: Picture | None = None,
) -> go.Figure:
    """Several maps side by side for the same image (methods, or prompts), each scaled to its own range."""
    count = len(explanations)
    columns = min(count, 4)
    rows = -(-count // columns)
    names = [escape(t) for t in titles] if titles else [method_title(e, smoothed) for e in explanations]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=names, vertical_spacing=0.08)
    for number, explanation in enumerate(explanations):
        traces, pictures = heatmap_layers(explanation, opacity, False, smoothed, full, picture)
        for trace in traces:
            figure.add_trace(trace, row=number // columns + 1, col=number % columns + 1)
        axis = "" if number == 0 else str(number + 1)
        for one in pictures:
            figure.add_layout_image(xref=f"x{axis}", yref=f"y{axis}", **one)
    height, width = explanations[0].image.shape[:2]
    figure.update_xaxes(showticklabels=False, range=[-0.5, width - 0.5], showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, range=[height - 0.5, -0.5], scaleanchor="x", showgrid=False, zeroline=False)
    target = explanations[0].target.label
    title = escape(title) if title else f"Methods compared for “{escape(_short(target))}” (each map scaled to its own range)"
    figure.update_layout(
        title=title,
        height=120 + rows * int(900 / columns * height / width),
        margin=dict(l=10, r=10, t=80, b=10),
    )
    return figure


def completeness_text(explanation: ImageExplanation, short: bool = False) -> str:
    delta, difference = explanation.convergence_delta, explanation.output_difference
    share = abs(delta) / abs(difference) if difference else float("inf")
    if short:
        return f"completeness gap {delta:+.3g} ({share:.1%} of f(x) − f(baseline) = {difference:.3g})"
    return (
        f"sum of attributions − (f(x) − f(baseline)) = {delta:+.3g}, "
        f"{share:.1%} of f(x) − f(baseline) = {difference:.3g}"
    )


def data_uri(data: bytes, mimetype: str) -> str:
    return f"data:{mimetype};base64," + base64.b64encode(data).decode("ascii")


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    buffer = io.BytesIO()
    image = image if isinstance(image, Image.Image) else Image.fromarray(image)
    image.save(buffer, format="PNG", optimize=True)  # pixels only: no EXIF or other metadata
    return buffer.getvalue()


def png_data_uri(image: np.ndarray | Image.Image) -> str:
    return data_uri(png_bytes(image), "image/png")


def jpeg_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)  # pixels only, as above
    return buffer.getvalue()


def _image_axes(figure: go.Figure, shape) -> None:
    height, width = shape[:2]
    figure.update_xaxes(showticklabels=False, range=[-0.5, width - 0.5], constrain="domain", showgrid=False,
                        zeroline=False)  # the grid would draw over the pictures
    figure.update_yaxes(showticklabels=False, range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain",
                        showgrid=False, zeroline=False)
    figure.update_layout(margin=dict(l=10, r=10, t=70, b=10), height=int(90 + 440 * min(height / width, 1.4)))


def _short(label: str, limit: int = 40) -> str:
    """First name of an ImageNet-style synonym list, shortened for axes and titles."""
    first = label.split(",")[0].strip() or label
    return first if len(first) <= limit else first[: limit - 1] + "…"

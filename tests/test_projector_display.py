"""The projector display of pixel maps: regions that show from a distance, raw values kept for hover and files."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from explainers.figures.image import comparison_figure, heatmap_figure
from explainers.records.export import attribution_csv
from explainers.tasks.image import ImageSettings, explain_image

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def pixel_maps(bundled, chelsea):
    return explain_image(bundled, chelsea, ("gradcam", "integrated-gradients", "smoothgrad"),
                         settings=ImageSettings(ig_steps=16, smoothgrad_samples=4)).explanations


def overlay(figure):
    return figure.layout.images[1]  # the coloured map, over the photo


def ink(picture) -> np.ndarray:
    """The opacity of each value's colour over the photo, read from the overlay the page draws (the colour scales
    fade to transparent where nothing is)."""
    drawn = Image.open(io.BytesIO(base64.b64decode(picture.source.split(",", 1)[1]))).convert("RGBA")
    return np.asarray(drawn, dtype=float)[..., 3] / 255


def seen_from_afar(trace, block: int = 8) -> np.ndarray:
    """Opacity as the back row sees it: averaged over 8 x 8 blocks (the eye blends neighbouring pixels)."""
    opacity = ink(trace)
    rows, cols = (n // block for n in opacity.shape)
    return opacity[: rows * block, : cols * block].reshape(rows, block, cols, block).mean(axis=(1, 3))


def test_smoothed_pixel_maps_show_regions_and_keep_raw_values_for_hover_and_downloads(pixel_maps):
    for explanation in pixel_maps[1:]:
        raw = overlay(heatmap_figure(explanation))
        smoothed_figure = heatmap_figure(explanation, smoothed=True)
        smoothed = overlay(smoothed_figure)
        raw_view, smoothed_view = seen_from_afar(raw), seen_from_afar(smoothed)
        # Scattered pixels blend into an even tint; regions stand out: the contrast between blocks grows ...
        assert smoothed_view.std() > 1.5 * raw_view.std(), (explanation.method, raw_view.std(), smoothed_view.std())
        # ... and the colour marks where the evidence is, not the whole photo.
        assert (smoothed_view >= 0.5).mean() < 0.4
        # Hover reads raw values: the page's blocks of them, the download's every one.
        (hover,) = smoothed_figure.data
        np.testing.assert_array_equal(np.asarray(hover.z), heatmap_figure(explanation).data[0].z)
        first = explanation.scores[: round(hover.dy * explanation.scores.shape[0] / explanation.image.shape[0]),
                                   : round(hover.dx * explanation.scores.shape[1] / explanation.image.shape[1])]
        assert np.asarray(hover.z)[0, 0] == pytest.approx(first.mean(), rel=1e-5)
        assert list(np.asarray(hover.customdata)[0, 0]) == pytest.approx([first.min(), first.max()], rel=1e-6)
        download = heatmap_figure(explanation, smoothed=True, full=True).data[1]
        np.testing.assert_array_equal(np.asarray(download.customdata), explanation.scores)
        assert "customdata" in download.hovertemplate and "smoothed" in smoothed_figure.layout.title.text
        assert attribution_csv(explanation).count("\n") > explanation.scores.shape[0]  # the file: raw rows, unchanged
    cam = pixel_maps[0]  # CAMs as they are
    assert overlay(heatmap_figure(cam, smoothed=True)).source == overlay(heatmap_figure(cam)).source
    np.testing.assert_array_equal(np.asarray(heatmap_figure(cam, smoothed=True).data[0].z), cam.grid)


def test_the_comparison_labels_the_smoothed_display(pixel_maps):
    figure = comparison_figure(pixel_maps, smoothed=True)
    titles = [a.text for a in figure.layout.annotations]
    assert titles[1] == "Integrated Gradients, smoothed |values|" and titles[0].startswith("Grad-CAM (")

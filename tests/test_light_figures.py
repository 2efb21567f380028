"""The page's light figures: a map drawn as a palette PNG at its own resolution over a JPEG of the photo,
with an invisible grid of raw values for hover; the download's figure keeps every value."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.io as pio
import pytest
from PIL import Image

from explainers.figures.image import EVIDENCE_SCALE, SIGNED_SCALE, colour_map, heatmap_figure
from explainers.records.as_json import image_record
from explainers.tasks.image import ImageSettings, explain_image

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def maps(bundled, chelsea):
    report = explain_image(bundled, chelsea, ("gradcam", "integrated-gradients"), settings=ImageSettings(ig_steps=16))
    return {e.method: e for e in report.explanations}


def decoded(source: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))


def test_the_colours_are_the_scales_own_at_every_stop():
    for scale in (EVIDENCE_SCALE, SIGNED_SCALE):
        values = np.array([[position for position, _ in scale]])
        drawn = np.asarray(colour_map(values, dict(colorscale=scale, zmin=0.0, zmax=1.0)).convert("RGBA"), dtype=float)
        for (position, colour), pixel in zip(scale, drawn[0]):
            r, g, b, a = (float(v) for v in colour[colour.index("(") + 1 : -1].split(","))
            # Within one palette level (1/254 of the range): at most 4 units on these scales' steepest stretch.
            np.testing.assert_allclose(pixel, [r, g, b, a * 255], atol=4.5, err_msg=f"{position} {colour}")
    middle = colour_map(np.array([[0.0]]), dict(colorscale=SIGNED_SCALE, zmin=-1.0, zmax=1.0)).convert("RGBA")
    assert np.asarray(middle)[0, 0, 3] == 0  # a signed map's zero shows the photo as it is
    outside = colour_map(np.array([[-5.0, 5.0]]), dict(colorscale=EVIDENCE_SCALE, zmin=0.0, zmax=1.0)).convert("RGBA")
    assert np.asarray(outside)[0, 0, 3] == 0 and tuple(np.asarray(outside)[0, 1]) == (220, 0, 0, 255)  # clipped


def test_a_cam_hovers_its_own_cells_over_the_whole_photo(maps):
    cam = maps["gradcam"]
    figure = heatmap_figure(cam)
    (hover,), (photo, overlay) = figure.data, figure.layout.images
    assert photo.source.startswith("data:image/jpeg") and overlay.source.startswith("data:image/png")
    assert (photo.layer, overlay.layer) == ("below", "above")  # one layer would drop the second image
    assert decoded(overlay.source).size == cam.scores.shape[::-1]  # the map's resolution, not the photo's
    for picture in (photo, overlay):  # both stretched over the photo's pixels, as the hover grid's cells are
        assert (picture.x, picture.y, picture.sizex, picture.sizey) == (-0.5, -0.5, *cam.image.shape[1::-1])
    np.testing.assert_array_equal(np.asarray(hover.z), cam.grid)
    height, width = cam.image.shape[:2]
    rows, cols = cam.grid.shape
    assert hover.x0 - hover.dx / 2 == pytest.approx(-0.5) and hover.x0 + (cols - 0.5) * hover.dx == pytest.approx(width - 0.5)
    assert hover.y0 - hover.dy / 2 == pytest.approx(-0.5) and hover.y0 + (rows - 0.5) * hover.dy == pytest.approx(height - 0.5)
    assert hover.opacity == 0 and hover.showscale  # invisible, but it carries the colour bar


def test_a_pixel_maps_hover_blocks_hold_its_raw_values(maps):
    pixels = maps["integrated-gradients"]
    (hover,) = heatmap_figure(pixels).data
    means, spread = np.asarray(hover.z), np.asarray(hover.customdata)
    assert max(means.shape) <= 48
    side = -(-max(pixels.scores.shape) // 48)
    for row, col in ((0, 0), (means.shape[0] - 1, means.shape[1] - 1), (3, 5)):
        block = pixels.scores[row * side : (row + 1) * side, col * side : (col + 1) * side]  # the last is partial
        assert means[row, col] == pytest.approx(block.mean(), rel=1e-4, abs=1e-9)
        assert list(spread[row, col]) == pytest.approx([block.min(), block.max()], rel=1e-6)


def test_the_page_sends_a_fraction_and_the_download_every_value(maps, chelsea):
    for explanation in maps.values():
        light, full = heatmap_figure(explanation), heatmap_figure(explanation, full=True)
        assert len(pio.to_json(light, validate=False)) * 3 < len(pio.to_json(full, validate=False)), explanation.method
        np.testing.assert_array_equal(np.asarray(full.data[1].z), explanation.scores)
        assert full.data[0].source.startswith("data:image/png")
    cam = maps["gradcam"]
    record = image_record(cam.model, cam.predictions, cam.target, cam)
    assert record["attribution_shape"] == list(cam.grid.shape) and record["photo_shape"] == list(chelsea.shape[:2])
    full = image_record(cam.model, cam.predictions, cam.target, cam, full_size=True)
    assert full["attribution_shape"] == record["full_size_shape"] == list(cam.scores.shape)
    pixels = maps["integrated-gradients"]  # computed per pixel: its own resolution is the full size
    assert image_record(pixels.model, pixels.predictions, pixels.target, pixels)["attribution_shape"] == list(pixels.scores.shape)

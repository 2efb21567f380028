"""Uploads: every bad input gets a message a person can act on; every good one a correct RGB array."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import encode
from explainers.image import explain_image
from explainers.image_input import WORKING_LONG_SIDE, DecodedImage, ImageInputError, decode_image

pytestmark = pytest.mark.usefixtures("single_thread")

SUPPORTED_NAMES = ("JPEG", "PNG", "WebP", "BMP", "GIF")


def _refused(data: bytes, **limits) -> str:
    started = time.perf_counter()
    with pytest.raises(ImageInputError) as refusal:
        decode_image(data, **limits)
    assert time.perf_counter() - started < 2, "refusing should not decode anything"
    message = str(refusal.value)
    assert message and "Traceback" not in message and len(message) < 300
    return message


def _png_declaring(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims another size (a decompression bomb needs no real pixels)."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    chunk = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = chunk
    data[29:33] = struct.pack(">I", zlib.crc32(chunk))
    return bytes(data)


def _mark_corner(width=60, height=40) -> Image.Image:
    """Grey, with a red block in the stored top-left corner."""
    image = np.full((height, width, 3), 128, np.uint8)
    image[:10, :10] = (255, 0, 0)
    return Image.fromarray(image)


# --- Refusals -----------------------------------------------------------------------------------


def test_empty_file():
    assert "empty" in _refused(b"").lower()


def test_random_bytes():
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    message = _refused(data)
    assert "not an image" in message
    for name in SUPPORTED_NAMES:
        assert name in message


def test_text_file():
    message = _refused("name,score\ncat,0.9\n".encode() * 50)
    assert "not an image" in message


def test_truncated_jpeg(chelsea_jpeg):
    message = _refused(chelsea_jpeg[: len(chelsea_jpeg) // 2])
    assert "truncated" in message or "corrupt" in message


def test_too_many_bytes(chelsea_jpeg):
    message = _refused(chelsea_jpeg, max_bytes=1000)
    assert "MB" in message and "limit" in message


@pytest.mark.parametrize("size", [(20000, 20000), (8000, 8000)], ids=["beyond-pillow-limit", "beyond-our-limit"])
def test_decompression_bomb_is_refused_quickly(size):
    data = _png_declaring(*size)
    assert len(data) < 100
    assert struct.unpack(">II", data[16:24]) == size  # the crafted header declares that size
    assert data[29:33] == struct.pack(">I", zlib.crc32(data[12:29]))  # with a valid checksum
    message = _refused(data)
    assert "megapixels" in message


@pytest.mark.parametrize("fmt", ["TIFF", "ICO"])
def test_valid_but_unsupported_format(fmt):
    message = _refused(encode(Image.new("RGB", (32, 32), (10, 200, 30)), fmt))
    assert fmt in message and "not supported" in message
    for name in SUPPORTED_NAMES:
        assert name in message


# --- Accepted inputs, each with the property that makes it right -------------------------------


def _rgb(data: bytes) -> DecodedImage:
    decoded = decode_image(data)
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3
    return decoded


def test_sixteen_bit_png_spans_dark_to_bright():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    image = Image.fromarray(ramp)
    assert image.mode.startswith("I;16")
    decoded = _rgb(encode(image, "PNG"))
    gray = decoded.rgb[..., 0].astype(int)
    assert decoded.rgb.shape == (32, 256, 3)
    assert (decoded.rgb[..., 0] == decoded.rgb[..., 1]).all() and (decoded.rgb[..., 1] == decoded.rgb[..., 2]).all()
    assert not (gray == 255).all()
    assert gray[:, :8].max() < 20 and gray[:, -8:].min() > 235
    assert (np.diff(gray[0]) >= 0).all()  # the ramp stays a ramp
    assert 100 < gray[:, 120:136].mean() < 156


def test_sixteen_bit_png_with_a_narrow_range():
    """Depth maps and scientific images use a small part of 0..65535: it is stretched to be seen."""
    ramp = np.tile(np.linspace(1000, 1400, 64).astype(np.uint16), (16, 1))
    decoded = _rgb(encode(Image.fromarray(ramp), "PNG"))
    gray = decoded.rgb[..., 0].astype(int)
    assert gray.min() < 10 and gray.max() > 245
    assert any("16" in note for note in decoded.notes)


def test_cmyk_jpeg_becomes_rgb():
    image = Image.new("RGB", (40, 30), (220, 30, 30)).convert("CMYK")
    data = encode(image, "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.mode == "CMYK"
    decoded = _rgb(data)
    assert decoded.rgb.shape == (30, 40, 3)
    r, g, b = decoded.rgb[15, 20].astype(int)
    assert r > 180 and g < 80 and b < 80  # still red, not inverted


def test_rgba_transparency_is_composited_on_white():
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:, :15] = (200, 0, 0, 255)  # opaque red on the left, fully transparent on the right
    decoded = _rgb(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (decoded.rgb[:, :15] == (200, 0, 0)).all()
    assert (decoded.rgb[:, 15:] == 255).all()
    assert any("transparent" in note.lower() for note in decoded.notes)


def test_opaque_rgba_gets_no_transparency_note():
    rgba = np.full((8, 8, 4), 255, np.uint8)
    rgba[..., :3] = (10, 20, 30)
    decoded = _rgb(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (decoded.rgb == (10, 20, 30)).all()
    assert not any("transparent" in note.lower() for note in decoded.notes)


def test_palette_png():
    source = np.zeros((24, 24, 3), np.uint8)
    source[:12] = (0, 0, 255)
    source[12:] = (0, 200, 0)
    image = Image.fromarray(source).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert image.mode == "P"
    decoded = _rgb(encode(image, "PNG"))
    assert np.abs(decoded.rgb.astype(int) - source).max() <= 8


def test_palette_png_with_a_transparent_index():
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 250, 10, 10] + [0] * (254 * 3))
    image.paste(1, (0, 0, 8, 16))
    decoded = _rgb(encode(image, "PNG", transparency=0))
    assert (decoded.rgb[:, :8] == (250, 10, 10)).all()
    assert (decoded.rgb[:, 8:] == 255).all()


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (16, 16), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = _rgb(buffer.getvalue())
    assert (decoded.rgb == (255, 0, 0)).all()
    assert any("3 frames" in note and "first" in note for note in decoded.notes)


def test_one_pixel_png():
    decoded = _rgb(encode(Image.new("RGB", (1, 1), (12, 34, 56)), "PNG"))
    assert decoded.rgb.shape == (1, 1, 3) and tuple(decoded.rgb[0, 0]) == (12, 34, 56)
    assert decoded.original_size == (1, 1)
    assert any("small" in note.lower() for note in decoded.notes)


def test_large_allowed_jpeg_is_shrunk():
    gradient = Image.linear_gradient("L").resize((6000, 4000)).convert("RGB")
    data = encode(gradient, "JPEG", quality=70)
    started = time.perf_counter()
    decoded = _rgb(data)
    assert time.perf_counter() - started < 3
    assert decoded.original_size == (6000, 4000)
    assert max(decoded.rgb.shape[:2]) <= WORKING_LONG_SIDE
    assert max(decoded.rgb.shape[:2]) >= WORKING_LONG_SIDE * 0.9
    height, width = decoded.rgb.shape[:2]
    assert abs(width / height - 1.5) < 0.01
    column = decoded.rgb[:, width // 2, 0].astype(int)
    assert column[0] < 20 and column[-1] > 235  # top to bottom gradient survived


def test_exif_orientation_is_applied():
    stored = _mark_corner(width=60, height=40)
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    decoded = _rgb(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert decoded.rgb.shape == (60, 40, 3)  # width and height swapped
    assert decoded.original_size == (60, 40)
    # The stored top-left corner is shown top-right.
    top_right = decoded.rgb[:8, -8:].astype(int).mean(axis=(0, 1))
    top_left = decoded.rgb[:8, :8].astype(int).mean(axis=(0, 1))
    assert top_right[0] > 200 and top_right[1] < 60
    assert abs(top_left - 128).max() < 20


def test_webp_and_bmp_decode_exactly():
    source = np.random.default_rng(3).integers(0, 256, (20, 33, 3), dtype=np.uint8)
    for data in (encode(source, "WEBP", lossless=True), encode(source, "BMP")):
        decoded = _rgb(data)
        assert np.array_equal(decoded.rgb, source)
        assert decoded.original_size == (33, 20) and decoded.notes == ()


def test_reported_format_is_the_files_format():
    """DecodedImage.format names the upload's format; it reads "PNG" for every format.

    `_upright` (ImageOps.exif_transpose) returns a copy without a format, and decode_image then
    falls back to "PNG".
    """
    source = np.random.default_rng(4).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    uploads = {
        "JPEG": encode(source, "JPEG"),
        "PNG": encode(source, "PNG"),
        "WebP": encode(source, "WEBP"),
        "BMP": encode(source, "BMP"),
        "GIF": encode(source, "GIF"),
    }
    reported = {fmt: decode_image(data).format for fmt, data in uploads.items()}
    assert reported == {fmt: fmt for fmt in uploads}


# --- Every accepted image can be explained ------------------------------------------------------


def _accepted_uploads(chelsea_jpeg) -> dict[str, bytes]:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:, :15] = (200, 0, 0, 255)
    frames = [Image.new("RGB", (16, 16), colour) for colour in [(255, 0, 0), (0, 255, 0)]]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    stored = _mark_corner()
    exif = stored.getexif()
    exif[0x0112] = 6
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    return {
        "jpeg": chelsea_jpeg,
        "16-bit png": encode(Image.fromarray(ramp), "PNG"),
        "cmyk jpeg": encode(Image.new("RGB", (40, 30), (220, 30, 30)).convert("CMYK"), "JPEG"),
        "rgba png": encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "palette png": encode(Image.new("RGB", (24, 24), (0, 0, 255)).convert("P"), "PNG"),
        "animated gif": gif.getvalue(),
        "1x1 png": encode(Image.new("RGB", (1, 1), (12, 34, 56)), "PNG"),
        "large jpeg": encode(Image.linear_gradient("L").resize((3000, 2000)).convert("RGB"), "JPEG", quality=60),
        "rotated jpeg": encode(stored, "JPEG", exif=exif.tobytes()),
        "webp": encode(_mark_corner(), "WEBP"),
        "bmp": encode(_mark_corner(), "BMP"),
    }


def test_every_accepted_image_can_be_explained(bundled, chelsea_jpeg):
    for name, data in _accepted_uploads(chelsea_jpeg).items():
        decoded = decode_image(data)
        report = explain_image(bundled, decoded.rgb, ("gradcam",))
        (explanation,) = report.explanations
        assert len(report.predictions) == 5, name
        assert np.isfinite(explanation.scores).all(), name
        assert explanation.image.shape[:2] == decoded.rgb.shape[:2] or max(explanation.image.shape[:2]) == 640, name

"""Turn uploaded bytes into a safe RGB array, or a message a person can act on.

Only pixels come out: EXIF and other metadata are dropped here, so nothing derived from an
upload (figures, exports) carries GPS or camera data.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SUPPORTED_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP", "GIF": "GIF", "MPO": "JPEG"}
MAX_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 50_000_000  # larger declared sizes are refused before any pixel is decoded
WORKING_LONG_SIDE = 1024  # kept for display and compute; models read ~224 px anyway
# ISO-BMFF brands of still images Pillow cannot decode without a plugin (iPhone photos are HEIC)
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
AVIF_BRANDS = {b"avif", b"avis"}


class ImageInputError(ValueError):
    """The input cannot be used; the message is meant for the person who sent it."""


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) uint8
    original_size: tuple[int, int]  # (width, height) as stored in the file
    format: str
    notes: tuple[str, ...] = ()


def decode_image(data: bytes, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    if not data:
        raise ImageInputError("The file is empty (0 bytes).")
    if len(data) > max_bytes:
        raise ImageInputError(f"The file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(
            f"The image declares more pixels than Pillow's safety limit; the limit here is "
            f"{max_pixels / 1e6:.0f} megapixels. Please resize it first."
        ) from None
    except UnidentifiedImageError:
        container = _heif_kind(data)  # here only: with a HEIF plugin installed, Pillow reads these itself
        if container == "AVIF":
            raise ImageInputError(
                "AVIF images cannot be read here. Please export the image as JPEG or PNG first."
            ) from None
        if container:
            raise ImageInputError(
                "HEIC/HEIF photos (the iPhone default) cannot be read here. "
                "Please export the photo as JPEG or PNG first."
            ) from None
        raise ImageInputError(
            "This file is not an image we can read. Supported formats: JPEG, PNG, WebP, BMP and GIF."
        ) from None
    except Exception:
        raise ImageInputError("This file could not be opened as an image; it may be corrupt.") from None
    if image.format not in SUPPORTED_FORMATS:
        raise ImageInputError(
            f"{image.format or 'This'} images are not supported. Please use JPEG, PNG, WebP, BMP or GIF."
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageInputError(
            f"The image declares {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:.0f} megapixels. Please resize it first."
        )
    file_format = SUPPORTED_FORMATS[image.format]  # the orientation fix below returns a copy without it
    notes = []
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"Animated image with {frames} frames: the first frame is used.")
    try:
        image.seek(0)
        if image.format == "JPEG":
            image.draft("RGB", (WORKING_LONG_SIDE, WORKING_LONG_SIDE))  # decode big JPEGs at reduced size
        image.load()
        image = _upright(image, notes)
        rgb = _to_rgb(image, notes)
    except ImageInputError:
        raise
    except Exception:
        raise ImageInputError("The image file is truncated or corrupt and could not be decoded.") from None
    rgb = shrink_to(rgb, WORKING_LONG_SIDE)
    if min(width, height) < 16:
        notes.append(f"Very small image ({width} x {height}): it is enlarged for the model, so expect a coarse result.")
    return DecodedImage(rgb, (width, height), file_format, tuple(notes))


def _heif_kind(data: bytes) -> str | None:
    """The container ("HEIC/HEIF" or "AVIF") when the bytes start with an ISO-BMFF `ftyp` box whose major brand
    is a HEIF still image; None otherwise (MP4 and QuickTime videos have an `ftyp` box too, with other brands)."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    major = data[8:12]
    if major in AVIF_BRANDS:
        return "AVIF"
    if major not in HEIF_BRANDS:
        return None
    # The generic HEIF brands (mif1, msf1) say which codec in the compatible brands after the minor version.
    end = min(int.from_bytes(data[:4], "big"), len(data), 256)
    compatible = {data[i : i + 4] for i in range(16, end - 3, 4)}
    return "AVIF" if major in (b"mif1", b"msf1") and compatible & AVIF_BRANDS else "HEIC/HEIF"


def _upright(image: Image.Image, notes: list[str]) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the user the picture
        notes.append("The photo's orientation tag could not be read; it is shown as stored.")
        return image


def _to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # Scale by the data's own range; a naive convert("L") clips 16-bit values to white.
        values = np.asarray(image, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if hi <= lo else (values - lo) / (hi - lo)
        gray = np.round(scaled * 255).astype(np.uint8)
        notes.append(f"{image.mode} image rescaled from its value range {lo:g}..{hi:g} to 8 bits.")
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append("Transparent areas are shown on white, as a browser would show them.")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def shrink_to(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """The image with its long side at most `long_side`, aspect kept."""
    height, width = rgb.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)

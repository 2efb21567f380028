"""What a map costs on the command line: `python -m explainers image PHOTOS... --json` over 32 photos in one
process, `--method none` (predictions only) against `--method gradcam`, end to end (decoding, the model,
building and printing the JSON Lines), side by side in one run, with the bytes printed per photo.

The model loads once per call of the command (as it does for a user), so each call is timed whole; the
calls alternate (none, gradcam, none, ...) and the median of each is reported.

    python benchmarks/cli_weight.py [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explainers.cli import main as cli  # noqa: E402
from explainers.inputs.samples import SAMPLES, sample_bytes  # noqa: E402

PHOTOS = 32


class Counting(io.TextIOBase):
    """A stdout that only counts what is written to it."""

    def __init__(self):
        self.characters = 0

    def write(self, text: str) -> int:
        self.characters += len(text)
        return len(text)


def photos(folder: Path) -> list[str]:
    """32 photos: the samples in turn, each with one pixel changed, so none is the same file."""
    samples = [np.asarray(Image.open(io.BytesIO(sample_bytes(name))).convert("RGB")) for name in SAMPLES]
    paths = []
    for number in range(PHOTOS):
        pixels = samples[number % len(samples)].copy()
        pixels[0, 0] = (number, 0, 7)
        path = folder / f"photo-{number:02d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


def run(paths: list[str], method: str) -> tuple[float, int]:
    """(seconds, characters printed) for one call of the command."""
    sink = Counting()
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(io.StringIO()):
        code = cli(["image", *paths, "--model", "efficientnet-lite0", "--method", method, "--json"])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"the command failed for --method {method} (exit code {code})")
    return seconds, sink.characters


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory() as folder:
        paths = photos(Path(folder))
        methods = ("none", "gradcam")
        for method in methods:  # warm-up: imports, the first load from disk
            run(paths, method)
        seconds = {method: [] for method in methods}
        printed = {}
        for _ in range(repeats):
            for method in methods:
                took, printed[method] = run(paths, method)
                seconds[method].append(took)
    reference = statistics.median(seconds["none"])
    print(f"{PHOTOS} photos ({len(SAMPLES)} samples, one pixel changed each), bundled EfficientNet-Lite0, one process, "
          f"median of {repeats}, alternating")
    for method in methods:
        median = statistics.median(seconds[method])
        print(f"  --method {method:<8} {median:6.2f} s  {median / reference:5.2f}x   "
              f"{printed[method] / PHOTOS / 1024:8.1f} KB of JSON per photo")


if __name__ == "__main__":
    main()

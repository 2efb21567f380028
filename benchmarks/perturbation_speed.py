"""Perturbation methods on the real photos, measured side by side in one run; prints ratios.

Bundled EfficientNet-Lite0, the five sample photos, class probabilities of the top class, blurred
baseline (what a removed region becomes), SLIC superpixels at the model's input size.

1. LIME and Kernel SHAP: seconds and stability per sample count. Stability is the Spearman rank
   correlation between the maps of seeds 0 and 1 (median, and worst, over photos). captum's own
   defaults run in the same table: its Lime and KernelShap as they come (25 samples, one input per
   forward, torch's global RNG; Lime with a Lasso surrogate and a pixel-space kernel).
2. Occlusion: seconds per patch/stride, and captum's Occlusion with the default window as it comes
   (one input per forward).

    python benchmarks/perturbation_speed.py [--lime 50,100,200] [--shap 100,200,400] [--segments N] [--photos N]

About 14,000 forwards: 4.4 minutes measured at ~18 ms per input (2 threads, 224 x 337, nothing else running).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from captum.attr import KernelShap, Lime, Occlusion
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explainers.inputs.image import decode_image  # noqa: E402
from explainers.inputs.samples import SAMPLES, sample_bytes  # noqa: E402
from explainers.methods import perturbation as P  # noqa: E402
from explainers.methods.batching import MAX_BATCH, batch_for  # noqa: E402
from explainers.tasks.image import _baseline  # noqa: E402
from models.image_models import load_bundled  # noqa: E402

SEEDS = (0, 1)
OCCLUSION = ((64, 32), (48, 24), (32, 16))  # (patch, stride) at the input size (short side 224)


def timed_once(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def stability(a: torch.Tensor, b: torch.Tensor) -> float:
    rho = spearmanr(np.asarray(a).ravel(), np.asarray(b).ravel())[0]
    return float(rho) if np.isfinite(rho) else 0.0  # a constant map (Lasso zeroed every part) ranks nothing


def prepare(classifier, rgb):
    pixels = classifier.preprocess(rgb)
    h, w = pixels.shape[-2:]
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)  # what the model sees, as uint8
    baseline = _baseline(classifier, pixels, "blurred", 0)
    with torch.no_grad():
        target = int(classifier.logits(pixels)[0].argmax())
    return pixels, small, baseline, target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lime", default="50,100,200", help="LIME sample counts")
    parser.add_argument("--shap", default="100,200,400", help="Kernel SHAP sample counts")
    parser.add_argument("--segments", type=int, default=P.DEFAULT_SEGMENTS)
    parser.add_argument("--photos", type=int, default=len(SAMPLES))
    args = parser.parse_args()
    counts = {"LIME": [int(n) for n in args.lime.split(",")], "Kernel SHAP": [int(n) for n in args.shap.split(",")]}
    torch.set_num_threads(2)
    classifier = load_bundled()
    probabilities = lambda x: classifier.logits(x).softmax(-1)  # noqa: E731
    photos = {name: decode_image(sample_bytes(name)).rgb for name in list(SAMPLES)[: args.photos]}
    print(f"model: {classifier.info.name}; torch threads {torch.get_num_threads()}; {len(photos)} photos")

    pixels, *_ = prepare(classifier, next(iter(photos.values())))
    for size in sorted({batch_for(pixels[0].numel()), MAX_BATCH}):
        batch = pixels.expand(size, -1, -1, -1).contiguous()
        with torch.no_grad():
            probabilities(batch)  # warm-up
            seconds, _ = timed_once(lambda: [probabilities(batch) for _ in range(32 // size)])
        print(f"one forward: {seconds / (32 // size * size) * 1000:.1f} ms per image in batches of {size}")

    runs = {}  # (method, samples) -> [(seconds, stability, segments)] per photo
    occlusion = {}  # (who, patch, stride) -> [seconds]
    for name, rgb in photos.items():
        pixels, small, baseline, target = prepare(classifier, rgb)
        labels = P.superpixels(small, args.segments)
        mask = torch.from_numpy(labels)[None, None]
        for method, fn in (("LIME", P.lime_image), ("Kernel SHAP", P.kernel_shap_image)):
            for n in counts[method]:
                elapsed, first = timed_once(lambda: fn(probabilities, pixels, baseline, target, labels, n, SEEDS[0]))
                second = fn(probabilities, pixels, baseline, target, labels, n, SEEDS[1])
                rho = stability(first.attribution, second.attribution)
                runs.setdefault((method, n), []).append((elapsed, rho, first.params["segments"], first.forwards))
        for method, cls in (("captum Lime", Lime), ("captum KernelShap", KernelShap)):
            maps, times = [], []
            for seed in SEEDS:
                torch.manual_seed(seed)
                explainer = cls(probabilities)
                elapsed, attribution = timed_once(
                    lambda: explainer.attribute(pixels, baselines=baseline, target=target, feature_mask=mask)
                )
                maps.append(attribution[0].mean(0))
                times.append(elapsed)
            runs.setdefault((method, 25), []).append((times[0], stability(*maps), int(labels.max()) + 1, 25))
        for patch, stride in OCCLUSION:
            elapsed, result = timed_once(
                lambda: P.occlusion_image(probabilities, pixels, baseline, target, patch, stride)
            )
            occlusion.setdefault(("ours", patch, stride), []).append((elapsed, result.forwards))
        patch, stride = P.DEFAULT_PATCH, P.DEFAULT_STRIDE
        elapsed, _ = timed_once(
            lambda: Occlusion(probabilities).attribute(
                pixels, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride),
                baselines=baseline, target=target,
            )
        )
        forwards = 1 + P.occlusion_windows(*pixels.shape[-2:], patch, stride)
        occlusion.setdefault(("captum", patch, stride), []).append((elapsed, forwards))
        print(f"  done: {name} ({tuple(pixels.shape[-2:])}, {int(labels.max()) + 1} superpixels)", flush=True)

    print(f"\n## LIME and Kernel SHAP over superpixels (slic target {args.segments}; median over photos)")
    print(f"{'method':18} {'samples':>7} {'segments':>8} {'seconds':>8} {'ms/input':>8} {'stability':>9} {'worst':>6}")
    for (method, n), cells in runs.items():
        seconds, rhos, segments, forwards = zip(*cells)
        per_input = 1000 * sum(seconds) / sum(forwards)
        print(
            f"{method:18} {n:7} {statistics.median(segments):8.0f} {statistics.median(seconds):8.2f} "
            f"{per_input:8.1f} {statistics.median(rhos):9.3f} {min(rhos):6.3f}"
        )
    for method, default, theirs in (
        ("LIME", P.DEFAULT_LIME_SAMPLES, "captum Lime"),
        ("Kernel SHAP", P.DEFAULT_SHAP_SAMPLES, "captum KernelShap"),
    ):
        if (method, default) in runs:
            ours, base = runs[(method, default)], runs[(theirs, 25)]
            ratio = statistics.median(c[0] for c in ours) / statistics.median(c[0] for c in base)
            print(
                f"default {method} ({default} samples) vs {theirs} defaults: time ratio {ratio:.1f}, stability "
                f"{statistics.median(c[1] for c in ours):.3f} vs {statistics.median(c[1] for c in base):.3f}"
            )

    print("\n## Occlusion (median seconds over photos)")
    print(f"{'who':8} {'patch':>5} {'stride':>6} {'forwards':>8} {'seconds':>8} {'ms/input':>8}")
    for (who, patch, stride), cells in occlusion.items():
        seconds, forwards = zip(*cells)
        per_input = 1000 * sum(seconds) / sum(forwards)
        print(
            f"{who:8} {patch:5} {stride:6} {statistics.median(forwards):8.0f} {statistics.median(seconds):8.2f} "
            f"{per_input:8.1f}"
        )
    default = ("ours", P.DEFAULT_PATCH, P.DEFAULT_STRIDE)
    captum = ("captum", P.DEFAULT_PATCH, P.DEFAULT_STRIDE)
    if default in occlusion:
        ratio = statistics.median(c[0] for c in occlusion[default]) / statistics.median(c[0] for c in occlusion[captum])
        print(f"default occlusion vs captum's Occlusion (same window, one input per forward): time ratio {ratio:.2f}")


if __name__ == "__main__":
    main()

"""Image speed, measured side by side in one run on this machine; prints ratios.

1. Prediction alone vs prediction + Grad-CAM (the project's split forward) vs a hook-based Grad-CAM
   on the same model and input (what pytorch-grad-cam does: weights that require grad, a forward
   hook keeps the activation, a full backward).
2. Integrated Gradients on the real photos: seconds and |delta| / |f(x) - f(baseline)| per step
   count for the adaptive rule (default) and for captum's default (50 Gauss-Legendre steps).

    python benchmarks/image_speed.py [--model NAME] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from explainers.methods.gradients import integrated_gradients  # noqa: E402
from explainers.tasks.image import ImageSettings, _baseline, explain_image  # noqa: E402
from explainers.inputs.image import decode_image  # noqa: E402
from explainers.inputs.samples import SAMPLES, sample_bytes  # noqa: E402
from models.image_models import load_image_classifier  # noqa: E402
from models.runtime import configure_torch  # noqa: E402
from timing import timed  # noqa: E402

TOLERANCE = 0.05


def hook_grad_cam(classifier, rgb):
    """Reference, done the way pytorch-grad-cam does it: weights that require grad, a forward hook
    keeping the layer's output, and a full backward from the class score."""
    network = classifier.network
    pixels = classifier.preprocess(rgb)
    stage = dict(classifier._stages)[classifier.default_layer]
    kept = {}

    def keep(_module, _inputs, output):
        kept["a"] = output

    network.requires_grad_(True)
    try:
        with stage.register_forward_hook(keep):
            x = pixels
            for _, step in classifier._stages:  # the network's own forward, step by step
                x = step(x)
            logits = classifier._head(x)
        activation = kept["a"]
        activation.retain_grad()
        logits[0, logits[0].argmax()].backward()
        return torch.relu((activation.grad.mean((2, 3), keepdim=True) * activation).sum(1)).detach()
    finally:  # leave the shared model as found: frozen, no .grad
        network.requires_grad_(False)
        for parameter in network.parameters():
            parameter.grad = None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    configure_torch()
    classifier = load_image_classifier(args.model)
    print(f"model: {classifier.info.name} ({classifier.info.source}); torch threads {torch.get_num_threads()}")
    photos = {name: decode_image(sample_bytes(name)).rgb for name in SAMPLES}

    print("\n## Prediction vs prediction + Grad-CAM (median of", args.repeats, "runs, seconds)")
    print(f"{'photo':28} {'predict':>8} {'+GradCAM':>9} {'ratio':>6} {'hook-based':>11} {'ratio':>6}")
    ratios = []
    for name, rgb in photos.items():
        predict = timed(lambda: explain_image(classifier, rgb, ()), args.repeats)[0]
        cam = timed(lambda: explain_image(classifier, rgb, ("gradcam",)), args.repeats)[0]
        hooked = timed(lambda: hook_grad_cam(classifier, rgb), args.repeats)[0]
        ratios.append(cam / predict)
        print(f"{name:28} {predict:8.4f} {cam:9.4f} {cam / predict:6.2f} {hooked:11.4f} {hooked / predict:6.2f}")
    print(f"median ratio prediction+Grad-CAM / prediction: {statistics.median(ratios):.2f} (target <= 1.3)")

    default = ("adaptive", ImageSettings().ig_steps)
    captum_default = ("gausslegendre", 50)
    first = next(iter(photos.values()))
    ig_table(classifier, {"warm-up": first}, "black", [default], quiet=True)
    rules = [("adaptive", n) for n in (16, 32, 48, 64)] + [captum_default, ("gausslegendre", 100)]
    seconds = ig_table(classifier, photos, "black", rules)
    print(
        f"default {default} vs captum default {captum_default}: time ratio "
        f"{np.mean(seconds[default]) / np.mean(seconds[captum_default]):.2f}"
    )
    for kind in ("blurred", "noise"):
        ig_table(classifier, photos, kind, [default, captum_default])


def ig_table(classifier, photos, kind, rules, quiet=False):
    """Per photo and rule: |delta| / |f(x) - f(baseline)| and seconds; returns the seconds."""
    show = (lambda *a: None) if quiet else print
    show(f"\n## Integrated Gradients: |delta| / |f(x) - f(baseline)| and seconds, {kind} baseline")
    show(f"{'photo':28} " + "".join(f"{rule[:8]}{steps:>4}      " for rule, steps in rules))
    worst = {rule: 0.0 for rule in rules}
    seconds = {rule: [] for rule in rules}
    for name, rgb in photos.items():
        pixels = classifier.preprocess(rgb)
        baseline = _baseline(classifier, pixels, kind, 0)
        with torch.no_grad():
            target = int(classifier.logits(pixels)[0].argmax())
        cells = []
        for rule in rules:
            start = time.perf_counter()
            result = integrated_gradients(classifier.logits, pixels, baseline, target, rule[1], rule[0])
            elapsed = time.perf_counter() - start
            share = abs(result.convergence_delta) / abs(result.output_difference)
            worst[rule] = max(worst[rule], share)
            seconds[rule].append(elapsed)
            cells.append(f"{share:6.1%} {elapsed:5.1f}s")
        show(f"{name:28} {'  '.join(cells)}")
    show("\nrule               worst |delta| share   mean seconds   within 5% on every photo")
    for rule in rules:
        ok = "yes" if worst[rule] <= TOLERANCE else "no"
        show(f"{rule[0]:13} {rule[1]:4}   {worst[rule]:17.1%}   {np.mean(seconds[rule]):12.2f}   {ok}")
    return seconds

if __name__ == "__main__":
    main()

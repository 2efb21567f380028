"""The model-randomisation sanity check, timed against the method it checks, in one run on this machine.

For Grad-CAM and for Integrated Gradients at default settings, on the sample photos: the seconds of a
full check (the original map plus one map per randomisation step) against the method's own cost, the
ratio, and (steps + 1), the number of explanations the check makes, as the bound the ratio should stay
under: anything above it is the check's own work (copying, re-initialising, comparing maps), also timed
alone. Then the memory each step's copy adds, and the Spearman similarity per step (what the pass rule
reads).

    python benchmarks/sanity_speed.py [--model NAME] [--repeats N] [--ig-photos N] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explainers.evaluation.sanity import sanity_check  # noqa: E402
from explainers.evaluation.similarity import Comparison  # noqa: E402
from explainers.inputs.image import decode_image  # noqa: E402
from explainers.inputs.samples import SAMPLES, sample_bytes  # noqa: E402
from explainers.tasks.image import explain_image  # noqa: E402
from models.image_models import load_image_classifier  # noqa: E402


def alternating(a, b, repeats: int) -> tuple[float, float, object]:
    """Median seconds of `a` and of `b`, run in turns so that load from other processes hits both alike;
    and b's last result (the caller warms up)."""
    times_a, times_b, result = [], [], None
    for _ in range(repeats):
        start = time.perf_counter()
        a()
        middle = time.perf_counter()
        result = b()
        times_a.append(middle - start)
        times_b.append(time.perf_counter() - middle)
    return statistics.median(times_a), statistics.median(times_b), result


def own_work_per_step(classifier, result, repeats: int = 5) -> tuple[float, float]:
    """Milliseconds per step of what the check adds to the explanations: making the random copies, and
    comparing the maps (both curves), timed without any explanation."""
    names = [part for part, _ in classifier.randomisable_parts()][: len(result.steps)]

    def copies():
        copy = classifier
        for name in names:
            copy = copy.with_random([name], result.seed)

    def comparisons():
        for curve in (result.method, result.reference):
            compare = Comparison(curve.original, curve.signed)
            for scores in curve.maps:
                compare(scores)

    copying, comparing, _ = alternating(copies, comparisons, repeats)
    return copying / len(names) * 1000, comparing / len(names) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--repeats", type=int, default=5, help="runs per Grad-CAM measurement (IG: one)")
    parser.add_argument("--ig-photos", type=int, default=3, help="photos for IG (about 45 s each; 5 = all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 when other work shares the cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classifier = load_image_classifier(args.model)
    print(f"model: {classifier.info.name}; torch threads {torch.get_num_threads()}")
    photos = {name: decode_image(sample_bytes(name)).rgb for name in SAMPLES}
    first = next(iter(photos.values()))
    sanity_check(classifier, first, "gradcam")  # warm-up: first copies and first backward passes

    results = {}
    for method, repeats, names in (
        ("gradcam", args.repeats, list(photos)),
        ("integrated-gradients", 1, list(photos)[: args.ig_photos]),
    ):
        print(f"\n## {method}, default settings (median of {repeats} run(s))")
        print(f"{'photo':28} {'method s':>9} {'check s':>8} {'ratio':>6} {'bound':>6} {'extra ms/step':>14}")
        for name in names:
            rgb = photos[name]
            own, check, result = alternating(
                lambda: explain_image(classifier, rgb, (method,)),
                lambda: sanity_check(classifier, rgb, method),
                repeats,
            )
            steps = len(result.steps)
            extra = (check - (steps + 1) * own) / steps * 1000  # what a step costs beyond one explanation
            print(f"{name:28} {own:9.3f} {check:8.2f} {check / own:6.2f} {steps + 1:6d} {extra:14.1f}")
            results[method, name] = result

    copying, comparing = own_work_per_step(classifier, results["gradcam", next(iter(photos))])
    print(f"\nthe check's own work per step, timed alone: copy + re-initialise {copying:.1f} ms, "
          f"compare {comparing:.1f} ms")

    result = next(iter(results.values()))
    print("\n## Memory of each step's copy (tensors the shared model does not hold)")
    total = sum(t.nbytes for t in (*classifier.network.parameters(), *classifier.network.buffers()))
    for step, size in zip(result.steps, result.step_bytes):
        print(f"{size / 1e6:7.2f} MB  {size / total:6.1%} of the model  {step}")

    print(f"\n## Spearman similarity to the original per step (pass: step {result.rule_step} < {result.threshold})")
    for (method, name), result in results.items():
        values = " ".join(f"{v:6.2f}" for v in result.method.similarity)
        print(f"{method:21} {name:28} {values}  {'pass' if result.passed else 'FAIL'}")
    print(f"{'edges (reference)':21} {'every photo':28} {' '.join(f'{v:6.2f}' for v in result.reference.similarity)}")


if __name__ == "__main__":
    main()

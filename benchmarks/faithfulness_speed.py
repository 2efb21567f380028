"""Faithfulness (deletion and insertion curves), measured side by side in one run on this machine.

1. Cost: one map's two curves at the default steps against one prediction of the same photo, and
   against the forwards they need run one at a time (2 x (steps + 1) predictions): batching should make
   the curves cost at most about those forwards. The references (random and centre) are computed once
   per photo and target and timed on their own.
2. Stability of the default: the areas at 10, 20 and 40 steps against 100 steps.
3. What the numbers say on the sample photos: Grad-CAM and Integrated Gradients against the references.

    python benchmarks/faithfulness_speed.py [--model NAME] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from explainers.evaluation.faithfulness import STEPS, measure_faithfulness  # noqa: E402
from explainers.figures.faithfulness import judgement  # noqa: E402
from explainers.inputs.image import decode_image  # noqa: E402
from explainers.inputs.samples import SAMPLES, sample_bytes  # noqa: E402
from explainers.methods.baselines import image_baseline  # noqa: E402
from explainers.methods.batching import batch_for  # noqa: E402
from explainers.tasks.image import ImageSettings, explain_image  # noqa: E402
from models.image_models import load_image_classifier  # noqa: E402
from models.runtime import configure_torch  # noqa: E402
from timing import timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_torch()
    torch.set_num_threads(2)
    classifier = load_image_classifier(args.model)
    print(f"model: {classifier.info.name}; torch threads: {torch.get_num_threads()}; default steps: {STEPS}\n")

    photos = {name: decode_image(sample_bytes(name)).rgb for name in SAMPLES}
    cost_rows, stability, verdicts = [], [], []
    for name, rgb in photos.items():
        report = explain_image(classifier, rgb, ("gradcam", "integrated-gradients"))
        index = report.target.index
        pixels = classifier.preprocess(rgb)
        empty = image_baseline(pixels, "blurred", *classifier.pixel_range())

        def probability(batch, index=index):
            return classifier.logits(batch).softmax(-1)[:, index]

        maps = {e.method: e.scores for e in report.explanations}
        with torch.no_grad():
            predict, _ = timed(lambda: probability(pixels), args.repeats)
        both, _ = timed(lambda: measure_faithfulness(probability, pixels, empty, {"gradcam": maps["gradcam"]}), args.repeats)
        references, _ = timed(lambda: measure_faithfulness(probability, pixels, empty, {}), args.repeats)
        one_map = both - references
        forwards = 2 * (STEPS + 1)
        cost_rows.append((name, predict, one_map, references, forwards))

        by_steps = {steps: measure_faithfulness(probability, pixels, empty, maps, steps) for steps in (10, 20, 40, 100)}
        for steps in (10, 20, 40):
            drift = max(abs(getattr(by_steps[steps][m].curves, area) - getattr(by_steps[100][m].curves, area))
                        for m in maps for area in ("deletion_auc", "insertion_auc"))
            stability.append((name, steps, drift))
        default = by_steps[STEPS]
        verdicts.append((name, report.target, default))

    print("1. Cost of one map's deletion + insertion curves (default steps), median of", args.repeats)
    print("| photo | predict (s) | one map's curves (s) | / one prediction | / its forwards one by one | references, once (s) |")
    print("|---|---|---|---|---|---|")
    for name, predict, one_map, references, forwards in cost_rows:
        print(f"| {name} | {predict:.4f} | {one_map:.3f} | {one_map / predict:.1f} | {one_map / (forwards * predict):.2f} "
              f"| {references:.3f} |")
    per_call = max(1, batch_for(classifier.preprocess(next(iter(photos.values())))[0].numel()) // 2)
    print(f"({2 * (STEPS + 1)} forwards per map, {per_call} step(s) (deletion and insertion) per forward call; "
          "the references need twice that, once.)\n")

    print("2. Largest change of any area (Grad-CAM, IG; deletion, insertion) against 100 steps")
    print("| steps | median over photos | worst photo |")
    print("|---|---|---|")
    for steps in (10, 20, 40):
        drifts = [d for _, s, d in stability if s == steps]
        print(f"| {steps} | {statistics.median(drifts):.4f} | {max(drifts):.4f} |")

    print("\n3. Areas at the default (blurred replacement): deletion (lower is better) / insertion (higher is better)")
    print("| photo | class (probability) | Grad-CAM | Integrated Gradients | random order | centre first | Grad-CAM vs random | IG vs random |")
    print("|---|---|---|---|---|---|---|---|")
    for name, target, result in verdicts:
        g, ig = result["gradcam"], result["integrated-gradients"]
        pair = lambda c: f"{c.deletion_auc:.3f} / {c.insertion_auc:.3f}"  # noqa: E731
        print(f"| {name} | {target.label.split(',')[0]} ({target.score:.0%}) | {pair(g.curves)} | {pair(ig.curves)} "
              f"| {pair(g.references['random'])} | {pair(g.references['centre'])} | {judgement(g)} | {judgement(ig)} |")


if __name__ == "__main__":
    main()

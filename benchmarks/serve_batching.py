"""The batching gain of the model service: eight students' Grad-CAM requests arriving together, run as one batch
or one at a time, side by side in one run.

1. In process: explainers/tasks/image.first_looks on eight same-size photos stacked in batches of 1, 2, 4
   and 8 (one forward and one backward pass per batch): the raw gain of batching on this machine.
2. On Ray Serve (a local Ray started here): eight concurrent Grad-CAM requests, each a whole explain_image
   call through serving.run, against the image deployment with batching (its default, at most 4 a batch)
   and without (batch 1); the throughput is requests per second of wall time from the first send to the
   last result.

Usage: .venv/bin/python benchmarks/serve_batching.py [--model efficientnet-lite0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.timing import interleaved  # noqa: E402
from explainers.inputs.samples import SAMPLES, sample_bytes  # noqa: E402
from explainers.inputs.image import decode_image  # noqa: E402
from explainers.tasks.image import explain_image, first_look, first_looks  # noqa: E402
from models.image_models import load_image_classifier  # noqa: E402
from models.runtime import configure_torch  # noqa: E402
from serving.deployment import BATCH  # noqa: E402

STUDENTS = 8


def photos(count: int) -> list[np.ndarray]:
    """`count` different photos of one size: the gallery's, cropped to a common shape, then flipped as needed."""
    decoded = [decode_image(sample_bytes(s)).rgb for s in SAMPLES]
    h = min(p.shape[0] for p in decoded)
    w = min(p.shape[1] for p in decoded)
    same = [np.ascontiguousarray(p[:h, :w]) for p in decoded]
    out = []
    for i in range(count):
        photo = same[i % len(same)]
        out.append(np.ascontiguousarray(photo[:, ::-1]) if (i // len(same)) % 2 else photo)
    return out


def in_process(classifier, rgbs, repeats: int) -> dict:
    pixels = [classifier.preprocess(rgb) for rgb in rgbs]
    stacked = torch.cat(pixels)
    layer, cams = classifier.default_layer, ("gradcam",)
    def in_batches_of(n: int):
        return lambda: [first_looks(classifier, stacked[i:i + n], layer, [None] * len(stacked[i:i + n]), cams)
                        for i in range(0, len(stacked), n)]

    calls = {"one at a time": lambda: [first_look(classifier, p, layer, None, cams) for p in pixels]}
    calls.update({f"batches of {n}": in_batches_of(n) for n in (2, 4, 8)})
    return interleaved(calls, repeats)


def on_serve(model: str, rgbs, repeats: int) -> dict:
    import ray
    from ray import serve

    from serving.deployment import app
    from serving.ray_serve import RayServe

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="serve",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    serve.start(proxy_location="Disabled")
    service = RayServe("auto")
    results = {}
    try:
        for name, batch in (("batched", BATCH), ("one at a time", 1)):
            serve.run(app({"kind": "image", "preload": model, "batch": batch}), name="xai-image", route_prefix=None)
            card = service.describe("image", model)
            times = [_together(service, card, rgbs) for _ in range(repeats + 1)][1:]  # the first warms up
            results[name] = statistics.median(times)
            handle = serve.get_deployment_handle("image", app_name="xai-image")
            print(f"  {name}: batch sizes run {handle.batches.remote().result()[-STUDENTS:]}")
            serve.delete("xai-image")
    finally:
        serve.shutdown()
        ray.shutdown()
    return results


def _together(service, card, rgbs) -> float:
    import serving

    barrier = threading.Barrier(len(rgbs) + 1)

    def student(rgb):
        barrier.wait()
        serving.run(card, explain_image, rgb, ("gradcam",))

    threads = [threading.Thread(target=student, args=(rgb,)) for rgb in rgbs]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_torch()
    classifier = load_image_classifier(args.model)
    rgbs = photos(STUDENTS)
    shape = classifier.input_size(*rgbs[0].shape[:2])
    print(f"{classifier.info.name}, {STUDENTS} different photos of {rgbs[0].shape[1]} x {rgbs[0].shape[0]} "
          f"(model input {shape[1]} x {shape[0]}), Grad-CAM, {torch.get_num_threads()} torch threads, median of {args.repeats}")
    here = in_process(classifier, rgbs, args.repeats)
    alone = here["one at a time"]
    print(f"In process, the {STUDENTS} first looks alone: one at a time {alone * 1000:.0f} ms; "
          + ", ".join(f"{name} {seconds * 1000:.0f} ms ({alone / seconds:.2f}x the throughput)"
                      for name, seconds in here.items() if name != "one at a time"))
    served = on_serve(args.model, rgbs, args.repeats)
    for name, seconds in served.items():
        print(f"Ray Serve, {STUDENTS} requests at once, {name}: {seconds:.2f} s, {STUDENTS / seconds:.1f} requests/s")
    print(f"Batching gain on Ray Serve (at most {BATCH} a batch): "
          f"{served['one at a time'] / served['batched']:.2f}x the throughput")


if __name__ == "__main__":
    main()

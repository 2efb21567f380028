"""Audits measured side by side in one run; prints ratios.

Bundled EfficientNet-Lite0 on the sample photos (datasets/sample-images, 48 photos at 6 sizes):
1. the batching gain: predictions in chunks of 16 (one forward pass per input size) vs one at a time;
2. Grad-CAM for every item (`--maps`: the same forward pass plus one backward pass) vs predictions alone
   (goal: at most 1.3x);
3. the Ray engine on this machine (a local Ray, actors leaving one CPU free) vs the local engine on the
   same items, Ray's start-up timed apart;
4. memory over 1,000 items with either engine: the driver's resident memory (and the actor's, for Ray)
   after 100 items and after 1,000.

Each audit predicts every item (no faithfulness sample, no sanity check, no example maps) so that the
numbers are the per-item pipeline: reading, decoding, preprocessing, the model, the results line.

    python benchmarks/audit_speed.py [--repeats N] [--items N] [--skip-ray]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explainers.audit.batches import Loaded  # noqa: E402
from explainers.audit.config import AuditConfig  # noqa: E402
from explainers.audit.dataset import load_dataset  # noqa: E402
from explainers.audit.engine import start_ray  # noqa: E402
from explainers.audit.run import run_audit  # noqa: E402
from models.image_models import load_bundled  # noqa: E402
from models.runtime import configure_torch  # noqa: E402

SAMPLES = ROOT / "datasets" / "sample-images"


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def actor_pids() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    command = handle.read()
            except OSError:
                continue
            if command.startswith(b"ray::") and (b"RayAuditor" in command or b"MapBatches" in command):
                found.append(int(entry))
    return found


def timed(dataset, config, loaded, engine="local", repeats=3) -> float:
    """Median seconds over `repeats` runs of the whole audit (one warm-up run first)."""
    run_audit(dataset, config, loaded, engine=engine)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_audit(dataset, config, loaded, engine=engine)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def many_items(count: int, folder: Path) -> Path:
    """`count` items: the sample photos again and again under new names (hard links, no copies)."""
    photos = sorted(SAMPLES.glob("*/*.jpg"))
    for i in range(count):
        source = photos[i % len(photos)]
        target = folder / source.parent.name / f"{i:05d}-{source.name}"
        target.parent.mkdir(exist_ok=True)
        os.link(source, target)
    return folder


def memory_run(dataset, config, loaded, engine: str) -> tuple[float, float, float, float, float]:
    """Resident MB of the driver (and of the Ray actors) after 100 items and at the end, and the seconds."""
    marks = {}

    def progress(what, done, total):
        if what == "items" and done >= 100 and "early" not in marks:
            marks["early"] = (rss_mb(), sum(rss_mb(p) for p in actor_pids()))
        if what == "items" and done == total:
            marks["late"] = (rss_mb(), sum(rss_mb(p) for p in actor_pids()))

    start = time.perf_counter()
    run_audit(dataset, config, loaded, engine=engine, progress=progress)
    return (*marks["early"], *marks["late"], time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()

    configure_torch()
    classifier = load_bundled()
    loaded = Loaded(classifier, classifier.labels, classifier.info)
    dataset = load_dataset(SAMPLES / "manifest.csv", "image")
    n = len(dataset.items)
    predict = AuditConfig("image", methods=(), sample=0, sanity_items=0)
    print(f"{n} sample photos, bundled EfficientNet-Lite0, torch threads {__import__('torch').get_num_threads()}\n")

    one = timed(dataset, AuditConfig("image", methods=(), sample=0, sanity_items=0, batch_size=1), loaded, repeats=args.repeats)
    chunked = timed(dataset, predict, loaded, repeats=args.repeats)
    cams = timed(dataset, AuditConfig("image", methods=("gradcam",), sample=0, sanity_items=0, maps=("gradcam",)),
                 loaded, repeats=args.repeats)
    print("1. batching (predictions only)")
    print(f"   one at a time      {one:6.2f} s  {n / one:6.1f} items/s")
    print(f"   chunks of 16       {chunked:6.2f} s  {n / chunked:6.1f} items/s   gain {one / chunked:.2f}x")
    print("2. Grad-CAM for every item (--maps) vs predictions alone, chunks of 16")
    print(f"   with Grad-CAM      {cams:6.2f} s  {n / cams:6.1f} items/s   ratio {cams / chunked:.2f}x (goal <= 1.3x)")

    with tempfile.TemporaryDirectory() as folder:
        big = load_dataset(many_items(args.items, Path(folder)), "image")
        early, _, late, _, local_seconds = memory_run(big, predict, loaded, "local")
        print(f"4. {len(big.items)} items, local engine: {local_seconds:.1f} s; memory {early:.0f} MB after 100 items, "
              f"{late:.0f} MB at the end ({late - early:+.0f} MB)")
        if args.skip_ray:
            return
        import ray

        start = time.perf_counter()
        start_ray()  # the engine's own start-up, timed apart from the audits
        started = time.perf_counter() - start
        try:
            on_ray = timed(dataset, predict, loaded, engine="ray", repeats=args.repeats)
            print(f"3. Ray engine on this machine (start-up {started:.1f} s, timed apart)")
            print(f"   local engine       {chunked:6.2f} s  {n / chunked:6.1f} items/s")
            print(f"   Ray engine         {on_ray:6.2f} s  {n / on_ray:6.1f} items/s   overhead {on_ray / chunked:.2f}x")
            early, actors_early, late, actors_late, ray_seconds = memory_run(big, predict, loaded, "ray")
            print(f"   {len(big.items)} items, Ray engine: {ray_seconds:.1f} s (overhead {ray_seconds / local_seconds:.2f}x); "
                  f"memory: driver {early:.0f} -> {late:.0f} MB ({late - early:+.0f} MB), actor {actors_early:.0f} -> "
                  f"{actors_late:.0f} MB ({actors_late - actors_early:+.0f} MB)")
        finally:
            ray.shutdown()
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""A class at once, on loopback only: time to the first map and to every figure, and server memory, for 1, 4
and 8 sessions.

Starts its own server (production config, offline, bundled models) and drives Debian's Chromium
through Playwright, one browser context (its own Streamlit session) per student. Every student
uploads a photo no one else sent (a sample with one pixel changed, so no cache can answer) and all
press Explain together with the page's default methods (Grad-CAM + Integrated Gradients). The
one-session round is the baseline the others are compared with, in the same run. Then one session
explains 100 new photos in a row while the server's resident memory is read every tenth of the way.

Bounded: 14 + RUNS explanations, a 5-minute timeout on each, loopback only.

    python benchmarks/load.py [--runs 100] [--gradcam-only] [--sessions 1,4,8]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.async_api import async_playwright, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explainers.inputs.samples import SAMPLES, sample_bytes  # noqa: E402
from harness.live import CHROMIUM_OPTIONS, LiveServer, Watch  # noqa: E402

SESSIONS = (1, 4, 8)
TIMEOUT_MS = 300_000


class Photos:
    """Photos no one has sent before: the samples in turn, each with one pixel set from a counter."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.samples = [np.asarray(Image.open(io.BytesIO(sample_bytes(name))).convert("RGB")) for name in SAMPLES]
        self.count = 0

    def next(self) -> Path:
        self.count += 1
        pixels = self.samples[self.count % len(self.samples)].copy()
        pixels[0, 0] = (self.count % 256, self.count // 256 % 256, 7)
        path = self.folder / f"photo-{self.count:04d}.png"
        Image.fromarray(pixels).save(path)
        return path


async def student(browser, url: str):
    """A new browser context on the image page, set to upload."""
    context = await browser.new_context(viewport={"width": 1200, "height": 1600})
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_role("link", name="Images (ResNet)").first.click()
    await expect(page.get_by_role("button", name="Explain", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    await page.get_by_text("Upload a photo", exact=True).click()
    return context, page


async def choose(page, photo: Path, gradcam_only: bool) -> None:
    """Upload the photo; the methods form appears with the first one."""
    await page.locator("input[type=file]").set_input_files(str(photo))
    await expect(page.get_by_text(f"{photo.name} ·")).to_be_visible(timeout=TIMEOUT_MS)
    await idle(page)  # the run the upload started is over, so Explain starts a run of its own
    remove = page.get_by_test_id("stMultiSelect").filter(has_text="Methods").get_by_role("button", name="Remove Integrated Gradients")
    if gradcam_only and await remove.count():
        await remove.click()


async def idle(page) -> None:
    await expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=TIMEOUT_MS)


# The first map of this request drawn: a Grad-CAM figure, and no earlier photo's result left on the page.
FIRST_MAP = """() => !document.body.innerText.includes('Showing the last result') &&
    [...document.querySelectorAll('.js-plotly-plot')].some(p => ((p.layout || {}).title || {}).text?.includes('Grad-CAM'))"""


async def explain(page) -> tuple[float, float, bool]:
    """Seconds from pressing Explain to the first map drawn and to every figure drawn, and whether they are
    for the photo chosen."""
    start = time.perf_counter()
    await page.get_by_role("button", name="Explain", exact=True).click()
    await page.wait_for_function(FIRST_MAP, timeout=TIMEOUT_MS, polling=50)
    first = time.perf_counter() - start
    try:  # the previous result stays on screen until this run ends, so wait for the run itself
        await expect(page.get_by_test_id("stApp")).not_to_have_attribute("data-test-script-state", "notRunning", timeout=5_000)
    except AssertionError:
        pass  # it may already be over
    await idle(page)
    methods = await page.get_by_test_id("stMultiSelect").filter(has_text="Methods").locator("[data-tag]").count()
    # predictions, one map per method, and the faithfulness curves (on by default)
    await expect(page.locator(".js-plotly-plot")).to_have_count(2 + methods, timeout=TIMEOUT_MS)
    seconds = time.perf_counter() - start
    stale = await page.get_by_text("Showing the last result").count()  # shown when the result is another photo's
    failed = await page.get_by_text("Something went wrong").count()
    return first, seconds, stale == 0 and failed == 0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def rounds(browser, server: LiveServer, photos: Photos, gradcam_only: bool, sessions=SESSIONS) -> None:
    print("| sessions at once | median s to first map | p95 s | median s to all figures | p95 s | median / 1 session "
          "| server peak MB | each saw its own |")
    print("|---|---|---|---|---|---|---|---|")
    baseline = None
    for count in sessions:
        students = await asyncio.gather(*(student(browser, server.url) for _ in range(count)))
        chosen = [photos.next() for _ in students]
        await asyncio.gather(*(choose(page, photo, gradcam_only) for (_, page), photo in zip(students, chosen)))
        with Watch(server) as watch:
            results = await asyncio.gather(*(explain(page) for _, page in students))
        firsts, times = [first for first, _, _ in results], [seconds for _, seconds, _ in results]
        median = statistics.median(times)
        baseline = baseline or median
        own = "yes" if all(ok for _, _, ok in results) else "NO"
        print(f"| {count} | {statistics.median(firsts):.1f} | {p95(firsts):.1f} | {median:.1f} | {p95(times):.1f} "
              f"| {median / baseline:.2f} | {watch.peak_mb:.0f} | {own} |", flush=True)
        if watch.health_failures:
            print(f"health check failed {watch.health_failures} of {watch.health_checks} times")
        await asyncio.gather(*(context.close() for context, _ in students))


async def in_a_row(browser, server: LiveServer, photos: Photos, runs: int, gradcam_only: bool) -> None:
    context, page = await student(browser, server.url)
    readings, seconds, every = [(0, server.rss_mb())], [], max(1, runs // 10)
    for run in range(1, runs + 1):
        await choose(page, photos.next(), gradcam_only)
        _, elapsed, ok = await explain(page)
        seconds.append(elapsed)
        if not ok:
            print(f"run {run}: the page did not show this photo's result")
        if run % every == 0:
            readings.append((run, server.rss_mb()))
    await context.close()
    print(f"\n{runs} explanations in a row, one session, a new photo each (median {statistics.median(seconds):.1f} s):")
    print("| after run | " + " | ".join(str(run) for run, _ in readings) + " |")
    print("|---|" + "---|" * len(readings))
    print("| server MB | " + " | ".join(f"{mb:.0f}" for _, mb in readings) + " |")
    last, end = readings[-4], readings[-1]  # the last 30% of the runs, once the bounded result caches are full
    print(f"growth over runs {last[0]}-{end[0]}: {end[1] - last[1]:+.0f} MB "
          f"({(end[1] - last[1]) / (end[0] - last[0]):+.2f} MB per explanation); over all {runs}: {end[1] - readings[0][1]:+.0f} MB")


async def main(runs: int, gradcam_only: bool, sessions=SESSIONS) -> None:
    server = LiveServer()
    try:
        with tempfile.TemporaryDirectory() as folder:
            photos = Photos(Path(folder))
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(**CHROMIUM_OPTIONS)
                context, page = await student(browser, server.url)  # the model loads once per server
                await choose(page, photos.next(), gradcam_only)
                await explain(page)
                await context.close()
                print(f"server after warm-up: {server.rss_mb():.0f} MB resident\n")
                print(f"methods: {'Grad-CAM' if gradcam_only else 'the page default, Grad-CAM + Integrated Gradients'}")
                await rounds(browser, server, photos, gradcam_only, sessions)
                if runs:
                    await in_a_row(browser, server, photos, runs, gradcam_only)
                await browser.close()
        print(f"\nhealth check answers at the end: {'yes' if server.healthy() else 'NO'}")
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="explanations in a row for the memory reading")
    parser.add_argument("--gradcam-only", action="store_true", help="students explain with Grad-CAM alone")
    parser.add_argument("--sessions", default=",".join(map(str, SESSIONS)),
                        help="comma-separated sessions at once, one round each (the first is the baseline)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.gradcam_only, tuple(int(n) for n in arguments.sessions.split(","))))

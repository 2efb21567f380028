"""A class at once, on loopback only, in both layouts side by side: the app holding its models (one Streamlit
process, `make run`) and the model service (Ray Serve, `make serve`) with two app replicas behind nginx
(deploy/nginx-replicas.conf). For 1, 8 and 30 students: time from the click to the first map and to the
last figure (median and p95), bytes each student's browser received, the server's peak memory, and
whether every student saw the result of their own photo (checked against the bundled model run here).

Each student is a Chromium browser context (its own Streamlit session) driven by Playwright; every one
uploads a photo no one sent before (a sample with one pixel changed, so no cache can answer) and all press
Explain together with the page's default methods (Grad-CAM + Integrated Gradients, with faithfulness).
The browsers run on the same machine as the server and share its cores: the times include that. The
one-student round of each layout is the baseline its other rounds are compared with. Server memory is
the sum of the resident memory of the server's processes: the Streamlit process; or both app replicas,
nginx and every Ray process (the replicas with their models, Ray's own). Then, optionally, one student
explains --runs new photos in a row while the memory is read, and the model service's batching gain is
measured by benchmarks/serve_batching.py.

    python benchmarks/load.py [--layouts in-process,ray-serve] [--sessions 1,8,30] [--gradcam-only]
                              [--runs 100] [--no-batching]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.async_api import async_playwright, expect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explainers.inputs.samples import SAMPLES, sample_bytes  # noqa: E402
from harness.live import CHROMIUM_OPTIONS, LiveServer, Watch, resident_mb  # noqa: E402

SESSIONS = (1, 8, 30)
LAYOUTS = ("in-process", "ray-serve")
TIMEOUT_MS = 900_000  # the last of 30 students waits for 29 others on two cores


@dataclass
class Layout:
    """A running layout, watched as harness/live.Watch watches a server: its memory and its health check."""

    name: str
    url: str
    rss_mb: Callable[[], float]
    healthy: Callable[..., bool]


@contextlib.contextmanager
def in_process():
    server = LiveServer()
    try:
        yield Layout("in process", server.url, server.rss_mb, server.healthy)
    finally:
        server.stop()


@contextlib.contextmanager
def ray_serve():
    from harness.proxy import ReplicasProxy
    from harness.serve import ModelService

    service = ModelService()
    apps, proxy = [], None
    try:
        before = os.environ.get("XAI_BACKEND")
        os.environ["XAI_BACKEND"] = "ray-serve"  # the replicas' environment, as the README starts them
        try:
            apps = [LiveServer(base_path="xai") for _ in range(2)]
        finally:
            os.environ.pop("XAI_BACKEND") if before is None else os.environ.update(XAI_BACKEND=before)
        proxy = ReplicasProxy([app.port for app in apps])

        def memory() -> float:
            return sum(app.rss_mb() for app in apps) + sum(resident_mb(pid) for pid in _pids(("ray", "nginx")))

        yield Layout("Ray Serve + 2 app replicas", proxy.url, memory, proxy.healthy)
    finally:
        if proxy is not None:
            proxy.stop()
        for app in apps:
            app.stop()
        service.stop()


def _pids(words: tuple[str, ...]) -> list[int]:
    """Processes of Ray (its binaries and Python workers live under a `ray/` folder; its actors are named
    `ray::...`) and of nginx; never this benchmark or the browsers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "chromium" in command or "playwright" in command:
            continue
        if any(f"/{word}/" in command or command.startswith(f"{word}::") or f"sbin/{word}" in command
               for word in words):
            found.append(int(entry.name))
    return found


class Photos:
    """Photos no one has sent before: the samples in turn, each with one pixel set from a counter; and the class
    the bundled model gives each (what its student must see)."""

    def __init__(self, folder: Path):
        from models.image_models import load_bundled

        self.folder = folder
        self.samples = [np.asarray(Image.open(io.BytesIO(sample_bytes(name))).convert("RGB")) for name in SAMPLES]
        self.classifier = load_bundled()
        self.count = 0

    def next(self) -> tuple[Path, int]:
        from explainers.tasks.image import explain_image

        self.count += 1
        pixels = self.samples[self.count % len(self.samples)].copy()
        pixels[0, 0] = (self.count % 256, self.count // 256 % 256, 7)
        path = self.folder / f"photo-{self.count:04d}.png"
        Image.fromarray(pixels).save(path)
        return path, explain_image(self.classifier, pixels).target.index


class Student:
    """A browser context on the image page, counting the bytes the server sends it for its results: WebSocket
    frames and the figures' pictures (media files), as harness/page_weight.py does; not the app's own
    JavaScript, which a browser fetches once and caches."""

    def __init__(self, context, page):
        self.context, self.page = context, page
        self.received = 0
        self._sizes: list[asyncio.Task] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("requestfinished", self._request)

    def _frame(self, payload) -> None:
        self.received += len(payload if isinstance(payload, bytes) else payload.encode())

    def _request(self, request) -> None:
        if "/media/" in request.url:
            self._sizes.append(asyncio.ensure_future(request.sizes()))

    async def bytes_received(self) -> int:
        sizes = await asyncio.gather(*self._sizes, return_exceptions=True)
        return self.received + sum(s["responseBodySize"] for s in sizes if isinstance(s, dict))

    def reset(self) -> None:
        self.received, self._sizes = 0, []

    @classmethod
    async def arrive(cls, browser, url: str) -> Student:
        context = await browser.new_context(viewport={"width": 1200, "height": 1600})
        page = await context.new_page()
        student = cls(context, page)
        await page.goto(url)
        await page.get_by_role("link", name="Images (ResNet)").first.click()
        await expect(page.get_by_role("button", name="Explain", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
        await page.get_by_text("Upload a photo", exact=True).click()
        return student

    async def choose(self, photo: Path, gradcam_only: bool) -> None:
        """Upload the photo; the methods form appears with the first one."""
        page = self.page
        await page.locator("input[type=file]").set_input_files(str(photo))
        await expect(page.get_by_text(f"{photo.name} ·")).to_be_visible(timeout=TIMEOUT_MS)
        await idle(page)  # the run the upload started is over, so Explain starts a run of its own
        remove = page.get_by_test_id("stMultiSelect").filter(has_text="Methods").get_by_role(
            "button", name="Remove Integrated Gradients")
        if gradcam_only and await remove.count():
            await remove.click()

    async def explain(self, expected: int) -> tuple[float, float, bool, int]:
        """Seconds from pressing Explain to the first map drawn and to every figure drawn, whether the result is
        of this student's photo, and the bytes received meanwhile."""
        page = self.page
        self.reset()
        start = time.perf_counter()
        await page.get_by_role("button", name="Explain", exact=True).click()
        await page.wait_for_function(FIRST_MAP, timeout=TIMEOUT_MS, polling=50)
        first = time.perf_counter() - start
        try:  # the previous result stays on screen until this run ends, so wait for the run itself
            await expect(page.get_by_test_id("stApp")).not_to_have_attribute("data-test-script-state", "notRunning",
                                                                            timeout=5_000)
        except AssertionError:
            pass  # it may already be over
        await expect(page.get_by_test_id("stProgress")).to_have_count(0, timeout=TIMEOUT_MS)
        await idle(page)
        methods = await page.get_by_test_id("stMultiSelect").filter(has_text="Methods").locator("[data-tag]").count()
        # predictions, one map per method, and the faithfulness curves (on by default)
        await expect(page.locator(".js-plotly-plot")).to_have_count(2 + methods, timeout=TIMEOUT_MS)
        seconds = time.perf_counter() - start
        text = await page.locator("p", has_text="Explaining:").first.inner_text()
        shown = re.search(r"\(class (\d+),", text)
        own = shown is not None and int(shown.group(1)) == expected and not await page.get_by_text(
            "Showing the last result").count()
        return first, seconds, own, await self.bytes_received()


async def idle(page) -> None:
    await expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning",
                                                                 timeout=TIMEOUT_MS)


# The first map of this request drawn: a Grad-CAM figure, and no earlier photo's result left on the page.
FIRST_MAP = """() => !document.body.innerText.includes('Showing the last result') &&
    [...document.querySelectorAll('.js-plotly-plot')].some(p => ((p.layout || {}).title || {}).text?.includes('Grad-CAM'))"""


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def rounds(browser, layout: Layout, photos: Photos, gradcam_only: bool, sessions) -> list[str]:
    rows, baseline = [], None
    for count in sessions:
        students = await asyncio.gather(*(Student.arrive(browser, layout.url) for _ in range(count)))
        chosen = [photos.next() for _ in students]
        await asyncio.gather(*(s.choose(photo, gradcam_only) for s, (photo, _) in zip(students, chosen)))
        with Watch(layout) as watch:
            results = await asyncio.gather(*(s.explain(expected) for s, (_, expected) in zip(students, chosen)))
        firsts = [r[0] for r in results]
        times = [r[1] for r in results]
        median = statistics.median(times)
        baseline = baseline or median
        own = sum(1 for r in results if r[2])
        kilobytes = statistics.median(r[3] for r in results) / 1024
        rows.append(f"| {layout.name} | {count} | {statistics.median(firsts):.1f} | {p95(firsts):.1f} | {median:.1f} "
                    f"| {p95(times):.1f} | {median / baseline:.2f} | {kilobytes:.0f} | {watch.peak_mb:.0f} "
                    f"| {'all' if own == count else f'{own} of {count}'} |")
        print(rows[-1], flush=True)
        if watch.health_failures:
            print(f"health check failed {watch.health_failures} of {watch.health_checks} times")
        await asyncio.gather(*(s.context.close() for s in students))
    return rows


async def in_a_row(browser, layout: Layout, photos: Photos, runs: int, gradcam_only: bool) -> None:
    student = await Student.arrive(browser, layout.url)
    readings, seconds, every = [(0, layout.rss_mb())], [], max(1, runs // 10)
    for run in range(1, runs + 1):
        photo, expected = photos.next()
        await student.choose(photo, gradcam_only)
        _, elapsed, own, _ = await student.explain(expected)
        seconds.append(elapsed)
        if not own:
            print(f"run {run}: the page did not show this photo's result")
        if run % every == 0:
            readings.append((run, layout.rss_mb()))
    await student.context.close()
    print(f"\n{layout.name}: {runs} explanations in a row, one student, a new photo each "
          f"(median {statistics.median(seconds):.1f} s):")
    print("| after run | " + " | ".join(str(run) for run, _ in readings) + " |")
    print("|---|" + "---|" * len(readings))
    print("| server MB | " + " | ".join(f"{mb:.0f}" for _, mb in readings) + " |")
    last, end = readings[-4], readings[-1]  # the last 30% of the runs, once the bounded result caches are full
    print(f"growth over runs {last[0]}-{end[0]}: {end[1] - last[1]:+.0f} MB "
          f"({(end[1] - last[1]) / (end[0] - last[0]):+.2f} MB per explanation); over all {runs}: "
          f"{end[1] - readings[0][1]:+.0f} MB\n")


async def measure(layout: Layout, photos: Photos, gradcam_only: bool, sessions, runs: int) -> list[str]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**CHROMIUM_OPTIONS)
        warm = await Student.arrive(browser, layout.url)  # the models load once per server
        photo, expected = photos.next()
        await warm.choose(photo, gradcam_only)
        await warm.explain(expected)
        await warm.context.close()
        print(f"{layout.name}: server after warm-up {layout.rss_mb():.0f} MB resident", flush=True)
        rows = await rounds(browser, layout, photos, gradcam_only, sessions)
        if runs:
            await in_a_row(browser, layout, photos, runs, gradcam_only)
        await browser.close()
    print(f"{layout.name}: health check answers at the end: {'yes' if layout.healthy() else 'NO'}\n", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help=f"comma-separated, of {', '.join(LAYOUTS)}")
    parser.add_argument("--sessions", default=",".join(map(str, SESSIONS)),
                        help="comma-separated students at once, one round each (the first is the baseline)")
    parser.add_argument("--gradcam-only", action="store_true", help="students explain with Grad-CAM alone")
    parser.add_argument("--runs", type=int, default=0, help="then explanations in a row, for the memory reading")
    parser.add_argument("--no-batching", action="store_true", help="skip benchmarks/serve_batching.py at the end")
    args = parser.parse_args()
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        parser.error(f"unknown layout {', '.join(sorted(unknown))}; choose from {', '.join(LAYOUTS)}")
    sessions = tuple(int(n) for n in args.sessions.split(","))
    print(f"methods: {'Grad-CAM' if args.gradcam_only else 'the page default, Grad-CAM + Integrated Gradients'}; "
          f"{os.cpu_count()} cores shared by the server and the browsers\n")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        photos = Photos(Path(folder))
        for name in layouts:
            with (in_process() if name == "in-process" else ray_serve()) as layout:
                rows += asyncio.run(measure(layout, photos, args.gradcam_only, sessions, args.runs))
    print("| layout | students at once | median s to first map | p95 s | median s to last figure | p95 s "
          "| median / 1 student | KB per student | server peak MB | saw their own result |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if "ray-serve" in layouts and not args.no_batching:
        print("\nThe batching gain itself (benchmarks/serve_batching.py):", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve_batching.py"), "--repeats", "3"], check=False)


if __name__ == "__main__":
    main()

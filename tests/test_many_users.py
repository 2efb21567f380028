"""A classroom at once: eight browser sessions upload eight different photos to one server and press
Explain together. Each must get its own photo's result (checked against the bundled model run here),
nothing may be served from another user's cache entry, and the health check must keep answering. Both
ways of running the models: in the app's process, and on the model service (Ray Serve, as `make serve`
starts it, with the app holding no model)."""

from __future__ import annotations

import contextlib
import re
import time

import numpy as np
import pytest
from playwright.sync_api import expect

from browser_steps import DEFAULT_IMAGE_FIGURES, SLOW, explaining, new_user, open_page, press_explain, upload, wait_for_figures
from conftest import encode, screenshot
from explainers.tasks.image import explain_image
from explainers.inputs.image import decode_image
from explainers.inputs.samples import SAMPLES, sample_bytes
from harness.live import LiveServer, Watch
from harness.serve import ModelService

SESSIONS = 8
CLASS_SECONDS = 480  # for all eight results together, from the clicks: a generous bound on a busy 2-core machine


def class_photos(chelsea, coffee) -> dict[str, bytes]:
    """Eight different uploads: the five samples, a mirrored and a cropped variant, and two files with the
    same name, format and size whose pixels differ only in one corner (a cache keyed on anything but
    the whole content would hand one the other's result)."""
    patched = chelsea.copy()
    patched[:120, :120] = coffee[:120, :120]
    photos = {f"{name}.png": sample_bytes(name) for name in SAMPLES}
    photos["mirrored cat.png"] = encode(np.ascontiguousarray(chelsea[:, ::-1]), "PNG")
    photos["same-name/photo.png"] = encode(chelsea, "PNG")
    photos["same-name-2/photo.png"] = encode(patched, "PNG")
    assert len(photos) == SESSIONS
    return photos


@pytest.fixture(params=["in-process", "ray-serve"])
def server(request, monkeypatch):
    if request.param == "in-process":
        yield request.getfixturevalue("live_server")
        return
    service = ModelService()
    try:
        monkeypatch.setenv("XAI_BACKEND", "ray-serve")
        app = LiveServer()
        try:
            yield app
        finally:
            app.stop()
    finally:
        service.stop()


def test_eight_sessions_at_once_each_get_their_own_result(browser, server, bundled, tmp_path, chelsea, coffee):
    live_server = server
    expected, files = {}, {}
    for name, data in class_photos(chelsea, coffee).items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        files[name] = path
        expected[name] = explain_image(bundled, decode_image(data).rgb).target
    same_name = [expected["same-name/photo.png"], expected["same-name-2/photo.png"]]
    assert abs(same_name[0].score - same_name[1].score) > 0.01, "the two same-name photos must differ in result"

    with Watch(live_server) as watch, contextlib.ExitStack() as users:
        pages = [users.enter_context(new_user(browser, live_server.url, viewport=(1200, 1600))) for _ in range(SESSIONS)]
        for page, path in zip(pages, files.values()):
            open_page(page, "Images (ResNet)")
            page.get_by_text("Upload a photo", exact=True).click()
            upload(page, path)
            expect(page.get_by_text(f"{path.name} ·")).to_be_visible(timeout=60_000)
        for page in pages:  # all at once, as a class does when the teacher says "now"
            press_explain(page)
        # The last in line sees where it is while it waits, not a blank spinner. (On the model service its
        # first look waits in a batch, which takes one place in the line: it may see "1 request".)
        in_line = re.compile(r"\d+ requests? (is|are) ahead of yours")
        place = pages[-1].get_by_test_id("stProgress").filter(has_text=in_line)
        expect(place).to_be_visible(timeout=SLOW)
        # The class shares two cores: the last result may come long after the first. One deadline for all.
        deadline = time.monotonic() + CLASS_SECONDS
        for number, (page, name) in enumerate(zip(pages, files)):
            wait_for_figures(page, DEFAULT_IMAGE_FIGURES, timeout=max(deadline - time.monotonic(), 10) * 1000)
            figures = page.locator(".js-plotly-plot")
            label, index, probability = explaining(page)
            want = expected[name]
            assert (label, index) == (want.label, want.index), f"session {number} ({name}) got another result"
            assert probability == pytest.approx(want.score, abs=0.0011), name
            expect(figures.nth(1)).to_contain_text(want.label.split(",")[0])  # the heatmap is for it too
            screenshot(page, f"many-users-session-{number}")
    assert watch.health_checks >= 5 and watch.health_failures == 0, (watch.health_checks, watch.health_failures)
    assert live_server.healthy()

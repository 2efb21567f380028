"""A class at the same model, in a real browser: the first maps appear while the slow ones run, a student
whose request waits sees their place in line, and the teacher's home page shows the line per model."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from browser_steps import DEFAULT_IMAGE_FIGURES, SLOW, explaining, new_user, open_page, press_explain, wait_for_figures
from conftest import screenshot


def slow_integrated_gradients(page) -> None:
    """Integrated Gradients' budget to 256 steps (the uniform rule spends all of them): many seconds."""
    settings = page.get_by_test_id("stExpander").filter(has_text="Integrated Gradients settings")
    settings.locator("summary").click()
    settings.get_by_text("uniform trapezoid", exact=True).click()
    settings.get_by_role("slider", name="Steps (gradient evaluations)").press("End")


def test_the_grad_cam_map_shows_while_integrated_gradients_still_runs(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Images (ResNet)")
        slow_integrated_gradients(page)
        press_explain(page)
        started = time.monotonic()
        gradcam = page.locator(".js-plotly-plot").filter(has_text="Grad-CAM (head conv) for")
        expect(gradcam).to_be_visible(timeout=SLOW)
        first_map = time.monotonic() - started
        # Still running: Integrated Gradients holds its place, the bar counts on.
        expect(page.get_by_text("Integrated Gradients: on its way, see the progress bar above.")).to_be_visible()
        expect(page.get_by_test_id("stProgress")).to_be_visible()
        screenshot(page, "first-map-while-ig-runs")
        wait_for_figures(page, DEFAULT_IMAGE_FIGURES)
        expect(page.get_by_text("on its way")).to_have_count(0)
        expect(page.get_by_test_id("stProgress")).to_have_count(0)
        all_figures = time.monotonic() - started
        assert first_map < all_figures / 2, (first_map, all_figures)
        expect(page.get_by_test_id("stException")).to_have_count(0)


def test_a_waiting_student_sees_their_place_and_the_teacher_sees_the_line(browser, live_server):
    """The first student's request is slow (Integrated Gradients' 256 steps) and holds the model; the second
    waits behind it and sees so, the teacher sees one running and one waiting; the first cancels, and the
    second's own result comes at once."""
    with new_user(browser, live_server.url) as first, new_user(browser, live_server.url) as second, \
            new_user(browser, live_server.url) as teacher:
        for page, photo in ((first, "Rocket launch"), (second, "Coffee cup")):  # photos no other test explains
            open_page(page, "Images (ResNet)")  # like this: nothing can come from the server's kept results
            page.get_by_test_id("stSelectbox").filter(has_text="Sample photo").click()
            page.get_by_role("option", name=photo).click()
            expect(page.get_by_text(f"{photo} ·")).to_be_visible(timeout=SLOW)
        slow_integrated_gradients(first)
        press_explain(first)
        expect(first.get_by_test_id("stProgress").filter(has_text="Integrated Gradients")).to_be_visible(timeout=SLOW)
        press_explain(second)
        progress = second.get_by_test_id("stProgress")
        expect(progress.filter(has_text="1 request is ahead of yours")).to_be_visible(timeout=SLOW)
        expect(second.get_by_role("button", name="Cancel", exact=True)).to_be_visible()
        screenshot(second, "waiting-in-line")
        teacher.get_by_text("Show each model's running and waiting requests, live").click()  # the home page
        line = teacher.get_by_test_id("stTable")  # refreshed every 2 s
        cells = line.locator("tbody tr").filter(has_text="EfficientNet-Lite0").locator("td")  # model, running, waiting
        expect(cells.nth(1)).to_have_text("1", timeout=10_000)  # the first student's request
        expect(cells.last).to_have_text("1", timeout=10_000)  # the second student's, waiting
        screenshot(teacher, "teacher-line")
        # The first student gives up: the model is free at the next gradient step, the second's turn comes.
        first.get_by_role("button", name="Cancel", exact=True).click()
        expect(first.get_by_text("Cancelled.", exact=False)).to_be_visible(timeout=60_000)
        expect(progress.filter(has_text="ahead of yours")).to_have_count(0, timeout=60_000)
        wait_for_figures(second, DEFAULT_IMAGE_FIGURES)
        assert explaining(second)[0] == "espresso"  # their own
        expect(cells.nth(1)).to_have_text("0", timeout=10_000)
        expect(cells.last).to_have_text("0", timeout=10_000)

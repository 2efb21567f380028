"""The Audit page in a real browser: download the sample zip, upload it back, run the audit, see the dashboard,
click a cell of the confusion matrix, and download the report as HTML and PDF."""

from __future__ import annotations

import io
import re

from playwright.sync_api import expect
from pypdf import PdfReader

from browser_steps import SLOW, download, new_user, open_page, upload
from conftest import screenshot


def button(page, label: str):
    return page.get_by_test_id("stDownloadButton").filter(has_text=label).locator("button")


def test_sample_zip_uploaded_audited_and_both_reports_downloaded(browser, live_server, tmp_path):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Audit a dataset", ready_button="Run the audit")
        sample = download(page, button(page, "Sample dataset (zip)"))
        assert sample.file_name == "sample-image.zip" and sample.data[:2] == b"PK"
        path = tmp_path / sample.file_name
        path.write_bytes(sample.data)

        page.get_by_text("Upload a zip or a CSV / JSONL", exact=True).click()
        upload(page, path)
        expect(page.get_by_role("button", name="Run the audit")).to_be_enabled(timeout=SLOW)
        page.get_by_role("spinbutton", name="Faithfulness sample (items)").fill("3")
        page.get_by_role("spinbutton", name="Sanity checks (items of that sample)").fill("1")
        page.get_by_role("button", name="Run the audit").click()
        expect(page.get_by_test_id("stMetric").filter(has_text="Accuracy").first).to_contain_text("43.8%", timeout=SLOW)
        for heading in ("Confusion matrix", "Groups", "Calibration", "Most confident errors", "Faithfulness",
                        "Sanity check", "Per class"):
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.get_by_text("sample-image.zip --task image")).to_be_visible()  # the command that reproduces it

        # A click on the first non-empty cell (true espresso, predicted espresso) lists its eight photos.
        chart = page.locator(".js-plotly-plot").first
        chart.scroll_into_view_if_needed()
        listed = page.get_by_text("espresso/coffee-blurred.jpg, espresso/coffee-crop.jpg")
        point = chart.locator(".scatterlayer .point").first
        for _ in range(3):  # the page may still grow below and scroll: bring the cell into view each time
            point.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            box = point.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(300)
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            try:
                expect(listed).to_be_visible(timeout=15_000)
                break
            except AssertionError:
                continue
        expect(listed).to_be_visible()
        screenshot(page, "audit-page")

        html = download(page, button(page, "Report (HTML, self-contained)"))
        assert html.file_name == "audit.html" and "Model audit:" in html.text
        markup = re.sub(r"<script[^>]*>.*?</script>", "", html.text, flags=re.S)  # plotly.js names URLs it never loads
        assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", markup)
        report = page.context.new_page()  # the report opens on its own, offline, and its figures draw
        fetched = []
        report.on("request", lambda r: fetched.append(r.url) if not r.url.startswith(("data:", "about:")) else None)
        report.set_content(html.text)
        expect(report.locator(".plotly-graph-div svg").first).to_be_visible(timeout=60_000)
        # The report's own confusion matrix: a click on "true tabby, predicted Egyptian cat" (row 1 of 6,
        # column 7 of 12) lists the eight photos of the cat.
        area = report.locator("#confusion .nsewdrag").first
        area.scroll_into_view_if_needed()
        box = area.bounding_box()
        x, y = box["x"] + box["width"] * 6.5 / 12, box["y"] + box["height"] * 0.5 / 6
        report.mouse.move(x, y)
        report.wait_for_timeout(300)
        report.mouse.click(x, y)
        expect(report.locator("#cell-items")).to_contain_text("8 item(s): tabby/chelsea-blurred.jpg")
        assert not fetched, fetched[:3]
        report.close()

        pdf = download(page, button(page, "Report (PDF)"))
        assert pdf.file_name == "audit.pdf" and pdf.data[:5] == b"%PDF-"
        reader = PdfReader(io.BytesIO(pdf.data))
        text = "\n".join(p.extract_text() for p in reader.pages)
        assert len(reader.pages) >= 4 and "Confusion matrix" in text and "Reproduce" in text


def test_a_running_audit_shows_its_progress_and_can_be_cancelled(browser, live_server):
    with new_user(browser, live_server.url) as page:
        open_page(page, "Audit a dataset", ready_button="Run the audit")
        page.get_by_role("spinbutton", name="Faithfulness sample (items)").fill("48")  # long enough to catch
        page.get_by_role("spinbutton", name="Seed").fill("7")  # a request no earlier test has made
        page.get_by_role("button", name="Run the audit").click()
        expect(page.get_by_text(re.compile(r"Predicting: \d+ of 48"))).to_be_visible(timeout=SLOW)
        page.get_by_role("button", name="Cancel", exact=True).click()
        expect(page.get_by_text("Cancelled. Press Run the audit to start again.")).to_be_visible(timeout=SLOW)
        expect(page.get_by_test_id("stMetric")).to_have_count(0)  # no result was made up from half the items

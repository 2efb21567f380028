"""The Audit page through Streamlit's headless AppTest: the sample dataset, uploads, bad data, the dashboard."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import models.network
import ui.jobs
from conftest import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "app_pages/audit/page.py"
SECTIONS = ("Results", "Confusion matrix", "Groups", "Calibration", "Most confident errors",
            "Least confident correct answers", "Faithfulness", "Sanity check", "Per class")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.network, "_verdict", None)
    ui.jobs.server_jobs.clear()


def audit_app(task: str = "image") -> AppTest:
    app = AppTest.from_file(APP, default_timeout=300)
    app.run()
    app.switch_page(PAGE).run()
    if task != "image":
        app.radio(key="audit_task").set_value(task).run()
    assert not app.exception
    return app


def run_audit(app: AppTest, sample: int = 2, sanity: int = 1) -> AppTest:
    app.number_input(key="audit_sample").set_value(sample)
    app.number_input(key="audit_sanity").set_value(sanity)
    next(b for b in app.button if b.label == "Run the audit").click().run()
    assert not app.exception
    return app


def test_sample_image_audit_shows_the_whole_dashboard():
    app = run_audit(audit_app())
    assert not app.error, shown(app.error)
    headings = [h.value for h in app.subheader]
    for section in SECTIONS:
        assert section in headings, headings
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Accuracy"] == "43.8%" and metrics["Top-5 accuracy"] == "93.8%"  # as the command line measures
    assert metrics["Evaluated"] == "48 of 48"
    labels = [d.proto.label for d in app.get("download_button")]
    for label in ("Report (HTML, self-contained)", "Report (PDF)", "Per-item results (JSON Lines)", "Sample dataset (zip)"):
        assert label in labels
    text = shown(app.caption)
    assert "python -m explainers audit datasets/sample-images/manifest.csv --task image" in text
    assert "--sample 2" in text and "datasets/sample-images/manifest.csv" in text
    assert len(app.get("plotly_chart")) >= 5  # confusion, two groups, reliability, faithfulness
    assert len(app.get("image")) == 12  # the example maps: six errors, six unsure answers


def test_a_cell_of_the_confusion_matrix_lists_its_items():
    app = run_audit(audit_app(), sample=0, sanity=0)
    cell = app.selectbox(key="audit_cell")
    choice = next(option for option in cell.options if "tabby" in option and "Egyptian cat" in option)
    cell.select(choice).run()
    listed = shown(app.markdown)
    assert "tabby/chelsea-original.jpg" in listed and "espresso/" not in listed


def csv_bytes(rows: list[tuple[str, str, str]]) -> bytes:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label", "source"])
    writer.writerows(rows)
    return buffer.getvalue().encode()


def upload(app: AppTest, name: str, data: bytes, mime: str) -> AppTest:
    app.radio(key="audit_source").set_value("Upload a zip or a CSV / JSONL").run()
    app.file_uploader(key="audit_upload").set_value((name, data, mime)).run()
    assert not app.exception
    return app


def test_uploaded_texts_are_audited_and_an_unusable_one_is_skipped():
    rows = [("A wonderful, warm film.", "positive", "web"), ("Dreadful and dull.", "negative", "web"),
            ("I loved every minute.", "positive", "shop"), ("The worst meal I ever had.", "negative", "shop"),
            ("x" * 100_001, "positive", "shop")]
    app = upload(audit_app("text"), "reviews.csv", csv_bytes(rows), "text/csv")
    app = run_audit(app, sample=2, sanity=0)
    assert not app.error, shown(app.error)
    assert {m.label: m.value for m in app.metric}["Evaluated"] == "4 of 5"
    assert "Skipped items" in [h.value for h in app.subheader]
    assert any("100,000" in str(frame.value.to_dict()) for frame in app.dataframe)  # the reason, in the table
    assert any("source" in frame.value.columns for frame in app.dataframe)  # the group column, tabled


@pytest.mark.parametrize("name, data, message", [
    ("labels.csv", csv_bytes([("Great.", "happy", "x"), ("Bad.", "negative", "x")]), "'happy'"),
    ("rows.csv", b"text,label\nGreat.,\n", "no label"),
    ("bomb.zip", None, "zip bomb"),
    ("escape.zip", None, "outside the archive"),
])
def test_bad_datasets_get_a_clear_message_and_the_page_keeps_working(name, data, message):
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            if name == "bomb.zip":
                archive.writestr("manifest.csv", b"text,label\n" + b"a" * (20 << 20))  # 20 MB in about 20 KB
            else:
                archive.writestr("../manifest.csv", b"text,label\nGreat.,positive\n")
        data = buffer.getvalue()
    app = upload(audit_app("text"), name, data, "application/octet-stream")
    if not app.error:  # problems found only when the audit runs (labels) show after Run
        app = run_audit(app, sample=0, sanity=0)
    assert message in shown(app.error), shown(app.error)
    assert "Traceback" not in shown(app.error)
    # still usable: the sample dataset audits right after
    app.radio(key="audit_source").set_value("The sample dataset").run()
    app = run_audit(app, sample=0, sanity=0)
    assert not app.error and {m.label: m.value for m in app.metric}["Evaluated"] == "72 of 72"

"""Audits with the bundled models: every item predicted as the page would, bad items skipped with their
reason, the report self-contained with every section, the PDF printed, an interrupted audit resumed
to the same numbers, and the Ray engine giving the local engine's per-item results."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from explainers.audit.batches import Loaded
from explainers.audit.config import AuditConfig
from explainers.audit.dataset import load_dataset
from explainers.audit.errors import DatasetError
from explainers.reports.audit import render
from explainers.audit.run import run_audit

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "sample-images"
TEXTS = ROOT / "datasets" / "sample-texts.csv"
SECTIONS = ("Summary", "Per class", "Confusion matrix", "Groups", "Calibration", "Examples", "Faithfulness",
            "Sanity check", "Skipped items", "Reproduce")


@pytest.fixture(scope="module")
def small_images(tmp_path_factory) -> Path:
    """Six sample photos in two class folders, plus a corrupt JPEG and a text file named like a photo."""
    root = tmp_path_factory.mktemp("images")
    for folder, photo in (("espresso", "coffee"), ("tabby", "chelsea")):
        (root / folder).mkdir()
        for variant in ("original", "mirrored", "darker"):
            shutil.copy(SAMPLES / folder / f"{photo}-{variant}.jpg", root / folder)
    good = (SAMPLES / "espresso" / "coffee-original.jpg").read_bytes()
    (root / "espresso" / "cut.jpg").write_bytes(good[: len(good) // 3])
    (root / "tabby" / "notes.jpg").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def image_audit(bundled, small_images, single_thread):
    config = AuditConfig("image", methods=("gradcam",), sample=3, seed=0, sanity_items=1, batch_size=4)
    dataset = load_dataset(small_images, "image")
    return run_audit(dataset, config, Loaded(bundled, bundled.labels, bundled.info))


def test_every_item_is_predicted_as_the_page_predicts_it(image_audit, bundled, small_images):
    summary = image_audit.summary
    assert (summary["items"], summary["evaluated"], summary["skipped"]) == (8, 6, 2)
    by_input = {r["input"]: r for r in image_audit.results}
    from explainers.inputs.image import decode_image
    from explainers.tasks.image import explain_image

    for name, record in by_input.items():
        if "error" in record:
            continue
        data = (small_images / name).read_bytes()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        alone = explain_image(bundled, decode_image(data).rgb).predictions  # one photo, as on the page
        assert record["prediction_index"] == alone[0].index
        assert record["score"] == pytest.approx(alone[0].score, abs=1e-5)
        assert [p["index"] for p in record["top5"]] == [p.index for p in alone]
        assert record["correct"] == (record["label_index"] == alone[0].index)
        assert record["label"] == name.split("/")[0]
    correct = sum(r["correct"] for r in by_input.values() if "error" not in r)
    assert summary["accuracy"] == pytest.approx(correct / 6)


def test_bad_items_are_skipped_with_their_reason(image_audit):
    skipped = {s["input"]: s["error"] for s in image_audit.summary["skipped_items"]}
    assert set(skipped) == {"espresso/cut.jpg", "tabby/notes.jpg"}
    assert all(reason and "Traceback" not in reason for reason in skipped.values())
    assert "not" in skipped["tabby/notes.jpg"].lower()  # e.g. "is not an image file we can read"


def test_faithfulness_sample_and_sanity_check(image_audit):
    from explainers.audit.run import faithfulness_sample

    sampled = [image_audit.results[i] for i in faithfulness_sample(8, 3, 0)]
    assert len(sampled) == 3
    measured = [r for r in image_audit.results if "faithfulness" in r]
    assert measured == [r for r in sampled if "error" not in r]  # a sampled item that cannot be read is skipped
    row = image_audit.summary["faithfulness"]["gradcam"]
    assert row["items"] == len(measured) >= 1 and set(row["references"]) == {"random", "centre"}
    for key in ("deletion_auc", "insertion_auc"):
        low, high = row[key.replace("_auc", "_interval")]
        assert 0 <= low <= row[key] <= high <= 1
    (check,) = image_audit.sanity
    assert check["input"] == measured[0]["input"] and len(check["similarity"]) == len(check["steps"])


def test_the_shared_model_is_left_as_it_was(image_audit, bundled):
    network = bundled.network
    assert all(p.grad is None and not p.requires_grad for p in network.parameters())
    hooks = [m for m in network.modules() if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks]
    assert not hooks and not torch.nn.modules.module._global_forward_hooks


class Loads(HTMLParser):
    """Every attribute that makes a browser fetch something."""

    def __init__(self):
        super().__init__()
        self.fetched, self.headings = [], []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        self._in_heading = tag == "h2"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action") and value:
                self.fetched.append(value)

    def handle_data(self, data):
        if self._in_heading:
            self.headings.append(data.strip())
            self._in_heading = False


def test_report_is_self_contained_and_has_every_section(image_audit):
    html = render(image_audit, "python -m explainers audit DATA --task image --report audit.html")
    parser = Loads()
    parser.feed(html)
    assert parser.headings == list(SECTIONS)
    external = [v for v in parser.fetched if not v.startswith("data:")]
    assert not external, external[:5]
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    for fact in (image_audit.model["weights_sha256"], image_audit.dataset["sha256"], "audit DATA --task image",
                 "espresso/cut.jpg", image_audit.results[0]["sha256"], "torch"):
        assert fact in html
    assert html.count('class="card"') == len(image_audit.examples["confident_errors"]) + len(
        image_audit.examples["unsure_correct"])


def test_report_escapes_what_the_data_says(bundled, tmp_path, single_thread):
    folder = tmp_path / "espresso"
    folder.mkdir()
    shutil.copy(SAMPLES / "espresso" / "coffee-original.jpg", folder / "<img src=x onerror=alert(1)>.jpg")
    dataset = load_dataset(tmp_path, "image")
    audit = run_audit(dataset, AuditConfig("image", methods=(), sample=0), Loaded(bundled, bundled.labels, bundled.info))
    html = render(audit, "cmd")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;.jpg" in html


def test_pdf_has_pages_text_and_figures(image_audit):
    from pypdf import PdfReader

    from explainers.reports.pdf import html_to_pdf

    data = html_to_pdf(render(image_audit, "cmd"))
    reader = PdfReader(__import__("io").BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert 4 <= len(reader.pages) <= 20
    for section in SECTIONS:
        assert section in text
    assert "Accuracy" in text and image_audit.model["weights_sha256"][:16] in text.replace("\n", "")
    width, height = (float(v) for v in reader.pages[0].mediabox[2:])
    assert width == pytest.approx(595.3, abs=2) and height == pytest.approx(841.9, abs=2)  # A4 in points
    assert "predicted class" in text  # drawn axis titles: the figures were rendered before printing


# -- the command line: the --json contract, and resuming after a kill -----------------------------------

def cli(*args: str, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XAI_OFFLINE": "1", "XAI_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "explainers", "audit", *args]
    if kwargs.get("background"):
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


TEXT_ARGS = (str(TEXTS), "--task", "text", "--model", "minilm", "--sample", "4", "--sanity-items", "0",
             "--batch-size", "4", "--json")


def test_interrupted_audit_resumes_to_the_same_numbers(tmp_path):
    whole = cli(*TEXT_ARGS, "--report", str(tmp_path / "whole.html"), "--results", str(tmp_path / "whole.jsonl"))
    assert whole.returncode == 0, whole.stderr[-2000:]
    expected = json.loads(whole.stdout.strip().splitlines()[-1])
    assert list(expected) == ["items", "evaluated", "skipped", "accuracy", "top5_accuracy", "per_class",
                              "per_group", "ece", "faithfulness"]
    assert (expected["items"], expected["evaluated"], expected["skipped"]) == (72, 72, 0)
    assert set(expected["per_group"]) == {"domain", "form"}
    assert "items/s" in whole.stderr and "left" in whole.stderr  # the progress bar

    results = tmp_path / "cut.jsonl"
    running = cli(*TEXT_ARGS, "--report", str(tmp_path / "cut.html"), "--results", str(results), background=True)
    deadline = time.time() + 300
    while time.time() < deadline and (not results.exists() or len(results.read_text().splitlines()) < 8):
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=30)
    lines = results.read_text().splitlines()
    assert 8 <= len(lines) < 72, "the kill came too late to test a resume"
    with results.open("a") as handle:
        handle.write('{"input": "row 99", "label": "pos')  # a line torn by the kill
    resumed = cli(*TEXT_ARGS, "--report", str(tmp_path / "resumed.html"), "--results", str(results))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout.strip().splitlines()[-1]) == expected
    final = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(final) == 72 and len({r["input"] for r in final}) == 72
    assert final[: len(lines) - 1] == [json.loads(line) for line in lines[: len(lines) - 1]]  # kept, not redone
    whole_lines = {json.loads(x)["input"]: json.loads(x) for x in (tmp_path / "whole.jsonl").read_text().splitlines()}
    assert {r["input"]: r for r in final} == whole_lines


def test_cli_skips_bad_items_with_exit_code_1_and_refuses_foreign_results(small_images, tmp_path):
    results = tmp_path / "r.jsonl"
    args = (str(small_images), "--task", "image", "--model", "efficientnet-lite0", "--methods", "none",
            "--results", str(results))
    done = cli(*args, "--report", str(tmp_path / "a.html"), "--json")
    assert done.returncode == 1, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["evaluated"], summary["skipped"]) == (6, 2)
    assert "skipped espresso/cut.jpg:" in done.stderr and "Traceback" not in done.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert {r["input"] for r in lines if "error" in r} == {"espresso/cut.jpg", "tabby/notes.jpg"}
    assert all({"input", "label", "groups"} <= set(r) for r in lines)
    assert all({"prediction", "correct"} <= set(r) for r in lines if "error" not in r)

    other = cli(*args, "--seed", "5", "--report", str(tmp_path / "b.html"))
    assert other.returncode == 2 and "another audit" in other.stderr


def test_cli_names_labels_that_match_no_class(tmp_path):
    (tmp_path / "kitten").mkdir()
    shutil.copy(SAMPLES / "tabby" / "chelsea-original.jpg", tmp_path / "kitten")
    done = cli(str(tmp_path), "--task", "image", "--model", "efficientnet-lite0", "--report", str(tmp_path / "a.html"))
    assert done.returncode == 2 and "'kitten'" in done.stderr and "closest" in done.stderr
    assert not (tmp_path / "a.html").exists()


# -- Ray: the same per-item results as the local engine ---------------------------------------------------

def test_ray_engine_gives_the_local_engines_results(bundled, small_images, single_thread):
    import ray

    config = AuditConfig("image", methods=("gradcam",), sample=2, sanity_items=0, batch_size=3)
    dataset = load_dataset(small_images, "image")
    loaded = Loaded(bundled, bundled.labels, bundled.info)
    local = run_audit(dataset, config, loaded)
    try:
        remote = run_audit(dataset, config, loaded, engine="ray")
    finally:
        ray.shutdown()
    assert remote.engine == "ray" and remote.id == local.id
    for a, b in zip(local.results, remote.results):
        assert set(a) == set(b) and a["input"] == b["input"]
        for key in ("label", "label_index", "prediction", "prediction_index", "correct", "top5_correct", "sha256",
                    "error", "groups"):
            assert a.get(key) == b.get(key), (a["input"], key)
        assert a.get("score", 0) == pytest.approx(b.get("score", 0), abs=1e-5)
        if "faithfulness" in a:
            assert a["faithfulness"]["gradcam"]["deletion_auc"] == pytest.approx(
                b["faithfulness"]["gradcam"]["deletion_auc"], abs=1e-4)
    assert remote.summary["accuracy"] == local.summary["accuracy"]
    assert remote.summary["skipped_items"] == local.summary["skipped_items"]


def test_unknown_methods_and_bad_counts_are_refused(bundled, small_images):
    dataset = load_dataset(small_images, "image")
    loaded = Loaded(bundled, bundled.labels, bundled.info)
    with pytest.raises(DatasetError, match="attention cannot be audited"):
        run_audit(dataset, AuditConfig("image", methods=("attention",)), loaded)
    with pytest.raises(DatasetError, match="0 or more"):
        run_audit(dataset, AuditConfig("image", sample=-1), loaded)


def test_text_items_in_a_padded_batch_score_as_each_alone():
    from explainers.audit.batches import Auditor
    from explainers.audit.dataset import Source
    from explainers.tasks.text import explain_text
    from models.text_models import DEFAULT_DESCRIPTIONS, load_bundled_encoder

    classifier = load_bundled_encoder().classifier(DEFAULT_DESCRIPTIONS)
    texts = ["Fine.", "The soup was cold and the waiter never came back, but the bread was good.", "Not bad at all!"]
    rows = [{"input": f"row {i}", "label": "positive", "label_index": 1, "groups": {}, "text": t} for i, t in enumerate(texts)]
    auditor = Auditor(AuditConfig("text"), Source(members={}), Loaded(classifier, classifier.labels, classifier.info))
    for row, text in zip(auditor(rows), texts):
        alone = explain_text(classifier, text).predictions
        assert row["prediction_index"] == alone[0].index
        assert row["score"] == pytest.approx(alone[0].score, abs=1e-5)
        assert row["sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_maps_for_every_item_equal_each_photos_own_grad_cam(bundled, small_images, single_thread):
    """--maps: the batched backward pass gives each photo the map it gets alone (the page's Grad-CAM, before
    upsampling), for its predicted class; the shared model is left untouched."""
    import numpy as np

    from explainers.inputs.image import decode_image
    from explainers.methods.cam import grad_cam

    dataset = load_dataset(small_images, "image")
    config = AuditConfig("image", methods=("gradcam",), sample=0, sanity_items=0, batch_size=8, maps=("gradcam",))
    audit = run_audit(dataset, config, Loaded(bundled, bundled.labels, bundled.info))
    checked = 0
    for record in audit.results:
        if "error" in record:
            assert "maps" not in record
            continue
        saved = record["maps"]["gradcam"]
        pixels = bundled.preprocess(decode_image((small_images / record["input"]).read_bytes()).rgb)
        with torch.no_grad():
            logits, feature = bundled.forward_from(pixels, bundled.default_layer)
        (gradient,) = torch.autograd.grad(logits[0, record["prediction_index"]], feature)
        alone = grad_cam(feature.detach()[0], gradient[0]).numpy()
        assert saved["shape"] == list(alone.shape) and saved["layer"] == bundled.default_layer
        np.testing.assert_allclose(np.array(saved["values"]), alone, rtol=1e-4, atol=1e-6 * float(alone.max()))
        checked += 1
    assert checked == 6
    assert all(p.grad is None for p in bundled.network.parameters())
    with pytest.raises(DatasetError, match="Maps for every item"):
        run_audit(dataset, AuditConfig("image", maps=("integrated-gradients",)), Loaded(bundled, bundled.labels, bundled.info))

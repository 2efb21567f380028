"""The command line, run as a user would: `python -m explainers image ... --json`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import CAT_CLASSES

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XAI_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "explainers", "image", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, chelsea_jpeg):
    folder = tmp_path_factory.mktemp("cli")
    good = folder / "good.jpg"
    good.write_bytes(chelsea_jpeg)
    bad = folder / "bad.jpg"
    bad.write_text("this is a shopping list, not a photo\n")
    missing = folder / "missing.jpg"
    with Image.open(good) as image:
        size = image.size
    return {"good": str(good), "bad": str(bad), "missing": str(missing), "size": size}


def test_integrated_gradients_batch_with_failures(inputs):
    result = run_cli(
        inputs["good"], inputs["missing"], inputs["bad"], "--method", "integrated-gradients", "--steps", "16", "--json"
    )
    assert result.returncode == 1, result.stderr
    lines = json_lines(result.stdout)
    assert len(lines) == 3, result.stdout

    first, missing, bad = lines
    assert first["input"] == inputs["good"]
    assert "error" not in first
    assert first["model"]["name"] and first["model"]["source"]
    # The default model cannot be had offline: the bundled one answers and the record says why.
    assert "bundled" in first["model"]["source"]
    assert "offline" in first["model"].get("note", "")

    predictions = first["predictions"]
    assert len(predictions) == 5
    scores = [p["score"] for p in predictions]
    assert all(0 <= s <= 1 for s in scores) and sum(scores) <= 1 + 1e-6
    assert scores == sorted(scores, reverse=True)
    assert predictions[0]["index"] in CAT_CLASSES
    assert first["target"]["index"] == predictions[0]["index"]
    assert first["target"]["label"] == predictions[0]["label"]

    assert first["method"] == "integrated-gradients"
    assert first["signed"] is True
    assert first["parameters"]["ig_steps"] == 16 and first["parameters"]["gradient_steps"] <= 16
    attribution = first["attribution"]
    rows, cols = len(attribution), len(attribution[0])
    assert all(len(row) == cols for row in attribution)
    assert first["attribution_shape"] == [rows, cols]
    width, height = inputs["size"]
    assert abs(rows / cols - height / width) <= 2 / min(rows, cols)
    values = [v for row in attribution for v in row]
    assert all(math.isfinite(v) for v in values)
    assert any(v > 0 for v in values) and any(v < 0 for v in values)

    delta = first["convergence_delta"]
    difference = first["explained_output_difference"]
    assert math.isfinite(delta) and math.isfinite(difference) and difference != 0
    assert abs(sum(values) - difference - delta) <= 1e-3 * max(1.0, abs(difference))

    assert missing["input"] == inputs["missing"] and "no such file" in missing["error"]
    assert bad["input"] == inputs["bad"] and "not an image" in bad["error"]
    for failed in (missing, bad):
        assert set(failed) == {"input", "error"}
    assert inputs["missing"] in result.stderr and inputs["bad"] in result.stderr


def test_no_method_and_a_named_target(inputs):
    result = run_cli(inputs["good"], "--model", "efficientnet-lite0", "--method", "none", "--target", "tabby cat", "--json")
    assert result.returncode == 0, result.stderr
    (record,) = json_lines(result.stdout)
    assert record["method"] == "none"
    assert "attribution" not in record and "attribution_shape" not in record and "convergence_delta" not in record
    assert record["target"]["index"] == 281
    assert "tabby" in record["target"]["label"]
    assert len(record["predictions"]) == 5
    assert "note" not in record["model"]  # asked for the bundled model by name: nothing to explain


def test_a_wide_photo_does_not_stop_the_batch(inputs, tmp_path):
    """The module promises that a bad input gets its own message and the others still run.

    A 3:1 panorama makes explain_image raise ValueError (see test_a_wide_photo_is_explained_with_its_aspect),
    which run_image does not catch: the whole batch ends in a traceback.
    """
    wide = tmp_path / "wide.png"
    Image.new("RGB", (600, 200), (90, 140, 200)).save(wide)
    result = run_cli(str(wide), inputs["good"], "--model", "efficientnet-lite0", "--method", "gradcam", "--json")
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = json_lines(result.stdout)
    assert [line["input"] for line in lines] == [str(wide), inputs["good"]]
    assert "attribution" in lines[1]


def test_faithfulness_adds_the_areas_and_references_to_each_record(inputs):
    result = run_cli(inputs["good"], inputs["good"], "--method", "gradcam", "--faithfulness",
                     "--faithfulness-steps", "10", "--json")
    assert result.returncode == 0, result.stderr
    first, second = json_lines(result.stdout)
    f = first["faithfulness"]
    assert f["steps"] == 10 and f["replacement"] == "blurred"
    assert set(f["references"]) == {"random", "centre"}
    for areas in (f, *f["references"].values()):
        assert 0 <= areas["deletion_auc"] <= 1 and 0 <= areas["insertion_auc"] <= 1
    assert f["deletion"][0] == pytest.approx(first["target"]["score"], abs=1e-4)
    assert f["deletion_auc"] < f["references"]["random"]["deletion_auc"]  # Grad-CAM on the cat beats chance
    assert second["faithfulness"] == f  # the same seed: the same numbers

    summary = run_cli(inputs["good"], "--method", "gradcam", "--faithfulness", "--faithfulness-steps", "8",
                      "--replacement", "mean")
    assert summary.returncode == 0, summary.stderr
    assert "faithfulness (8 steps, mean): deletion" in summary.stdout and "random deletion" in summary.stdout


@pytest.mark.parametrize("args, message", [
    (["--method", "gradcam", "--faithfulness", "--faithfulness-steps", "2"], "from 4 to 200"),
    (["--method", "none", "--faithfulness"], "choose a --method other than none"),
    (["--method", "none", "--sanity"], "choose a --method other than none"),
])
def test_bad_faithfulness_settings_are_refused_before_any_input(inputs, args, message):
    result = run_cli(inputs["good"], *args)
    assert result.returncode == 2 and message in result.stderr
    assert result.stdout == ""


def test_sanity_adds_the_randomisation_check_to_each_record(inputs):
    result = run_cli(inputs["good"], "--method", "gradcam", "--sanity", "--json")
    assert result.returncode == 0, result.stderr
    (record,) = json_lines(result.stdout)
    sanity = record["sanity"]
    assert {"steps", "similarity", "ssim", "passed"} <= set(sanity)
    assert sanity["steps"][0] == "head" and sanity["steps"][1] == "head + head conv"
    assert sanity["steps"][-1].endswith("+ stem") and len(sanity["steps"]) == len(sanity["similarity"]) == len(sanity["ssim"])
    assert all(-1 <= v <= 1 for v in sanity["similarity"] + sanity["ssim"])
    assert sanity["passed"] is True and sanity["similarity"][1] < sanity["threshold"]
    assert sanity["reference"]["name"] == "edges" and sanity["reference"]["similarity"] == [1.0] * len(sanity["steps"])
    assert sanity["reference"]["passed"] is False  # what failing looks like


def test_perturbation_methods_record_their_settings_and_a_seed_reproduces_them(inputs):
    result = run_cli(inputs["good"], inputs["good"], "--method", "lime", "--samples", "30", "--segments", "20",
                     "--seed", "5", "--hidden", "black", "--json")
    assert result.returncode == 0, result.stderr
    first, second = json_lines(result.stdout)
    parameters = first["parameters"]
    assert parameters["samples"] == 30 and parameters["seed"] == 5 and parameters["segments_asked"] == 20
    assert parameters["baseline"] == "black" and parameters["output"] == "probability" and first["signed"] is True
    assert second["attribution"] == first["attribution"]  # the same seed, the same map
    occlusion = run_cli(inputs["good"], "--method", "occlusion", "--patch", "112", "--faithfulness",
                        "--faithfulness-steps", "6", "--json")
    assert occlusion.returncode == 0, occlusion.stderr
    (record,) = json_lines(occlusion.stdout)
    assert record["parameters"]["patch"] == 112 and record["parameters"]["stride"] == 56
    assert record["faithfulness"]["steps"] == 6


@pytest.mark.parametrize("args, message", [
    (["--method", "lime", "--samples", "5"], "Samples must be a whole number between 10 and 5000 (got 5)."),
    (["--method", "kernelshap", "--segments", "1"], "Segments must be a whole number between 2 and 500 (got 1)."),
    (["--method", "occlusion", "--patch", "500"], "Patch must be a whole number between 2 and 224 pixels"),
    (["--method", "occlusion", "--patch", "20", "--stride", "30"], "Stride must be a whole number between 1 and 20"),
    (["--method", "occlusion", "--samples", "50"], "--samples applies to smoothgrad, lime and kernelshap"),
])
def test_bad_perturbation_settings_are_refused_before_any_input(inputs, args, message):
    result = run_cli(inputs["good"], "--model", "efficientnet-lite0", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_a_cam_is_written_at_its_grid_and_at_full_size_when_asked(inputs):
    """The record carries the map as computed, its shape, the full-size shape and the photo's; `--full-size` writes
    the resampled map, which is the grid upsampled bilinearly (half-pixel centres) to the full-size shape."""
    grid, full = (run_cli(inputs["good"], "--model", "efficientnet-lite0", "--method", "gradcam", "--json", *flag)
                  for flag in ((), ("--full-size",)))
    assert grid.returncode == full.returncode == 0, grid.stderr[-2000:] + full.stderr[-2000:]
    (coarse,), (fine,) = json_lines(grid.stdout), json_lines(full.stdout)
    width, height = inputs["size"]
    for record in (coarse, fine):
        assert record["photo_shape"] == [height, width]
        assert record["full_size_shape"] == fine["attribution_shape"]
    assert coarse["attribution_shape"] == [7, 11]  # EfficientNet-Lite0's last stage at a 224 x 337 input
    assert fine["attribution_shape"] == [224, 337]
    cells = np.asarray(coarse["attribution"], dtype=np.float32)
    upsampled = cv2.resize(cells, (337, 224), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(upsampled, np.asarray(fine["attribution"]), rtol=1e-4, atol=1e-5 * cells.max())
    assert len(grid.stdout) * 50 < len(full.stdout)

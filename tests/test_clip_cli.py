"""The image-text command line, run as a user would: `python -m explainers clip ... --json`.

Each run with the bundled ConSE loads two models (~7-10 s), so each test asks several things of one run;
runs that fail before a model loads, and runs on the tiny CLIP, are quick."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import encode
from explainers.inputs.image import decode_image
from explainers.inputs.samples import sample_bytes
from models.image_text_models import DEFAULT_CLIP_MODEL

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ("a photo of a cat", "a cup of coffee", "a rocket")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XAI_OFFLINE": "1", "XAI_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "explainers", "clip", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("clip-cli")
    cat = folder / "cat.png"
    cat.write_bytes(sample_bytes("Cat (Chelsea)"))
    coffee = folder / "coffee.jpg"
    coffee.write_bytes(encode(decode_image(sample_bytes("Coffee cup")).rgb, "JPEG", quality=90))
    wide = folder / "wide.png"
    wide.write_bytes(encode(np.random.default_rng(0).integers(0, 256, (60, 180, 3), dtype=np.uint8), "PNG"))
    shapes = {str(path): decode_image(path.read_bytes()).rgb.shape[:2] for path in (cat, coffee, wide)}
    return {"cat": str(cat), "coffee": str(coffee), "wide": str(wide), "missing": str(folder / "missing.png"),
            "shapes": shapes}


def check_common(record: dict, path: str, method: str, prompts) -> None:
    assert record["input"] == path
    assert "error" not in record
    assert record["model"]["name"] and record["model"]["source"]
    assert record["how"]
    assert record["prompts"] == list(prompts)
    predictions = record["predictions"]
    assert [p["index"] for p in predictions] == list(range(len(prompts)))  # one per prompt, in prompt order
    assert [p["label"] for p in predictions] == list(prompts)
    scores = [p["score"] for p in predictions]
    assert all(0 <= s <= 1 for s in scores) and abs(sum(scores) - 1) < 1e-4
    assert record["method"] == method
    assert {"index", "label"} <= set(record["target"])
    assert record["target"]["label"] == prompts[record["target"]["index"]]


def check_aspect(record: dict, shape, grid: tuple[int, int] | None = None) -> np.ndarray:
    """The map as computed (its `grid`, when known), the full-size shape at the photo's aspect, the photo's shape."""
    values = np.asarray(record["attribution"], dtype=float)
    assert values.ndim == 2 and list(values.shape) == record["attribution_shape"]
    assert np.isfinite(values).all() and (values >= 0).all() and values.max() > 0
    assert record["photo_shape"] == list(shape)
    (h, w), (sh, sw) = shape, record["full_size_shape"]
    assert abs(sh / sw - h / w) <= 0.05 * h / w, f"map {sh}x{sw} lacks the photo's aspect {h}x{w}"
    if grid is not None:
        assert values.shape == grid
    return values


def test_conse_gradcam_batch_with_a_missing_file(photos):
    result = run_cli(photos["cat"], photos["missing"], photos["coffee"], "--prompts", *PROMPTS,
                     "--model", "conse", "--method", "gradcam", "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = json_lines(result.stdout)
    assert len(lines) == 3, result.stdout
    cat, missing, coffee = lines
    assert missing == {"input": photos["missing"], "error": "no such file"}
    assert "no such file" in result.stderr
    for record, path, subject in ((cat, photos["cat"], 0), (coffee, photos["coffee"], 1)):
        check_common(record, path, "gradcam", PROMPTS)
        assert "ConSE" in record["model"]["name"] and "bundled" in record["model"]["source"]
        assert record["target"]["index"] == subject, record["predictions"]  # the best match by default
        assert record["layer"]
        check_aspect(record, photos["shapes"][path])


def test_conse_word_relevance_with_a_template_and_a_target(photos):
    result = run_cli(photos["cat"], "--prompts", "cat", "dog", "cat", "--template", "a photo of a {}",
                     "--model", "conse", "--method", "text-integrated-gradients", "--target", "1", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = json_lines(result.stdout)
    prompts = ("a photo of a cat", "a photo of a dog")
    check_common(record, photos["cat"], "text-integrated-gradients", prompts)
    assert any("twice" in note for note in record["notes"]), record["notes"]
    assert "twice" in result.stderr  # the notes are said once on stderr too
    assert record["predictions"][0]["score"] > record["predictions"][1]["score"]  # the cat wins...
    assert record["target"]["index"] == 1  # ...but the dog was asked for
    tokens, values = record["tokens"], record["attribution"]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "dog" in tokens
    assert len(values) == len(tokens)
    assert record["special_tokens"] == [0, len(tokens) - 1]
    assert values[0] == 0 and values[-1] == 0
    delta, difference = record["convergence_delta"], record["explained_output_difference"]
    assert abs(delta) <= 0.05 * abs(difference)
    assert sum(values) - difference == pytest.approx(delta, abs=1e-3)
    assert "attribution_shape" not in record


def test_default_model_offline_is_conse_and_relevancy_exits_2(photos):
    result = run_cli(photos["cat"], "--prompts", *PROMPTS, "--method", "relevancy", "--json")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout.strip() == ""
    assert "Traceback" not in result.stderr
    assert "ConSE" in result.stderr
    assert DEFAULT_CLIP_MODEL in result.stderr and "offline" in result.stderr  # the note says why
    assert "relevancy needs a ViT" in result.stderr


def test_tiny_clip_relevancy_gradcam_layer_and_summary(photos, tiny_clip_dir):
    directory = str(tiny_clip_dir)
    relevancy = run_cli(photos["wide"], photos["cat"], "--prompts", "a cat", "a dog", "--model", directory,
                        "--method", "relevancy", "--json")
    assert relevancy.returncode == 0, relevancy.stderr[-2000:]
    records = json_lines(relevancy.stdout)
    assert len(records) == 2
    for record, path in zip(records, (photos["wide"], photos["cat"])):
        check_common(record, path, "relevancy", ("a cat", "a dog"))
        assert record["model"] == {"name": directory, "source": "local directory", "note": ""}
        check_aspect(record, photos["shapes"][path], grid=(4, 4))  # the tiny ViT's patches, as computed

    full = run_cli(photos["wide"], "--prompts", "a cat", "a dog", "--model", directory, "--method", "relevancy",
                   "--full-size", "--json")
    assert full.returncode == 0, full.stderr[-2000:]
    (resampled,) = json_lines(full.stdout)
    values = check_aspect(resampled, photos["shapes"][photos["wide"]], grid=tuple(resampled["full_size_shape"]))
    patches = np.asarray(records[0]["attribution"])
    averaged = cv2.resize(values.astype(np.float32), (4, 4), interpolation=cv2.INTER_AREA)
    assert np.corrcoef(averaged.ravel(), patches.ravel())[0, 1] > 0.9  # the same map, resampled

    cam = run_cli(photos["wide"], "--prompts", "a cat", "a dog", "--model", directory, "--method", "gradcam",
                  "--layer", "block 1", "--target", "0", "--json")
    assert cam.returncode == 0, cam.stderr[-2000:]
    (record,) = json_lines(cam.stdout)
    assert record["layer"] == "block 1" and record["target"]["index"] == 0
    check_aspect(record, photos["shapes"][photos["wide"]], grid=(4, 4))

    summary = run_cli(photos["wide"], "--prompts", "a cat", "a dog", "--model", directory,
                      "--method", "text-integrated-gradients")
    assert summary.returncode == 0, summary.stderr[-2000:]
    assert summary.stdout.startswith(photos["wide"])
    assert "word relevance for prompt" in summary.stdout and "convergence delta" in summary.stdout
    assert "<|startoftext|>:+0.000" in summary.stdout


def test_unknown_layer_exits_2(photos, tiny_clip_dir):
    result = run_cli(photos["wide"], "--prompts", "a cat", "a dog", "--model", str(tiny_clip_dir), "--layer", "block 9")
    assert result.returncode == 2
    assert "unknown layer 'block 9'" in result.stderr and "block 1, block 2" in result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (("IMAGE",), "the following arguments are required: --prompts"),
        (("IMAGE", "--prompts", " ", ""), "at least one prompt"),
        (("IMAGE", "--prompts", "cat", "--template", "a photo of a"), "needs {}"),
        (("IMAGE", "--prompts", "cat", "--method", "integrated-gradients"), "invalid choice"),
    ],
    ids=["no-prompts", "blank-prompts", "template-without-braces", "unknown-method"],
)
def test_bad_arguments_are_argparse_errors(photos, args, message):
    result = run_cli(*(photos["cat"] if a == "IMAGE" else a for a in args))
    assert result.returncode == 2
    assert "usage:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == ""

"""The text command line, run as a user would: `python -m explainers text ... --json`.

Each run loads a model (~3 s), so each test asks several things of one run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOOD, BAD = "The movie was wonderful.", "The service was horrible."


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XAI_OFFLINE": "1", "XAI_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "explainers", "text", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def check_common(record: dict, text: str, method: str, labels: set[str]) -> None:
    assert record["input"] == text
    assert "error" not in record
    assert record["model"]["name"] and record["model"]["source"]
    assert "bundled" in record["model"]["source"]
    predictions = record["predictions"]
    assert {p["label"] for p in predictions} == labels and len(predictions) == len(labels)
    assert all(set(p) >= {"index", "label", "score"} for p in predictions)
    scores = [p["score"] for p in predictions]
    assert all(0 <= s <= 1 for s in scores) and abs(sum(scores) - 1) < 1e-4
    assert scores == sorted(scores, reverse=True)
    assert sorted(p["index"] for p in predictions) == list(range(len(labels)))
    assert record["method"] == method
    assert {"index", "label"} <= set(record["target"])
    tokens = record["tokens"]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and len(tokens) >= 3


def test_integrated_gradients_batch_with_an_empty_text():
    result = run_cli(GOOD, "", BAD, "--model", "minilm", "--method", "integrated-gradients", "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = json_lines(result.stdout)
    assert len(lines) == 3, result.stdout
    good, empty, bad = lines

    for record, text, label in ((good, GOOD, "positive"), (bad, BAD, "negative")):
        check_common(record, text, "integrated-gradients", {"negative", "positive"})
        assert record["predictions"][0]["label"] == label
        assert record["target"]["label"] == label and record["target"]["index"] == record["predictions"][0]["index"]
        values = record["attribution"]
        assert len(values) == len(record["tokens"]) and all(math.isfinite(v) for v in values)
        assert values[0] == 0 and values[-1] == 0
        delta, difference = record["convergence_delta"], record["explained_output_difference"]
        assert math.isfinite(delta) and difference != 0
        assert abs(delta) <= 0.05 * abs(difference)
        assert abs(sum(values) - difference - delta) <= 1e-3 * max(1.0, abs(difference))
        assert "attention" not in record and "rollout" not in record
        top = max(record["words"], key=lambda w: abs(w["attribution"]))
        assert top["word"] == text.split()[-1].rstrip(".")  # "wonderful", "horrible"

    assert set(empty) == {"input", "error"}
    assert empty["input"] == "" and "empty" in empty["error"]
    assert "text 2" in result.stderr


def test_attention_with_a_named_target():
    result = run_cli(GOOD, "--model", "minilm", "--method", "attention", "--target", "negative", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = json_lines(result.stdout)
    check_common(record, GOOD, "attention", {"negative", "positive"})
    assert record["target"]["label"] == "negative" and record["target"]["index"] == 0
    assert record["predictions"][0]["label"] == "positive"
    size = len(record["tokens"])
    attention = record["attention"]
    assert len(attention) == 6 and all(len(layer) == 12 for layer in attention)
    assert record["attention_shape"] == [6, 12, size, size]
    for layer in attention:
        for head in layer:
            assert len(head) == size
            for row in head:
                assert len(row) == size and abs(sum(row) - 1) < 1e-3
    assert "attribution" not in record and "rollout" not in record


def test_rollout_with_custom_labels():
    texts = ("I loved every minute of it.", "I hated every minute of it.")
    result = run_cli(
        *texts, "--model", "minilm", "--method", "rollout",
        "--label", "good=This is great.", "--label", "bad=This is awful.", "--json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = json_lines(result.stdout)
    assert len(lines) == 2
    for record, text, expected in zip(lines, texts, ("good", "bad")):
        check_common(record, text, "rollout", {"good", "bad"})
        assert record["predictions"][0]["label"] == expected, record["predictions"]
        size = len(record["tokens"])
        rollout = record["rollout"]
        assert len(rollout) == size and all(len(row) == size for row in rollout)
        assert all(abs(sum(row) - 1) < 1e-3 for row in rollout)
        assert "attention" not in record and "attribution" not in record


@pytest.mark.parametrize("label", ["good", "=This is great.", "good="])
def test_a_bad_label_format_exits_2_with_a_message(label):
    result = run_cli(GOOD, "--model", "minilm", "--label", label)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "NAME=DESCRIPTION" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_summary_for_a_trained_model_ignores_labels(tiny_bert_dir):
    result = run_cli(GOOD, "--model", str(tiny_bert_dir), "--label", "good=This is great.", "--steps", "16")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "local directory" in result.stderr
    assert "--label is ignored" in result.stderr
    out = result.stdout
    assert repr(GOOD) in out and "negative" in out and "positive" in out
    assert "Integrated Gradients for" in out and "convergence delta" in out
    assert "wonderful" in out


def test_word_methods_with_faithfulness_and_the_sanity_check(tmp_path):
    result = run_cli(GOOD, GOOD, "--model", "minilm", "--method", "kernelshap", "--samples", "40", "--seed", "2",
                     "--faithfulness", "--faithfulness-steps", "6", "--sanity", "--json")
    assert result.returncode == 0, result.stderr
    first, second = json_lines(result.stdout)
    assert first["method"] == "kernelshap" and first["parameters"]["samples"] == 40 and first["parameters"]["seed"] == 2
    assert max(first["words"], key=lambda w: w["attribution"])["word"] == "wonderful"
    f = first["faithfulness"]
    assert f["steps"] == 5 and f["replacement"] == "pad" and set(f["references"]) == {"random"}  # 4 words and "."
    assert 0 <= f["deletion_auc"] <= 1 and 0 <= f["insertion_auc"] <= 1
    sanity = first["sanity"]
    assert {"steps", "similarity", "ssim", "passed"} <= set(sanity) and sanity["steps"][0] == "layer 6"
    assert sanity["reference"] == {"name": "word lengths", "steps": sanity["steps"], "similarity": [1.0] * 7,
                                   "ssim": [1.0] * 7, "passed": False}
    assert second == first  # the same seed, the same numbers


@pytest.mark.parametrize("args, message", [
    (["--method", "attention", "--faithfulness"], "--faithfulness checks a word map"),
    (["--method", "rollout", "--sanity"], "--sanity checks a word map"),
    (["--method", "occlusion", "--samples", "30"], "--samples applies to lime and kernelshap"),
    (["--method", "lime", "--samples", "3"], "Samples must be a whole number between 10 and 5000 (got 3)."),
    (["--method", "occlusion", "--faithfulness", "--faithfulness-steps", "1"], "from 4 to 200"),
])
def test_bad_word_method_settings_are_refused_before_any_text(args, message):
    result = run_cli(GOOD, "--model", "minilm", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stdout == ""

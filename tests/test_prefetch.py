"""The teacher's prefetch command: a clear answer offline, the right files online, every model tried."""

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import models.prefetch as prefetch_module
from models.prefetch import NAMED_MODELS, files_to_fetch, prefetch

ROOT = Path(__file__).resolve().parents[1]


def test_offline_it_says_so_quickly_and_exits_2():
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "models.prefetch"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert "cannot be reached" in result.stderr and "nothing was downloaded" in result.stderr
    assert time.monotonic() - start < 30  # an import and a message, never transformers' retry loop


def test_only_loading_files_are_fetched_and_bin_weights_only_without_safetensors():
    with_safetensors = files_to_fetch(["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5"])
    assert "*.safetensors" in with_safetensors and not any(".bin" in p for p in with_safetensors)
    assert not any(".h5" in p or "msgpack" in p for p in with_safetensors)
    assert any(".bin" in p for p in files_to_fetch(["config.json", "pytorch_model.bin"]))


def test_online_every_named_model_is_tried_and_one_failure_is_reported(monkeypatch):
    monkeypatch.setattr(prefetch_module, "hub_reachable", lambda: True)
    calls = []

    def download(model_id, allow_patterns):
        calls.append((model_id, tuple(allow_patterns)))
        if model_id == NAMED_MODELS[1]:
            raise OSError("connection reset\nsecond line")
        return f"/cache/{model_id}"

    out = io.StringIO()
    code = prefetch(list_files=lambda model_id: ["config.json", "model.safetensors"], download=download, out=out)
    assert code == 1
    assert [model for model, _ in calls] == list(NAMED_MODELS)
    text = out.getvalue()
    assert f"could not download {NAMED_MODELS[1]}: connection reset" in text and "second line" not in text
    assert "1 of 3 models could not be downloaded" in text


def test_online_success_says_the_app_now_runs_offline(monkeypatch):
    monkeypatch.setattr(prefetch_module, "hub_reachable", lambda: True)
    out = io.StringIO()
    code = prefetch(list_files=lambda model_id: ["model.safetensors"], download=lambda m, allow_patterns: "/cache", out=out)
    assert code == 0 and "runs without a network" in out.getvalue()

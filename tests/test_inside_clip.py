"""Inside an image-text model: the embedding space's similarities give exactly the page's probabilities, and
ConSE says what its "image embedding" really is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import encode
from explainers.inside.clip import inside_clip
from explainers.tasks.clip import PromptError, explain_image_text

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["a photo of a cat", "a cup of coffee", "a photo of a dog"]


@pytest.mark.parametrize("which", ["tiny_clip", "conse"])
def test_the_similarities_give_the_pages_probabilities(which, request, chelsea, coffee):
    model = request.getfixturevalue(which)
    record = inside_clip(model, [chelsea, coffee], PROMPTS, names=["cat.jpg", "coffee.jpg"])
    for row, photo in enumerate((chelsea, coffee)):
        page = explain_image_text(model, [chelsea, coffee], PROMPTS, image_index=row)
        np.testing.assert_allclose(record.probabilities[row], [p.score for p in page.predictions], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(record.image_embeddings, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(record.prompt_embeddings, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(record.logits, model.scale * record.similarity)
    assert record.points.shape == (5, 2) and 0 < record.point_variance[1] <= record.point_variance[0] <= 1
    assert "principal components" in record.projection


def test_conse_says_its_image_embedding_is_a_mixture_of_class_names(conse, chelsea):
    record = inside_clip(conse, [chelsea], PROMPTS)
    assert record.embedding_is.startswith("Not a learned image embedding")
    (mixture,) = record.mixtures
    assert len(mixture) == conse.TOP_CLASSES and sum(w for _, w in mixture) == pytest.approx(1, abs=1e-6)
    assert "cat" in mixture[0][0]
    # The embedding is exactly that mixture of the class-name embeddings, made unit length.
    index = {label: i for i, label in enumerate(conse.classifier.labels)}
    mix = sum(w * conse.class_embeddings[index[label]].double().numpy() for label, w in mixture)
    np.testing.assert_allclose(record.image_embeddings[0], mix / np.linalg.norm(mix), atol=1e-5)


def test_bad_prompts_and_no_photo(tiny_clip, chelsea):
    with pytest.raises(PromptError, match="at least one prompt"):
        inside_clip(tiny_clip, [chelsea], ["  ", ""])
    with pytest.raises(ValueError, match="no image"):
        inside_clip(tiny_clip, [], PROMPTS)
    single = inside_clip(tiny_clip, [chelsea], ["a cat"])  # two points: one component, the other empty
    assert single.probabilities[0, 0] == pytest.approx(1) and single.point_variance[1] == 0
    assert any("single prompt" in note for note in single.notes)


def test_the_command_line_places_every_readable_photo(tmp_path, chelsea, tiny_clip_dir):
    photo, text = tmp_path / "cat.png", tmp_path / "notes.txt"
    photo.write_bytes(encode(chelsea, "PNG"))
    text.write_text("not an image")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XAI_OFFLINE": "1", "XAI_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "explainers", "inside", "clip", str(photo), str(text), "--prompts",
                             "cat", "dog", "--template", "a photo of a {}", "--model", str(tiny_clip_dir), "--json"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1
    error, record = (json.loads(line) for line in result.stdout.splitlines())
    assert error["input"] == str(text) and "image" in error["error"]
    assert record["images"] == [str(photo)] and record["prompts"] == ["a photo of a cat", "a photo of a dog"]
    assert sum(record["probabilities"][0]) == pytest.approx(1, abs=1e-5)

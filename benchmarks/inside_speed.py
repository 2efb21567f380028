"""What the "Inside the model" views cost, side by side in one run: each against the prediction its page
makes for the same input, and a click (a stage, a head, a token) against the same.

- Images (bundled EfficientNet-Lite0, a 451 x 300 photo): the prediction (one forward); Grad-CAM at the last
  stage as the page computes it; the whole inside view (diagram, feature maps, Grad-CAM at every stage from
  one forward and one backward, the head's contributions); a click on a stage (picking its record).
- Text (bundled MiniLM; BERT-base size with random weights, what the named BERT costs): the prediction (the
  page's forward pass with attention); the inside view (the same pass with hidden states, then each layer's
  query, key and value projections); a click on a head and token (the step-by-step arithmetic from the record).
- Image + text (bundled ConSE, 3 photos x 4 prompts): the probabilities vs the embedding-space view.

    python benchmarks/inside_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from explainers.inside.clip import inside_clip  # noqa: E402
from explainers.inside.image import inside_image  # noqa: E402
from explainers.inside.text import inside_text  # noqa: E402
from explainers.inputs.image import decode_image  # noqa: E402
from explainers.inputs.samples import sample_bytes  # noqa: E402
from explainers.tasks.clip import explain_image_text  # noqa: E402
from explainers.tasks.image import explain_image  # noqa: E402
from explainers.tasks.text import explain_text  # noqa: E402
from models.image_models import load_bundled  # noqa: E402
from models.image_text_models import load_bundled_conse  # noqa: E402
from models.runtime import configure_torch  # noqa: E402
from models.text_models import text_classifier  # noqa: E402
from text_speed import bert_base_random  # noqa: E402
from timing import timed  # noqa: E402

SENTENCE = ("The film starts slowly and the first hour drags, but the last act is moving, the acting is superb "
            "and I left the cinema smiling.")


def row(name: str, seconds: float, reference: float) -> None:
    print(f"  {name:<58} {seconds * 1000:8.1f} ms   {seconds / reference:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    repeats = parser.parse_args().repeats
    configure_torch()
    print(f"torch threads: {torch.get_num_threads()}; median of {repeats} after a warm-up; ratio to the prediction")

    import skimage.data

    classifier = load_bundled()
    photo = skimage.data.chelsea()
    predict, _ = timed(lambda: explain_image(classifier, photo, ()), repeats)
    print("\nImages: EfficientNet-Lite0 (bundled), 451 x 300 photo")
    row("prediction (the page's forward pass)", predict, predict)
    row("Grad-CAM at the last stage, as the page computes it", timed(lambda: explain_image(classifier, photo, ("gradcam",)), repeats)[0], predict)
    seconds, record = timed(lambda: inside_image(classifier, photo), repeats)
    row("inside view: diagram, feature maps, Grad-CAM at all 9 stages, head", seconds, predict)
    row("a click on a stage (no model call)", timed(lambda: record.stage("stage 4"), repeats)[0], predict)

    minilm = text_classifier("minilm")
    for model in (minilm, bert_base_random(minilm.tokenizer)):
        predict, _ = timed(lambda: explain_text(model, SENTENCE, ()), repeats)
        print(f"\nText: {model.info.name}, {len(model.encode(SENTENCE).tokens)} tokens")
        row("prediction (the page's forward pass with attention)", predict, predict)
        seconds, record = timed(lambda: inside_text(model, SENTENCE), repeats)
        row("inside view: states, queries, keys, values, readout per layer", seconds, predict)
        row("a click on a head and token (no model call)", timed(lambda: record.step_by_step(2, 3, 5), repeats)[0], predict)

    conse = load_bundled_conse()
    photos = [decode_image(sample_bytes(name)).rgb for name in ("Cat (Chelsea)", "Coffee cup", "Astronaut (Eileen Collins)")]
    prompts = ["a cat", "a cup of coffee", "an astronaut", "a dog"]
    predict, _ = timed(lambda: explain_image_text(conse, photos, prompts), repeats)
    print("\nImage + text: ConSE (bundled), 3 photos x 4 prompts")
    row("probabilities (the page's forward passes)", predict, predict)
    row("inside view: embeddings, similarities, projection, mixtures", timed(lambda: inside_clip(conse, photos, prompts), repeats)[0], predict)


if __name__ == "__main__":
    main()

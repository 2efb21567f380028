"""What the "Inside the model" views cost, side by side in one run: each against the prediction its page
makes for the same input, and a click (a stage, a head, a token) against the same. The calls of one model
are timed in turn (interleaved), so a slow spell of the machine does not favour one of them.

- Images (bundled EfficientNet-Lite0, a 451 x 300 photo): the prediction (one forward); Grad-CAM at the last
  stage as the page computes it; the inside view (diagram, feature maps, filters, the head's contributions,
  from one forward pass); Grad-CAM at every stage, which the page computes only when asked (one forward and
  one backward pass through the whole network); a click on a stage (picking its record).
- Text (bundled MiniLM; BERT-base size with random weights, what the named BERT costs): the prediction (the
  page's forward pass with attention); the inside view (the same pass with hidden states, the readout per
  layer); the token paths, projected when asked (a PCA of the states, no model call); a click on a head and
  token (the step-by-step arithmetic from the record and the layer's weights).
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
from explainers.inside.image import gradcam_by_depth, inside_image  # noqa: E402
from explainers.inside.text import inside_text, token_paths  # noqa: E402
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
from timing import interleaved  # noqa: E402

SENTENCE = ("The film starts slowly and the first hour drags, but the last act is moving, the acting is superb "
            "and I left the cinema smiling.")


def show(title: str, rows: dict[str, float]) -> None:
    """The first row is the reference every ratio is taken against."""
    print(f"\n{title}")
    reference = next(iter(rows.values()))
    for name, seconds in rows.items():
        print(f"  {name:<66} {seconds * 1000:8.1f} ms   {seconds / reference:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats
    configure_torch()
    print(f"torch threads: {torch.get_num_threads()}; median of {repeats}, interleaved, after a warm-up; "
          "ratio to the prediction")

    import skimage.data

    classifier = load_bundled()
    photo = skimage.data.chelsea()
    record = inside_image(classifier, photo)
    show("Images: EfficientNet-Lite0 (bundled), 451 x 300 photo", interleaved({
        "prediction (the page's forward pass)": lambda: explain_image(classifier, photo, ()),
        "Grad-CAM at the last stage, as the page computes it": lambda: explain_image(classifier, photo, ("gradcam",)),
        "inside view: diagram, feature maps, filters, head": lambda: inside_image(classifier, photo),
        "Grad-CAM at all 9 stages, when asked (forward + full backward)": lambda: gradcam_by_depth(classifier, photo),
        "a click on a stage (no model call)": lambda: record.stage("stage 4"),
    }, repeats))

    minilm = text_classifier("minilm")
    for model in (minilm, bert_base_random(minilm.tokenizer)):
        record = inside_text(model, SENTENCE)
        show(f"Text: {model.info.name}, {len(model.encode(SENTENCE).tokens)} tokens", interleaved({
            "prediction (the page's forward pass with attention)": lambda: explain_text(model, SENTENCE, ()),
            "inside view: tokens, states, attention, readout per layer": lambda: inside_text(model, SENTENCE),
            "token paths, when asked (PCA of the states, no model call)": lambda: token_paths(record),
            "a click on a head and token (no model call)": lambda: record.step_by_step(2, 3, 5),
        }, repeats))

    conse = load_bundled_conse()
    photos = [decode_image(sample_bytes(name)).rgb for name in ("Cat (Chelsea)", "Coffee cup", "Astronaut (Eileen Collins)")]
    prompts = ["a cat", "a cup of coffee", "an astronaut", "a dog"]
    show("Image + text: ConSE (bundled), 3 photos x 4 prompts", interleaved({
        "probabilities (the page's forward passes)": lambda: explain_image_text(conse, photos, prompts),
        "inside view: embeddings, similarities, projection, mixtures": lambda: inside_clip(conse, photos, prompts),
    }, repeats))


if __name__ == "__main__":
    main()

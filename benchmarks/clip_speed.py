"""Image-text speed, measured side by side in one run on this machine; prints ratios to a plain forward.

For each model: a plain image-tower forward; every prompt's probability (one image forward and one
batched text forward); one prompt's heatmap (Grad-CAM: forward, backward through the last block only;
relevancy: forward, backward through every block); and all prompts side by side (one forward, one
backward per prompt).

Models: the bundled ConSE stand-in (real weights), and CLIP ViT-B/32 with random weights built from
CLIPConfig's defaults (what the named model costs; its weights cannot be downloaded here).

    python benchmarks/clip_speed.py [--repeats N] [--prompts P]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from explainers.tasks.clip import ClipSettings, _grad_cam, _relevancy  # noqa: E402
from explainers.inputs.image import decode_image  # noqa: E402
from explainers.inputs.samples import sample_bytes  # noqa: E402
from explainers.records.common import ModelSummary, Prediction  # noqa: E402
from models.image_classifier import InputPolicy  # noqa: E402
from models.image_text import ClipModel  # noqa: E402
from models.image_text_models import CLIP_MEAN, CLIP_STD, load_bundled_conse  # noqa: E402
from models.info import ModelInfo  # noqa: E402
from models.runtime import configure_torch  # noqa: E402
from timing import timed  # noqa: E402

PROMPTS = ["an astronaut", "a flag", "a rocket", "a cat", "a cup of coffee", "a dog", "a car", "a tree"]


def clip_b32_random() -> tuple[ClipModel, torch.Tensor]:
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig()
    config._attn_implementation = "eager"
    network = CLIPModel(config).eval()
    model = ClipModel(network, None, InputPolicy(CLIP_MEAN, CLIP_STD, fixed_size=(224, 224)),
                      ModelInfo("CLIP ViT-B/32 size, random weights", "built from CLIPConfig"))
    ids = torch.randint(1, 49000, (len(PROMPTS), 8))
    ids[:, 0], ids[:, -1] = 49406, 49407  # start and end tokens, where CLIP reads a prompt
    return model, ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_torch()
    rgb = decode_image(sample_bytes("Astronaut (Eileen Collins)")).rgb
    conse = load_bundled_conse()
    conse_ids = conse.tokenize([f"a photo of {p}" for p in PROMPTS]).ids
    clip, clip_ids = clip_b32_random()
    print(f"torch threads {torch.get_num_threads()}; {len(PROMPTS)} prompts; median of {args.repeats} runs")
    for model, ids in ((conse, conse_ids), (clip, clip_ids)):
        pixels = model.preprocess(rgb)
        with torch.no_grad():
            text = model.text_embedding_from(model.word_embeddings(ids), ids)
        predictions = tuple(Prediction(i, p, 0.0) for i, p in enumerate(PROMPTS))
        context = (rgb, rgb.shape[:2], ModelSummary(**model.info.as_dict()), predictions)
        everyone = range(len(PROMPTS))

        def probabilities():
            with torch.no_grad():
                image = model.image_embedding(pixels)
                words = model.text_embedding_from(model.word_embeddings(ids), ids)
                return (model.scale * image @ words.T).softmax(-1)

        def cam(explained):  # the page's own code path, records included
            return _grad_cam(model, pixels, text, explained, predictions, ClipSettings(), context)

        def relevancy(explained):
            return _relevancy(model, pixels, text, explained, predictions, context)

        plain = timed(lambda: model.image_embedding(pixels), args.repeats)[0]
        rows = [("all prompts' probabilities", timed(probabilities, args.repeats)[0]),
                ("Grad-CAM, one prompt", timed(lambda: cam((0,)), args.repeats)[0]),
                (f"Grad-CAM, {len(PROMPTS)} prompts side by side", timed(lambda: cam(everyone), args.repeats)[0])]
        if model.has_attention:
            rows += [("relevancy, one prompt", timed(lambda: relevancy((0,)), args.repeats)[0]),
                     (f"relevancy, {len(PROMPTS)} prompts side by side", timed(lambda: relevancy(everyone), args.repeats)[0])]
        print(f"\n# {model.info.name}\nplain image forward {plain:.4f} s")
        for name, seconds in rows:
            print(f"{name:34} {seconds:.4f} s   {seconds / plain:5.2f}x a plain forward")


if __name__ == "__main__":
    main()

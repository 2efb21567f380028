"""Text speed, measured side by side in one run on this machine; prints ratios.

1. The attention views: a prediction alone vs a prediction with every attention map and rollout.
2. Token Integrated Gradients: the project's default (adaptive, stops within 5%) vs captum's
   LayerIntegratedGradients with its defaults (50 Gauss-Legendre steps, one batch) on the word
   embeddings, same model, sentence and baseline: seconds, |delta| / |f(x) - f(baseline)|, ratio.

Models: the bundled MiniLM zero-shot classifier (real weights), and a BERT-base-sized classifier
with random weights built from BertConfig (what the named BERT costs; no real BERT weights can be
downloaded here).

    python benchmarks/text_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from captum.attr import LayerIntegratedGradients  # noqa: E402

from explainers.tasks.text import TextSettings, _token_ig, explain_text  # noqa: E402
from models.info import ModelInfo  # noqa: E402
from models.runtime import configure_torch  # noqa: E402
from timing import timed  # noqa: E402
from models.text_classifier import TextClassifier  # noqa: E402
from models.text_models import text_classifier  # noqa: E402

TOLERANCE = 0.05
SENTENCES = (
    "The movie was wonderful.",
    "The plot was dull but the acting was excellent, and the music carried the slow middle part.",
    "I expected a disaster from the trailer, yet the film turned out to be a delight from the first scene "
    "to the last, with a cast that clearly enjoyed itself.",
)


def bert_base_random(tokenizer) -> TextClassifier:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    network = BertForSequenceClassification(config).eval()
    network.set_attn_implementation("eager")
    info = ModelInfo("BERT-base size, random weights", "built from BertConfig")
    return TextClassifier(network, tokenizer, ["negative", "positive"], info, lambda out, mask: out.logits, "cls", "")


def captum_lig(classifier: TextClassifier, ids, special, target: int):
    """captum's LayerIntegratedGradients with its defaults, on the word embedding layer."""
    baseline = ids.clone()
    baseline[0, [i for i, s in enumerate(special) if not s]] = classifier.pad_id()
    layer = classifier.network.get_input_embeddings()
    forward = lambda i: classifier.logits_from(layer(i))  # noqa: E731
    attribution, delta = LayerIntegratedGradients(forward, layer).attribute(
        ids, baselines=baseline, target=target, return_convergence_delta=True
    )
    with torch.no_grad():
        ends = classifier.logits(torch.cat([ids, baseline]))[:, target]
    return float(delta.sum()), float(ends[0] - ends[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    configure_torch()
    minilm = text_classifier("minilm")
    models = [minilm, bert_base_random(minilm.tokenizer)]
    print(f"torch threads {torch.get_num_threads()}")
    for classifier in models:
        print(f"\n# {classifier.info.name}")
        print("\n## Attention views: prediction alone vs prediction + every attention map + rollout (median s)")
        for text in SENTENCES:
            encoding = classifier.encode(text)
            alone, _ = timed(lambda: classifier.logits(encoding.ids), args.repeats)
            views, _ = timed(lambda: explain_text(classifier, text, ("attention", "rollout")), args.repeats)
            print(f"{len(encoding.tokens):3} tokens  predict {alone:.4f}  with attention {views:.4f}  ratio {views / alone:.2f}")

        print("\n## Token Integrated Gradients: default (adaptive) vs captum LayerIntegratedGradients defaults")
        print("tokens  adaptive: |delta| share   s    steps   captum LIG: |delta| share   s     time ratio")
        ratios, worst = [], 0.0
        for text in SENTENCES:
            encoding = classifier.encode(text)
            with torch.no_grad():
                target = int(classifier.logits(encoding.ids)[0].argmax())
            ours_s, ours = timed(lambda: _token_ig(classifier, encoding, target, TextSettings()), args.repeats)
            lig_s, (lig_delta, lig_difference) = timed(
                lambda: captum_lig(classifier, encoding.ids, encoding.special, target), args.repeats
            )
            share = abs(ours.convergence_delta) / abs(ours.output_difference)
            worst = max(worst, share)
            lig_share = abs(lig_delta) / abs(lig_difference)
            ratios.append(ours_s / lig_s)
            print(
                f"{len(encoding.tokens):6}  {share:21.2%} {ours_s:6.3f} {ours.params['gradient_steps']:6}"
                f"   {lig_share:23.2%} {lig_s:6.3f}  {ours_s / lig_s:10.2f}"
            )
        verdict = "yes" if worst <= TOLERANCE else "no"
        print(f"worst |delta| share {worst:.2%} (within 5%: {verdict}); time ratio ours / captum: "
              f"median {statistics.median(ratios):.2f}, max {max(ratios):.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()

"""`python -m explainers inside image|text|clip ...`: the network seen from inside, as text or JSON Lines.

    python -m explainers inside text TEXT [TEXT ...] [--model NAME] [--label NAME=DESCRIPTION ...]
        [--layer L] [--head H] [--token T] [--json]

--layer, --head and --token count from 0, as the indices of `attention` and `tokens` in `text --json`
(layer 1 on the page is --layer 0). Each input is handled on its own: a bad one prints a clear message
(an {"input", "error"} line under --json) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_inside_parser(commands) -> None:
    inside = commands.add_parser("inside", help="the network itself: architecture, activations, attention step by step")
    kinds = inside.add_subparsers(dest="kind", required=True)
    text = kinds.add_parser("text", help="tokenisation, one head's attention step by step, the layers")
    text.add_argument("texts", nargs="+", metavar="TEXT", help="texts (quote each one)")
    text.add_argument("--model", default=None, help="bert-sst2 (default), minilm (bundled), a Hugging Face id or a directory")
    text.add_argument("--label", action="append", default=None, metavar="NAME=DESCRIPTION",
                      help="zero-shot model only: a label and the sentence describing it (repeat for each label)")
    text.add_argument("--layer", type=int, default=None, metavar="L", help="from 0 (default: the last layer)")
    text.add_argument("--head", type=int, default=0, metavar="H", help="from 0 (default 0)")
    text.add_argument("--token", type=int, default=None, metavar="T",
                      help="the query token, an index into `tokens` (default: [CLS], or the first word piece "
                           "for a mean-pooling model)")
    text.add_argument("--json", action="store_true", help="print one JSON object per input (JSON Lines)")


def run_inside(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from models.runtime import configure_torch

    configure_torch()
    return {"text": _run_text}[args.kind](args, parser)


def _run_text(args, parser) -> int:
    from ..cli import _report_failure, load_text_for
    from ..records.inside_text import as_json
    from .text import inside_text

    classifier = load_text_for(args, parser)
    failures = 0
    for number, text in enumerate(args.texts, 1):
        try:
            record = as_json(inside_text(classifier, text), args.layer, args.head, args.token)
        except ValueError as error:
            failures += 1
            _report_failure(text, str(error), args.json, shown_as=f"text {number}")
            continue
        print(json.dumps(record) if args.json else _text_summary(record), flush=True)
    return 1 if failures else 0


def _text_summary(record: dict) -> str:
    lines = [f"{record['text'][:60]!r}: {record['predictions'][0]['label']} ({record['predictions'][0]['score']:.1%})"]
    pieces = " ".join(f"{t}[{i}]" for t, i in zip(record["tokens"], record["token_ids"]))
    lines.append(f"  tokens ({len(record['tokens'])} of {record['total_tokens']} needed): {pieces}")
    if record["truncated"]:
        lines.append(f"  cut at character {record['cut_at_character']} (the model reads {record['max_tokens']} tokens)")
    step = record["step_by_step"]
    if step is None:
        lines.append(f"  {record['step_by_step_note']}")
    else:
        top = sorted(range(len(step["weights"])), key=lambda j: -step["weights"][j])[:5]
        drawn = ", ".join(f"{record['tokens'][j]} {step['weights'][j]:.1%} (score {step['scores'][j]:.2f})" for j in top)
        lines.append(f"  layer {step['layer']}, head {step['head']}, token {step['token']} {step['token_text']!r} "
                     f"attends to: {drawn}")
    if record["settles_at_layer"] is not None:
        lines.append(f"  the prediction settles at layer {record['settles_at_layer']} (0 = the embeddings)")
    return "\n".join(lines)

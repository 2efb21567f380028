"""`python -m explainers inside image|text|clip ...`: the network seen from inside, as text or JSON Lines.

    python -m explainers inside image PATH [PATH ...] [--model NAME] [--target INDEX|LABEL] [--json]
    python -m explainers inside text TEXT [TEXT ...] [--model NAME] [--label NAME=DESCRIPTION ...]
        [--layer L] [--head H] [--token T] [--json]
    python -m explainers inside clip IMAGE [IMAGE ...] --prompts P [P ...] [--template T] [--model NAME] [--json]

`inside image` prints one object per photo (the stages with their output shapes, parameters, receptive
fields, activation statistics, most active channels and Grad-CAM peak for the target class; the head's
largest contributions); `inside clip` one object for every photo and prompt together (the embedding space).

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
    image = kinds.add_parser("image", help="stages, feature-map statistics, Grad-CAM by depth, the head")
    image.add_argument("paths", nargs="+", metavar="PATH", help="image files (JPEG, PNG, WebP, BMP, GIF)")
    image.add_argument("--model", default=None, help="resnet-50 (default), efficientnet-lite0, a Hugging Face id or a directory")
    image.add_argument("--target", default=None, help="the class Grad-CAM follows through the stages (default: the top one)")
    image.add_argument("--json", action="store_true", help="print one JSON object per photo (JSON Lines)")
    clip = kinds.add_parser("clip", help="photos and prompts in the shared embedding space")
    clip.add_argument("paths", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, BMP, GIF)")
    clip.add_argument("--prompts", nargs="+", required=True, metavar="P", help="the prompts (quote each one)")
    clip.add_argument("--template", default="", help='e.g. "a photo of a {}": each prompt fills the {}')
    clip.add_argument("--model", default=None, help="clip (default), conse (bundled), a CLIPModel id or a directory")
    clip.add_argument("--json", action="store_true", help="print one JSON object")
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
    return {"image": _run_image, "text": _run_text, "clip": _run_clip}[args.kind](args, parser)


def _announce(info) -> None:
    print(f"model: {info.name} ({info.source})", file=sys.stderr)
    if info.note:
        print(f"note: {info.note}", file=sys.stderr)


def _run_image(args, parser) -> int:
    from pathlib import Path

    from models.image_models import load_image_classifier

    from ..cli import _message, _report_failure
    from ..inputs.image import decode_image
    from ..records.inside_image import as_json
    from .image import gradcam_by_depth, inside_image

    classifier = load_image_classifier(args.model)
    _announce(classifier.info)
    failures = 0
    for path in args.paths:
        try:
            rgb = decode_image(Path(path).read_bytes()).rgb
            depth = gradcam_by_depth(classifier, rgb, args.target) if classifier.stages else None
            record = as_json(inside_image(classifier, rgb, args.target), depth, path)
        except Exception as error:  # one bad photo must not stop the others
            failures += 1
            _report_failure(path, _message(path, error), args.json)
            continue
        print(json.dumps(record) if args.json else _image_summary(record), flush=True)
    return 1 if failures else 0


def _image_summary(record: dict) -> str:
    top = record["predictions"][0]
    lines = [f"{record['input']}: {top['label']} ({top['score']:.1%}); input {record['input_size'][0]} x "
             f"{record['input_size'][1]}, {record['total_parameters']:,} parameters"]
    for s in record["stages"]:
        field = "?" if s["receptive_field"] is None else f"{s['receptive_field']} px"
        shape = " x ".join(map(str, s["output_shape"]))
        lines.append(f"  {s['name']:<10} {shape:<16} {s['parameters']:>10,} parameters  sees {field:<7} "
                     f"mean {s['activation']['mean']:.3f}, {s['activation']['active_share']:.0%} active, "
                     f"Grad-CAM peak {s['gradcam']['peak_cell']}")
    for c in record["head"][:1]:
        named = ", ".join(f"channel {x['channel']} {x['value']:+.2f}" for x in c["contributions"][:4])
        lines.append(f"  {c['class']['label']}: logit {c['logit']:.2f} = bias {c['bias']:+.2f} + {named} ... "
                     f"(rest {c['rest']:+.2f})")
    if record["note"]:
        lines.append(f"  {record['note']}")
    return "\n".join(lines)


def _run_clip(args, parser) -> int:
    from pathlib import Path

    from models.image_text_models import load_image_text_model

    from ..cli import _message, _report_failure
    from ..inputs.image import decode_image
    from ..records.inside_clip import as_json
    from ..tasks.clip import PromptError, clean_prompts
    from .clip import inside_clip

    try:
        clean_prompts(args.prompts, args.template)
    except PromptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = load_image_text_model(args.model)
    _announce(model.info)
    images, names, failures = [], [], 0
    for path in args.paths:
        try:
            images.append(decode_image(Path(path).read_bytes()).rgb)
            names.append(path)
        except Exception as error:  # the readable photos are still placed
            failures += 1
            _report_failure(path, _message(path, error), args.json)
    if not images:
        return 1
    record = as_json(inside_clip(model, images, args.prompts, names, args.template))
    for note in record["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps(record) if args.json else _clip_summary(record), flush=True)
    return 1 if failures else 0


def _clip_summary(record: dict) -> str:
    lines = [f"scale {record['scale']:.2f}: probability = softmax over prompts of scale x cosine"]
    for name, similarities, probabilities in zip(record["images"], record["similarity"], record["probabilities"]):
        lines.append(name)
        lines += [f"  cosine {s:+.3f}  ->  {p:7.2%}  {prompt}" for prompt, s, p in
                  zip(record["prompts"], similarities, probabilities)]
    lines.append(record["embedding_is"])
    return "\n".join(lines)


def _run_text(args, parser) -> int:
    from ..cli import _report_failure, load_text_for
    from ..records.inside_text import as_json
    from .text import inside_text, token_paths

    classifier = load_text_for(args, parser)
    failures = 0
    for number, text in enumerate(args.texts, 1):
        try:
            inside = inside_text(classifier, text)
            record = as_json(inside, args.layer, args.head, args.token, token_paths(inside))
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

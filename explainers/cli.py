"""Command line: the page's explainers for scripts and batch audits.

    python -m explainers image PATH [PATH ...] [--model NAME] [--method ...] [--target INDEX|LABEL]
        [--samples N] [--segments N] [--patch PIXELS] [--stride PIXELS] [--hidden KIND] [--seed N]
        [--faithfulness] [--sanity] [--full-size] [--json]
    python -m explainers text TEXT [TEXT ...] [--model NAME] [--method ...] [--target INDEX|LABEL]
        [--samples N] [--seed N] [--faithfulness] [--sanity] [--json]
    python -m explainers clip IMAGE [IMAGE ...] --prompts P [P ...] [--model NAME] [--method ...] [--target N]
        [--faithfulness] [--sanity] [--full-size] [--json]
    python -m explainers audit DATA --task image|text|clip [--model NAME] [--methods ...] [--sample N]
        [--prompts ...] --report audit.html [--pdf audit.pdf] [--results results.jsonl]
        [--engine local|ray] [--address RAY_ADDRESS] [--json]
    python -m explainers inside image|text|clip ...  (explainers/inside/command.py: the network seen from inside)

The model loads once; every input is explained in turn. A bad input prints a clear message for
itself (a JSON line with "error" under --json) and the others still run; the exit code is 1
when any input failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .audit.config import DEFAULT_SAMPLE, DEFAULT_SANITY_ITEMS, ENGINES
from .inside.command import add_inside_parser, run_inside
from .records.common import METHOD_NAMES, PERTURBATION_METHODS, TOKEN_METHODS

IMAGE_METHODS = ("none", "gradcam", "gradcam++", "layercam", "integrated-gradients", "smoothgrad", "lime", "kernelshap",
                 "occlusion")
TEXT_CLI_METHODS = ("none", "integrated-gradients", "lime", "kernelshap", "occlusion", "attention", "rollout")
CLIP_CLI_METHODS = ("none", "gradcam", "relevancy", "text-integrated-gradients")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explainers", description="Explain model predictions.")
    commands = parser.add_subparsers(dest="command", required=True)
    image = commands.add_parser("image", help="explain image classifications")
    image.add_argument("paths", nargs="+", metavar="PATH", help="image files (JPEG, PNG, WebP, BMP, GIF)")
    image.add_argument("--model", default=None, help="resnet-50 (default), efficientnet-lite0, a Hugging Face id or a directory")
    image.add_argument("--method", default="gradcam", choices=IMAGE_METHODS)
    image.add_argument("--target", default=None, help="class index or label (default: the top prediction)")
    image.add_argument("--layer", default=None, help="Grad-CAM family: the layer to read (default: the last stage)")
    image.add_argument("--steps", type=int, default=None, help="Integrated Gradients: gradient steps")
    image.add_argument("--baseline", default=None, choices=("black", "blurred", "noise"))
    image.add_argument("--samples", type=int, default=None, metavar="N",
                       help="SmoothGrad, LIME, Kernel SHAP: samples (defaults 16, 100, 200)")
    image.add_argument("--segments", type=int, default=None, metavar="N",
                       help="LIME, Kernel SHAP: superpixels asked of SLIC (default 25)")
    image.add_argument("--patch", type=int, default=None, metavar="PIXELS",
                       help="Occlusion: patch side at the model's input size (default 48 on a 224-pixel short side)")
    image.add_argument("--stride", type=int, default=None, metavar="PIXELS", help="Occlusion: stride (default half the patch)")
    image.add_argument("--hidden", default=None, choices=("blurred", "black", "mean"),
                       help="LIME, Kernel SHAP, Occlusion: what a hidden part becomes (default blurred)")
    image.add_argument("--seed", type=int, default=None,
                       help="noise baseline, SmoothGrad, LIME, Kernel SHAP, faithfulness's random order (default 0)")
    image.add_argument("--faithfulness", action="store_true",
                       help="add deletion / insertion areas against a random and a centre-first order")
    image.add_argument("--faithfulness-steps", type=int, default=None, metavar="N",
                       help="steps per faithfulness curve (default 20)")
    image.add_argument("--replacement", default=None, choices=("blurred", "black", "mean"),
                       help="faithfulness: what removed pixels become (default blurred)")
    image.add_argument("--sanity", action="store_true",
                       help="add the model-randomisation sanity check: the map recomputed as the weights are "
                            "re-initialised top-down")
    image.add_argument("--full-size", action="store_true",
                       help="write the map resampled to the model's input at the photo's aspect (a CAM's grid is "
                            "written as computed by default; its cells cover the photo evenly)")
    image.add_argument("--json", action="store_true", help="print one JSON object per input (JSON Lines)")

    text = commands.add_parser("text", help="explain text classifications")
    text.add_argument("texts", nargs="+", metavar="TEXT", help="texts to classify (quote each one)")
    text.add_argument("--model", default=None, help="bert-sst2 (default), minilm (bundled, zero-shot), a Hugging Face id or a directory")
    text.add_argument("--method", default="integrated-gradients", choices=TEXT_CLI_METHODS)
    text.add_argument("--target", default=None, help="label index or name (default: the top prediction)")
    text.add_argument("--label", action="append", default=None, metavar="NAME=DESCRIPTION",
                      help="zero-shot model only: a label and the sentence describing it (repeat for each label)")
    text.add_argument("--steps", type=int, default=None, help="Integrated Gradients: gradient step budget")
    text.add_argument("--samples", type=int, default=None, metavar="N", help="LIME, Kernel SHAP: samples (default 200)")
    text.add_argument("--seed", type=int, default=None, help="LIME, Kernel SHAP, faithfulness's random order (default 0)")
    text.add_argument("--faithfulness", action="store_true",
                      help="add word deletion / insertion areas against a random order of words")
    text.add_argument("--faithfulness-steps", type=int, default=None, metavar="N",
                      help="steps per faithfulness curve (default 20, at most one per word)")
    text.add_argument("--sanity", action="store_true",
                      help="add the model-randomisation sanity check: the map recomputed as the layers are "
                           "re-initialised top-down")
    text.add_argument("--json", action="store_true", help="print one JSON object per input (JSON Lines)")

    clip = commands.add_parser("clip", help="explain how well prompts match images")
    clip.add_argument("paths", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, BMP, GIF)")
    clip.add_argument("--prompts", nargs="+", required=True, metavar="P", help="the prompts to score (quote each one)")
    clip.add_argument("--template", default="", help='e.g. "a photo of a {}": each prompt fills the {}')
    clip.add_argument("--model", default=None, help="clip (default, openai/clip-vit-base-patch32), conse (bundled), a CLIPModel id or a directory")
    clip.add_argument("--method", default="gradcam", choices=CLIP_CLI_METHODS)
    clip.add_argument("--target", default=None, help="prompt number, from 0 (default: the best match)")
    clip.add_argument("--layer", default=None, help="Grad-CAM: the block whose input is read (default: the last)")
    clip.add_argument("--faithfulness", action="store_true",
                      help="gradcam, relevancy: add deletion / insertion areas on the prompt's probability")
    clip.add_argument("--faithfulness-steps", type=int, default=None, metavar="N",
                      help="steps per faithfulness curve (default 20)")
    clip.add_argument("--replacement", default=None, choices=("blurred", "black", "mean"),
                      help="faithfulness: what removed pixels become (default blurred)")
    clip.add_argument("--sanity", action="store_true",
                      help="gradcam, relevancy: add the sanity check, the image tower re-initialised top-down")
    clip.add_argument("--full-size", action="store_true",
                      help="gradcam, relevancy: write the map resampled to the model's input at the photo's aspect "
                           "(default: the patch grid as computed, covering the photo evenly)")
    clip.add_argument("--json", action="store_true", help="print one JSON object per image (JSON Lines)")

    add_audit_parser(commands)
    add_inside_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "text":
        return run_text(args, parser)
    if args.command == "clip":
        return run_clip(args, parser)
    if args.command == "audit":
        return run_audit(args, argv)
    if args.command == "inside":
        return run_inside(args, parser)
    return run_image(args)


def run_image(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from models.image_models import load_image_classifier
    from models.runtime import configure_torch

    from .evaluation.faithfulness import check_steps
    from .evaluation.sanity import with_sanity
    from .records.as_json import image_record
    from .tasks.image import ImageSettings, check_settings, explain_image, methods_for
    from .inputs.image import decode_image

    configure_torch()
    classifier = load_image_classifier(args.model)
    info = classifier.info
    print(f"model: {info.name} ({info.source})", file=sys.stderr)
    if info.note:
        print(f"note: {info.note}", file=sys.stderr)
    methods = () if args.method == "none" else (args.method,)
    if methods and methods[0] not in methods_for(classifier):
        print(f"error: {METHOD_NAMES[methods[0]]} is not available for {info.name}", file=sys.stderr)
        return 2
    settings = ImageSettings(faithfulness=args.faithfulness)
    samples = {"smoothgrad": "smoothgrad_samples", "lime": "lime_samples", "kernelshap": "shap_samples"}
    if args.samples is not None and args.method not in samples:
        print("error: --samples applies to smoothgrad, lime and kernelshap", file=sys.stderr)
        return 2
    changes = {"layer": args.layer, "ig_steps": args.steps, "ig_baseline": args.baseline,
               "faithfulness_steps": args.faithfulness_steps, "faithfulness_replacement": args.replacement,
               samples.get(args.method, "samples"): args.samples, "segments": args.segments,
               "occlusion_patch": args.patch, "occlusion_stride": args.stride, "perturbation_baseline": args.hidden,
               "seed": args.seed}
    settings = replace(settings, **{k: v for k, v in changes.items() if v is not None})
    for flag in ("faithfulness", "sanity"):
        if getattr(args, flag) and not methods:
            print(f"error: --{flag} checks a map: choose a --method other than none", file=sys.stderr)
            return 2
    if args.sanity and not classifier.randomisable_parts():
        print(f"error: {info.name} cannot be sanity-checked: nothing in it can be re-initialised", file=sys.stderr)
        return 2
    try:
        check_steps(settings.faithfulness_steps)
        # A photo's short side as the model reads it: per-photo sizes differ only for panoramas.
        check_settings(classifier.input_size(1024, 1024), methods, settings)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if settings.layer is not None and settings.layer not in classifier.layers:
        print(f"error: unknown layer {settings.layer!r}; choose one of: {', '.join(classifier.layers)}", file=sys.stderr)
        return 2

    failures = 0
    for path in args.paths:
        try:
            data = Path(path).read_bytes()
            rgb = decode_image(data).rgb
            report = explain_image(classifier, rgb, methods, args.target, settings)
            if args.sanity:
                report = replace(report, explanations=with_sanity(classifier, rgb, report.explanations, settings))
        except Exception as error:  # one bad input must not stop a batch audit
            failures += 1
            _report_failure(path, _message(path, error), args.json)
            continue
        explanation = report.explanations[0] if report.explanations else None
        record = image_record(report.model, report.predictions, report.target, explanation, path, args.full_size)
        print(json.dumps(record) if args.json else _summary(record), flush=True)
    return 1 if failures else 0


def load_text_for(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The text classifier `--model` and `--label` ask for; what answered is printed to stderr."""
    from models.text_models import DEFAULT_DESCRIPTIONS, ZeroShotEncoder, load_text_model

    descriptions = DEFAULT_DESCRIPTIONS
    if args.label:
        pairs = [item.partition("=") for item in args.label]
        if any(not name.strip() or not sep or not text.strip() for name, sep, text in pairs):
            parser.error("--label takes NAME=DESCRIPTION, e.g. --label 'positive=This is a positive review.'")
        descriptions = tuple((name.strip(), text.strip()) for name, _, text in pairs)
    model = load_text_model(args.model)
    classifier = model.classifier(descriptions) if isinstance(model, ZeroShotEncoder) else model
    print(f"model: {classifier.info.name} ({classifier.info.source})", file=sys.stderr)
    if classifier.info.note:
        print(f"note: {classifier.info.note}", file=sys.stderr)
    if args.label and not isinstance(model, ZeroShotEncoder):
        print("note: --label is ignored: this model has trained labels", file=sys.stderr)
    return classifier


def run_text(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from models.runtime import configure_torch

    from dataclasses import replace

    from .evaluation.text_sanity import with_text_sanity
    from .records.as_json import text_record
    from .tasks.text import TextSettings, check_settings, explain_text

    configure_torch()
    classifier = load_text_for(args, parser)
    info = classifier.info
    methods = () if args.method == "none" else (args.method,)
    for flag in ("faithfulness", "sanity"):
        if getattr(args, flag) and args.method not in TOKEN_METHODS:
            print(f"error: --{flag} checks a word map: choose --method {', '.join(TOKEN_METHODS)}", file=sys.stderr)
            return 2
    if args.samples is not None and args.method not in ("lime", "kernelshap"):
        print("error: --samples applies to lime and kernelshap", file=sys.stderr)
        return 2
    if args.sanity and not classifier.randomisable_parts():
        print(f"error: {info.name} cannot be sanity-checked: nothing in it can be re-initialised", file=sys.stderr)
        return 2
    changes = {"ig_steps": args.steps, "seed": args.seed, "faithfulness_steps": args.faithfulness_steps,
               {"lime": "lime_samples", "kernelshap": "shap_samples"}.get(args.method, "samples"): args.samples}
    settings = replace(TextSettings(faithfulness=args.faithfulness), **{k: v for k, v in changes.items() if v is not None})
    try:
        check_settings(methods, settings)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failures = 0
    for number, text in enumerate(args.texts, 1):
        name = f"text {number}"
        try:
            report = explain_text(classifier, text, methods, args.target, settings)
            if args.sanity:
                report = with_text_sanity(classifier, report, settings)
        except Exception as error:  # one bad input must not stop a batch audit
            failures += 1
            _report_failure(text, str(error), args.json, shown_as=name)
            continue
        if report.truncation_notice:
            print(f"{name}: {report.truncation_notice}", file=sys.stderr)
        record = text_record(report, args.method, source=text)
        print(json.dumps(record) if args.json else _text_summary(record), flush=True)
    return 1 if failures else 0


def run_clip(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from models.image_text_models import load_image_text_model
    from models.runtime import configure_torch

    from dataclasses import replace

    from .evaluation.clip_sanity import with_clip_sanity
    from .evaluation.faithfulness import check_steps
    from .tasks.clip import ClipSettings, PromptError, clean_prompts, explain_image_text
    from .inputs.image import decode_image
    from .records.as_json import clip_record

    try:
        clean_prompts(args.prompts, args.template)
    except PromptError as error:
        parser.error(str(error))
    configure_torch()
    model = load_image_text_model(args.model)
    print(f"model: {model.info.name} ({model.info.source})", file=sys.stderr)
    if model.info.note:
        print(f"note: {model.info.note}", file=sys.stderr)
    methods = () if args.method == "none" else (args.method,)
    if "relevancy" in methods and not model.has_attention:
        print(f"error: attention relevancy needs a ViT image tower; {model.info.name} has none", file=sys.stderr)
        return 2
    if args.layer is not None and args.layer not in model.layers:
        print(f"error: unknown layer {args.layer!r}; choose one of: {', '.join(model.layers)}", file=sys.stderr)
        return 2
    for flag in ("faithfulness", "sanity"):
        if getattr(args, flag) and args.method not in ("gradcam", "relevancy"):
            print(f"error: --{flag} checks an image map: choose --method gradcam or relevancy", file=sys.stderr)
            return 2
    if args.sanity and not model.randomisable_parts():
        print(f"error: {model.info.name} cannot be sanity-checked: nothing in it can be re-initialised", file=sys.stderr)
        return 2
    changes = {"faithfulness_steps": args.faithfulness_steps, "faithfulness_replacement": args.replacement}
    settings = replace(ClipSettings(layer=args.layer, faithfulness=args.faithfulness),
                       **{k: v for k, v in changes.items() if v is not None})
    try:
        check_steps(settings.faithfulness_steps)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failures, noted = 0, False
    for path in args.paths:
        try:
            rgb = decode_image(Path(path).read_bytes()).rgb
            report = explain_image_text(model, [rgb], args.prompts, methods, args.target, settings, args.template)
            if args.sanity:
                report = with_clip_sanity(model, rgb, report, settings)
        except Exception as error:  # one bad input must not stop a batch audit
            failures += 1
            _report_failure(path, _message(path, error), args.json)
            continue
        if not noted:
            for note in report.notes:
                print(f"note: {note}", file=sys.stderr)
            noted = True
        record = clip_record(report, args.method, path, args.full_size)
        print(json.dumps(record) if args.json else _clip_summary(record), flush=True)
    return 1 if failures else 0


def _clip_summary(record: dict) -> str:
    lines = [record["input"]]
    lines += [f"  {p['score']:7.2%}  {p['index']:>3}  {p['label']}" for p in record["predictions"]]
    if "attribution_shape" in record:
        lines.append(f"  {METHOD_NAMES[record['method']]} for prompt {record['target']['index']}: map {record['attribution_shape']}")
        lines += _evidence_lines(record)
    if "tokens" in record:
        pairs = [f"{t}:{v:+.3f}" for t, v in zip(record["tokens"], record["attribution"])]
        lines.append(f"  word relevance for prompt {record['target']['index']}: {' '.join(pairs)}")
        lines.append(
            f"  convergence delta {record['convergence_delta']:+.4g} "
            f"(f(x) - f(baseline) = {record['explained_output_difference']:.4g})"
        )
    return "\n".join(lines)


def _text_summary(record: dict) -> str:
    shown = record["input"] if len(record["input"]) <= 70 else record["input"][:67] + "..."
    lines = [repr(shown)]
    lines += [f"  {p['score']:7.2%}  {p['index']:>3}  {p['label']}" for p in record["predictions"]]
    if "words" in record:
        ranked = sorted(record["words"], key=lambda w: -abs(w["attribution"]))[:8]
        lines.append(f"  {METHOD_NAMES[record['method']]} for {record['target']['label']!r}, strongest words:")
        lines += [f"    {w['attribution']:+.4f}  {w['word']}" for w in ranked]
        if "convergence_delta" in record:
            lines.append(
                f"  convergence delta {record['convergence_delta']:+.4g} "
                f"(f(x) - f(baseline) = {record['explained_output_difference']:.4g})"
            )
        else:
            lines.append("  settings: " + ", ".join(f"{k} {v}" for k, v in record["parameters"].items()))
        lines += _evidence_lines(record)
    if "attention_shape" in record:
        lines.append(f"  attention {record['attention_shape']} (layers, heads, tokens, tokens); use --json for values")
    if "rollout" in record:
        lines.append(f"  rollout {len(record['rollout'])} x {len(record['rollout'])}; use --json for values")
    return "\n".join(lines)


def _report_failure(source: str, message: str, as_json: bool, shown_as: str | None = None) -> None:
    """A clear line on stderr, and under --json an {"input", "error"} line in the output stream."""
    print(f"{shown_as or source}: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"input": source, "error": message}), flush=True)


def _message(path: str, error: Exception) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "is a directory, not an image file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return str(error)


def _summary(record: dict) -> str:
    lines = [record["input"]]
    lines += [f"  {p['score']:7.2%}  {p['index']:>4}  {p['label']}" for p in record["predictions"]]
    if record["method"] != "none":
        target = record["target"]
        lines.append(f"  {METHOD_NAMES[record['method']]} for {target['index']} {target['label']}: map {record['attribution_shape']}")
        if record["method"] in PERTURBATION_METHODS:
            used = ", ".join(f"{name} {value}" for name, value in record["parameters"].items())
            lines.append(f"  settings: {used}")
        if "convergence_delta" in record:
            lines.append(
                f"  convergence delta {record['convergence_delta']:+.4g} "
                f"(f(x) - f(baseline) = {record['explained_output_difference']:.4g})"
            )
        lines += _evidence_lines(record)
    return "\n".join(lines)


def _evidence_lines(record: dict) -> list[str]:
    lines = []
    if "faithfulness" in record:
        lines.append(_faithfulness_summary(record["faithfulness"]))
    if "sanity" in record:
        sanity = record["sanity"]
        similarity = ", ".join(f"{v:+.2f}" for v in sanity["similarity"])
        lines.append(f"  sanity check {'passed' if sanity['passed'] else 'FAILED'} (Spearman per step: {similarity}; "
                     f"passes below {sanity['threshold']} at step {sanity['rule_step']})")
    return lines


def _faithfulness_summary(faithfulness: dict) -> str:
    areas = lambda r: f"deletion {r['deletion_auc']:.3f}, insertion {r['insertion_auc']:.3f}"  # noqa: E731
    references = "; ".join(f"{name} {areas(r)}" for name, r in faithfulness["references"].items())
    return (f"  faithfulness ({faithfulness['steps']} steps, {faithfulness['replacement']}): {areas(faithfulness)} "
            f"(references: {references})")


# -- audit: a labelled dataset, a report to hand over ------------------------------------------------

SUMMARY_KEYS = ("items", "evaluated", "skipped", "accuracy", "top5_accuracy", "per_class", "per_group", "ece",
                "faithfulness")


def add_audit_parser(commands) -> None:
    audit = commands.add_parser("audit", help="audit a labelled dataset and write a report")
    audit.add_argument("data", metavar="DATA",
                       help="a folder or .zip with one subfolder per class, or a .csv / .jsonl manifest "
                            "(path,label[,group ...] for images; text,label[,group ...] for texts)")
    audit.add_argument("--task", required=True, choices=("image", "text", "clip"))
    audit.add_argument("--model", default=None, help="as for the image, text and clip commands")
    audit.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                       help="maps measured for faithfulness and shown in the report (default: gradcam for images and "
                            "image + text, integrated-gradients for text; 'none' for predictions only)")
    audit.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, metavar="N",
                       help=f"items (a seeded sample) whose maps get deletion / insertion curves (default {DEFAULT_SAMPLE})")
    audit.add_argument("--sanity-items", type=int, default=DEFAULT_SANITY_ITEMS, metavar="N",
                       help=f"items of that sample whose first map gets the sanity check (default {DEFAULT_SANITY_ITEMS})")
    audit.add_argument("--prompts", nargs="+", default=None, metavar="P",
                       help="image + text: the prompts, which act as the classes (default: the dataset's labels)")
    audit.add_argument("--template", default="", help='image + text: e.g. "a photo of a {}" fills each prompt in')
    audit.add_argument("--seed", type=int, default=0, help="the faithfulness sample and its random reference (default 0)")
    audit.add_argument("--batch-size", type=int, default=16, metavar="N", help="items per chunk (default 16)")
    audit.add_argument("--maps", action="store_true",
                       help="images: every item's results line also carries the Grad-CAM-family maps of --methods "
                            "for its predicted class, at the layer's own grid (from the prediction's forward pass)")
    audit.add_argument("--report", required=True, metavar="audit.html", help="the self-contained HTML report")
    audit.add_argument("--pdf", default=None, metavar="audit.pdf", help="the same report as PDF (needs Chromium)")
    audit.add_argument("--results", default=None, metavar="results.jsonl",
                       help="one JSON line per item as it finishes; an interrupted audit run again resumes from it")
    audit.add_argument("--engine", default="local", choices=ENGINES, help="local (default, in this process) or ray")
    audit.add_argument("--address", default=None, metavar="RAY_ADDRESS",
                       help="--engine ray: join this cluster (default: start Ray on this machine)")
    audit.add_argument("--json", action="store_true", help="print one final JSON summary line")


def run_audit(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Exit codes: 0 every item evaluated; 1 some items skipped (each with its reason in the results and the
    report); 2 the audit could not run (bad dataset, labels, settings or engine)."""
    import shlex

    from .audit.config import CAM_METHODS, DEFAULT_METHODS, FAITHFUL_METHODS, AuditConfig
    from .audit.dataset import load_dataset
    from .audit.errors import DatasetError
    from .reports.audit import render

    methods = tuple(args.methods or DEFAULT_METHODS[args.task])
    if methods == ("none",):
        methods = ()
    if args.task != "clip" and (args.prompts or args.template):
        print("error: --prompts and --template apply to --task clip", file=sys.stderr)
        return 2
    if args.address and args.engine != "ray":
        print("error: --address joins a Ray cluster: add --engine ray", file=sys.stderr)
        return 2
    wrong = [m for m in methods if m not in FAITHFUL_METHODS[args.task]]
    if wrong:
        print(f"error: {', '.join(wrong)} cannot be audited for {args.task}; choose from "
              f"{', '.join(FAITHFUL_METHODS[args.task])} or none", file=sys.stderr)
        return 2
    maps = ()
    if args.maps:
        maps = tuple(m for m in methods if m in CAM_METHODS)
        if args.task != "image" or not maps:
            print(f"error: --maps saves {', '.join(CAM_METHODS)} maps of images: add one of them to --methods "
                  "(--task image)", file=sys.stderr)
            return 2
    config = AuditConfig(task=args.task, model=args.model, methods=methods, sample=args.sample, seed=args.seed,
                         sanity_items=args.sanity_items, prompts=tuple(args.prompts or ()), template=args.template,
                         batch_size=args.batch_size, maps=maps)
    try:
        dataset = load_dataset(args.data, args.task)
        audit = _audited(dataset, config, args)
        command = "python -m explainers " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        html = render(audit, command)
        Path(args.report).write_text(html, encoding="utf-8")
        print(f"report: {args.report}", file=sys.stderr)
        if args.pdf:
            from .reports.pdf import PdfError, html_to_pdf

            try:
                Path(args.pdf).write_bytes(html_to_pdf(html))
                print(f"pdf: {args.pdf}", file=sys.stderr)
            except PdfError as error:  # the HTML report stands; say why there is no PDF
                print(f"error: {error}", file=sys.stderr)
                return 2
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = audit.summary
    if args.json:
        print(json.dumps({key: summary[key] for key in SUMMARY_KEYS}), flush=True)
    else:
        print(_audit_summary(summary))
    for skipped in summary["skipped_items"]:
        print(f"skipped {skipped['input']}: {skipped['error']}", file=sys.stderr)
    return 1 if summary["skipped"] else 0


def _audited(dataset, config, args):
    from .audit.run import run_audit

    bar = ProgressBar()
    print(f"dataset: {dataset.origin}: {len(dataset.items)} items", file=sys.stderr)
    try:
        return run_audit(dataset, config, results_path=args.results, engine=args.engine, address=args.address,
                         progress=bar.update)
    finally:
        bar.close()


class ProgressBar:
    """Items done, items per second and time left, redrawn in place on stderr."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.start: tuple[float, int] | None = None
        self.drawn = False

    def update(self, what: str, done: int, total: int) -> None:
        if what != "items":  # the examples' maps and the sanity check, after every item
            phase = {"examples": "explaining the examples", "sanity": "sanity checks"}.get(what, what)
            self.stream.write(f"\r{phase}: {done}/{total}" + " " * 60)
            self.stream.flush()
            return
        now = time.perf_counter()
        if self.start is None:
            self.start = (now, done)  # resumed items do not count towards the rate
        began, first = self.start
        rate = (done - first) / (now - began) if now > began and done > first else 0.0
        left = f"{_clock((total - done) / rate)} left" if rate else "starting"
        width = 30
        filled = round(width * done / total) if total else width
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} items  {rate:.1f} items/s  {left}   "
        self.stream.write(line)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _audit_summary(summary: dict) -> str:
    def pct(value):
        return "n/a" if value is None else f"{value:.1%}"

    lines = [f"items {summary['items']}, evaluated {summary['evaluated']}, skipped {summary['skipped']}",
             f"accuracy {pct(summary['accuracy'])}, top-5 {pct(summary['top5_accuracy'])}, "
             f"ECE {summary['ece']:.3f}" if summary["ece"] is not None else "no item evaluated"]
    for column, values in summary["per_group"].items():
        shown = ", ".join(f"{value} {pct(row['accuracy'])} (n={row['size']})" for value, row in values.items())
        lines.append(f"by {column}: {shown}")
    for method, row in summary["faithfulness"].items():
        refs = "; ".join(f"{name} {r['deletion_auc']:.3f} / {r['insertion_auc']:.3f}" for name, r in row["references"].items())
        lines.append(f"faithfulness {method} over {row['items']} items: deletion {row['deletion_auc']:.3f}, "
                     f"insertion {row['insertion_auc']:.3f} (references, deletion / insertion: {refs})")
    return "\n".join(lines)

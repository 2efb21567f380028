"""Explain an image-text match: which pixels and which words made a prompt fit a photo.

One forward pass of each tower gives every prompt's probability (softmax over the prompts of the
scaled cosine similarities). A prompt's heatmap then costs one backward pass of the image tower
(Grad-CAM on a block's input, or gradient-weighted attention relevancy for a ViT, Chefer et al.
2021); word relevance is Integrated Gradients on the prompt's word embeddings. The explained
output is always the target prompt's scaled similarity with the image. Faithfulness, when asked,
measures each prompt's maps on that prompt's probability (deletion and insertion, as for images),
with the references computed once per prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from models.image_text import ImageTextModel

from ..evaluation.faithfulness import STEPS, check_replacement, check_steps, measure_faithfulness
from ..inputs.image import shrink_to
from ..methods.baselines import image_baseline
from ..methods.cam import CAM_VARIANTS
from ..methods.gradients import integrated_gradients
from ..records.clip import ClipReport, PromptRelevance
from ..records.common import ImageExplanation, ModelSummary, Prediction
from ..records.text import TokenAttribution
from .image import DISPLAY_LONG_SIDE, stretch_to_aspect, upsample

CLIP_METHODS = ("gradcam", "relevancy", "text-integrated-gradients")
MAX_PROMPTS = 32
MAX_PROMPT_CHARACTERS = 1000


class PromptError(ValueError):
    """The prompts cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class ClipSettings:
    layer: str | None = None  # Grad-CAM: the block whose input is read; None = the last
    ig_steps: int = 64
    ig_method: str = "adaptive"
    faithfulness: bool = False  # deletion / insertion of the maps, on their prompt's probability
    faithfulness_every_prompt: bool = False  # all explained prompts' maps, not only the target's (costly)
    faithfulness_steps: int = STEPS
    faithfulness_replacement: str = "blurred"
    seed: int = 0  # faithfulness's tie-breaks and random reference


def clean_prompts(prompts: Sequence[str], template: str = "") -> tuple[list[str], list[str]]:
    """Prompts as the model will read them, and notes on what changed."""
    for text in (*prompts, template):
        try:
            str(text).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. undecodable bytes from a command line
            raise PromptError("A prompt or the template holds characters that are not valid Unicode; please retype it.") from None
    notes, seen, kept = [], set(), []
    for prompt in prompts:
        text = " ".join(str(prompt).split())[:MAX_PROMPT_CHARACTERS]
        if not text:
            continue
        if template:
            if "{}" not in template:
                raise PromptError("The template needs {} where each prompt goes, e.g. “a photo of a {}”.")
            text = template.replace("{}", text)
        if text.lower() in seen:
            notes.append(f"“{text}” appears twice; it is used once.")
            continue
        seen.add(text.lower())
        kept.append(text)
    if not kept:
        raise PromptError("Please give at least one prompt, e.g. “a photo of a cat”.")
    if len(kept) > MAX_PROMPTS:
        notes.append(f"{len(kept)} prompts given; the first {MAX_PROMPTS} are used.")
        kept = kept[:MAX_PROMPTS]
    if len(kept) == 1:
        notes.append("With a single prompt its probability is always 100%: add another prompt to compare.")
    return kept, notes


def embed_prompts(model: ImageTextModel, prompts: Sequence[str], notes: list[str]):
    """The prompts' tokens and unit-length embeddings; a note in `notes` for each prompt that was cut."""
    tokens = model.tokenize(prompts)
    notes += [f"Prompt {i + 1} is longer than {model.max_prompt_tokens} tokens and was cut."
              for i, cut in enumerate(tokens.truncated) if cut]
    return tokens, model.text_embeddings(tokens)


def explain_image_text(
    model: ImageTextModel,
    images: Sequence[np.ndarray],
    prompts: Sequence[str],
    methods: Sequence[str] = (),
    target: int | None = None,
    settings: ClipSettings = ClipSettings(),
    template: str = "",
    image_index: int = 0,
    every_prompt: bool = False,
    progress=None,
) -> ClipReport:
    """Probabilities for every image x prompt; maps and word relevance for one image.

    `every_prompt` explains every prompt (side by side, or picked later) instead of the target only.
    `progress(what, done, total)` hears about faithfulness, prompt by prompt.
    """
    unknown = [m for m in methods if m not in CLIP_METHODS]
    if unknown:
        raise ValueError(f"unknown method {', '.join(unknown)}; choose from {', '.join(CLIP_METHODS)}")
    if "relevancy" in methods and not model.has_attention:
        raise ValueError(f"attention relevancy needs a ViT image tower; {model.info.name} has none")
    if not images:
        raise ValueError("no image to explain")
    prompts, notes = clean_prompts(prompts, template)
    if settings.faithfulness:
        check_steps(settings.faithfulness_steps)
        check_replacement(settings.faithfulness_replacement)
    with model.lock:
        tokens, text = embed_prompts(model, prompts, notes)
        pixels = [model.preprocess(rgb) for rgb in images]
        with torch.no_grad():
            embeddings = torch.cat([model.image_embedding(p) for p in pixels])
        similarity = embeddings @ text.T
        probabilities = (model.scale * similarity).softmax(-1)
        row = probabilities[image_index]
        predictions = tuple(Prediction(i, p, float(row[i])) for i, p in enumerate(prompts))
        index = int(row.argmax()) if target is None else _prompt_index(target, len(prompts))
        chosen = predictions[index]
        explained = range(len(prompts)) if every_prompt else (index,)
        summary = ModelSummary(**model.info.as_dict())
        display = shrink_to(images[image_index], DISPLAY_LONG_SIDE)
        context = (display, images[image_index].shape[:2], summary, predictions)
        maps = []
        if "gradcam" in methods:
            maps += _grad_cam(model, pixels[image_index], text, explained, predictions, settings, context)
        if "relevancy" in methods:
            maps += _relevancy(model, pixels[image_index], text, explained, predictions, context)
        if settings.faithfulness and maps:
            measured = range(len(prompts)) if settings.faithfulness_every_prompt else (index,)
            maps = _with_faithfulness(model, pixels[image_index], text, maps, measured, settings, progress)
        words = ()
        if "text-integrated-gradients" in methods:
            words = tuple(_word_relevance(model, tokens, i, embeddings[image_index], settings) for i in explained)
    return ClipReport(
        summary, model.how, tuple(prompts), tuple(notes), probabilities.numpy(), similarity.numpy(),
        predictions, chosen, tuple(maps), words,
    )


def _with_faithfulness(model, pixels, text, maps, which, settings: ClipSettings, progress=None) -> list[ImageExplanation]:
    """The maps of the prompts in `which`, each on its prompt's probability (softmax over every prompt),
    references once per prompt; the other maps unchanged."""
    empty = image_baseline(pixels, settings.faithfulness_replacement, *model.pixel_range())
    measured = {}
    prompts = [p for p in dict.fromkeys(m.target.index for m in maps) if p in which]
    for done, prompt in enumerate(prompts):
        if progress is not None:
            progress(f"Faithfulness: prompt {done + 1} of {len(prompts)}", done, len(prompts))
        def probability(batch: torch.Tensor, prompt=prompt) -> torch.Tensor:
            return (model.scale * model.image_embedding(batch) @ text.T).softmax(-1)[:, prompt]

        mine = {m.method: m.scores for m in maps if m.target.index == prompt}
        for method, result in measure_faithfulness(probability, pixels, empty, mine, settings.faithfulness_steps,
                                                   settings.faithfulness_replacement, settings.seed).items():
            measured[(method, prompt)] = result
    return [replace(m, faithfulness=measured[(m.method, m.target.index)]) if (m.method, m.target.index) in measured
            else m for m in maps]


def _prompt_index(target, count: int) -> int:
    try:
        index = int(target)
    except (TypeError, ValueError):
        raise PromptError(f"The target must be a prompt number from 0 to {count - 1}.") from None
    if not 0 <= index < count:
        raise PromptError(f"Prompt {index} does not exist: there are {count} prompts (0 to {count - 1}).")
    return index


def _record(method, grid: torch.Tensor, size, prediction, context, layer=None, params=None) -> ImageExplanation:
    """The map as computed (`grid`) and resampled to the input's `size` at the photo's aspect."""
    display, shape, summary, predictions = context
    values = stretch_to_aspect(upsample(grid, size).float().numpy(), shape)
    return ImageExplanation(method, prediction, display, values, False, summary, predictions, layer, params or {},
                            grid=grid.float().numpy(), photo_shape=tuple(shape))


def _grad_cam(model, pixels, text, explained, predictions, settings, context) -> list[ImageExplanation]:
    layer = settings.layer or model.default_layer
    embedding, leaf, grid = model.image_embedding_from(pixels, layer)
    scores = model.scale * (embedding @ text.T)[0]
    records = []
    for number, prompt in enumerate(explained):
        last = number == len(explained) - 1
        (gradient,) = torch.autograd.grad(scores[prompt], leaf, retain_graph=not last)
        cam = CAM_VARIANTS["gradcam"](grid(leaf.detach()), grid(gradient))
        records.append(_record("gradcam", cam, pixels.shape[-2:], predictions[prompt], context,
                               layer=layer, params={"layer": layer}))
    return records


def _relevancy(model, pixels, text, explained, predictions, context) -> list[ImageExplanation]:
    """Chefer et al. 2021: R = I; for each block R += mean_heads((grad * A)+) @ R; read the class token's row."""
    embedding, attentions = model.image_embedding_with_attention(pixels)
    scores = model.scale * (embedding @ text.T)[0]
    size = model.grid_size
    records = []
    for number, prompt in enumerate(explained):
        last = number == len(explained) - 1
        gradients = torch.autograd.grad(scores[prompt], attentions, retain_graph=not last)
        tokens = attentions[0].shape[-1]
        relevance = torch.eye(tokens)
        for attention, gradient in zip(attentions, gradients):
            weighted = (gradient * attention.detach()).clamp(min=0).mean(1)[0]
            relevance = relevance + weighted @ relevance
        patches = relevance[0, 1:].reshape(size, size)
        records.append(_record("relevancy", patches, pixels.shape[-2:], predictions[prompt], context))
    return records


def _word_relevance(model, tokens, index: int, image_embedding, settings) -> PromptRelevance:
    ids = tokens.ids[index : index + 1, : len(tokens.tokens[index])]
    special = tokens.special[index]
    baseline_ids = ids.clone()
    baseline_ids[0, [i for i, s in enumerate(special) if not s]] = model.pad_id()
    image = image_embedding.detach()

    def forward(word_embeddings):
        return (model.scale * model.text_embedding_from(word_embeddings, ids) @ image)[:, None]

    result = integrated_gradients(
        forward, model.word_embeddings(ids), model.word_embeddings(baseline_ids), 0, settings.ig_steps, settings.ig_method
    )
    params = {"ig_steps": settings.ig_steps, "ig_method": settings.ig_method, "gradient_steps": result.gradient_steps,
              "baseline": "padding for every token but the start and end tokens"}
    values = result.attribution[0].sum(-1).float().numpy()
    attribution = TokenAttribution(values, result.convergence_delta, result.output_difference, params)
    return PromptRelevance(index, tokens.tokens[index], special, attribution)

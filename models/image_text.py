"""Image-text models behind one interface: CLIP, and a ConSE-style stand-in built from the bundled models.

Both embed an image and prompts into one space and score them by scaled cosine similarity. For
explanations each offers the same hook-free entry points as the other adapters:
- `image_embedding_from(pixels, layer)`: the embedding, and the chosen layer's output as a leaf
  tensor the explainer owns (stages before it run without autograd), plus how to view it as a
  (channels, h, w) grid for Grad-CAM;
- `image_embedding_with_attention(pixels)`: for a ViT tower, the embedding and every layer's
  attention map, still in the autograd graph (gradient-weighted relevancy); None for a CNN;
- `text_embedding_from(word_embeddings, ids)`: prompt embeddings from word embeddings the explainer
  owns (Integrated Gradients over words).

`with_random` makes a private copy whose image tower has some parts re-initialised (the sanity check),
sharing everything else, the text tower included (models/randomise.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .image_classifier import ImageClassifier, InputPolicy, pixel_range
from .info import ModelInfo
from .randomise import Part, random_copy, randomised_after
from .turns import Turns

Grid = Callable[[torch.Tensor], torch.Tensor]  # leaf (1, ...) -> (channels, h, w)


@dataclass(frozen=True)
class Prompts:
    ids: torch.Tensor  # (P, T), padded
    tokens: tuple[tuple[str, ...], ...]  # per prompt, without padding
    special: tuple[tuple[bool, ...], ...]
    truncated: tuple[bool, ...]


class ImageTextModel:
    """Shared parts: preprocessing, prompt tokenising, scoring; subclasses supply the towers."""

    max_prompt_tokens: int
    layers: tuple[str, ...] = ()
    randomised: tuple[str, ...] = ()  # image-tower parts re-initialised by with_random, top-down

    def __init__(self, info: ModelInfo, policy: InputPolicy, tokenizer, scale: float, how: str, lock=None):
        self.info = info
        self.policy = policy
        self.tokenizer = tokenizer
        self.scale = float(scale)
        self.how = how
        self.lock = lock or Turns(info.name)  # one per model: sessions share it across threads

    @property
    def default_layer(self) -> str | None:
        return self.layers[-1] if self.layers else None

    @property
    def has_attention(self) -> bool:
        return False

    def resized(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB at the image tower's input size: the whole photo, so maps cover every pixel shown."""
        height, width = self.policy.fixed_size
        shrinking = height * width < rgb.shape[0] * rgb.shape[1]
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)

    def preprocess(self, rgb) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(self.resized(rgb))).permute(2, 0, 1)[None].float().div_(255)
        mean = torch.tensor(self.policy.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.policy.std).view(1, 3, 1, 1)
        return (x - mean) / std

    def pixel_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised values of black and white, per channel, shaped (1, 3, 1, 1)."""
        return pixel_range(self.policy)

    def tokenize(self, prompts: Sequence[str]) -> Prompts:
        # split_special_tokens: a prompt typed with "<|endoftext|>" or "[SEP]" means those characters;
        # as control tokens they would end the prompt early or be masked out.
        with self.lock:  # fast tokenizers keep truncation settings as state
            full = self.tokenizer(list(prompts), add_special_tokens=True, split_special_tokens=True)
            batch = self.tokenizer(
                list(prompts), padding=True, truncation=True, max_length=self.max_prompt_tokens,
                return_tensors="pt", return_special_tokens_mask=True, split_special_tokens=True,
            )
        tokens, special = [], []
        for row, mask, attention in zip(batch["input_ids"], batch["special_tokens_mask"], batch["attention_mask"]):
            length = int(attention.sum())
            tokens.append(tuple(self.tokenizer.convert_ids_to_tokens(row[:length].tolist())))
            special.append(tuple(bool(m) for m in mask[:length].tolist()))
        truncated = tuple(len(ids) > self.max_prompt_tokens for ids in full["input_ids"])
        return Prompts(batch["input_ids"], tuple(tokens), tuple(special), truncated)

    def word_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.text_network.get_input_embeddings()(ids).detach()

    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else 0)

    def text_embeddings(self, prompts: Prompts) -> torch.Tensor:
        with torch.no_grad():
            return self.text_embedding_from(self.word_embeddings(prompts.ids), prompts.ids)

    def image_embedding(self, pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.image_embedding_from(pixels, None)[0]


class ClipModel(ImageTextModel):
    """A Hugging Face CLIPModel with a ViT vision tower."""

    def __init__(self, network, tokenizer, policy: InputPolicy, info: ModelInfo):
        self.network = network.eval().requires_grad_(False)
        self.text_network = network.text_model
        super().__init__(
            info, policy, tokenizer, float(network.logit_scale.exp()),
            "CLIP: the image and each prompt are embedded by two towers trained together; the most similar "
            "prompt wins (cosine similarity x the model's learned scale, then softmax over the prompts).",
        )
        vision = network.vision_model
        self.max_prompt_tokens = int(network.config.text_config.max_position_embeddings)
        self.layers = tuple(f"block {i}" for i in range(1, len(vision.encoder.layers) + 1))
        self.grid_size = vision.config.image_size // vision.config.patch_size

    @property
    def has_attention(self) -> bool:
        return True

    def randomisable_parts(self) -> tuple[Part, ...]:
        """The image tower top-down: its projection head, each block from the last, then its embeddings."""
        vision = self.network.vision_model
        blocks = [(f"block {i + 1}", block) for i, block in enumerate(vision.encoder.layers)]
        return (("head", nn.ModuleList([vision.post_layernorm, self.network.visual_projection])), *reversed(blocks),
                ("embeddings", nn.ModuleList([vision.embeddings, vision.pre_layrnorm])))

    def with_random(self, names: Sequence[str], seed: int = 0) -> ClipModel:
        """A private copy (its own lock) with the named image-tower parts re-initialised; this model is only read."""
        with self.lock:
            twin = ClipModel(random_copy(self.network, self.randomisable_parts(), names, seed), self.tokenizer,
                             self.policy, self.info)
        twin.randomised = randomised_after(self.randomisable_parts(), self.randomised, names)
        twin.info = replace(self.info, note=f"image tower re-initialised: {' + '.join(twin.randomised)}")
        return twin

    def _vision_start(self, pixels: torch.Tensor) -> torch.Tensor:
        vision = self.network.vision_model
        return vision.pre_layrnorm(vision.embeddings(pixels))

    def _vision_end(self, hidden: torch.Tensor) -> torch.Tensor:
        vision = self.network.vision_model
        pooled = vision.post_layernorm(hidden[:, 0])
        return F.normalize(self.network.visual_projection(pooled), dim=-1)

    def image_embedding_from(self, pixels, layer):
        """Grad-CAM reads the input of `layer` (a block): its patch tokens reshaped into a grid."""
        blocks = self.network.vision_model.encoder.layers
        split = len(blocks) if layer is None else self.layers.index(layer)
        with torch.no_grad():
            hidden = self._vision_start(pixels)
            for block in blocks[:split]:
                hidden = block(hidden, None)
        leaf = None
        if layer is not None:
            leaf = hidden.detach().requires_grad_(True)
            hidden = leaf
        with torch.set_grad_enabled(leaf is not None):
            for block in blocks[split:]:
                hidden = block(hidden, None)
            return self._vision_end(hidden), leaf, self._grid

    def _grid(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[0, 1:]  # drop the class token
        return patches.T.reshape(-1, self.grid_size, self.grid_size)

    def image_embedding_with_attention(self, pixels):
        """Embedding and each block's attention (1, heads, N, N), differentiable through a leaf we own."""
        with torch.no_grad():
            start = self._vision_start(pixels)
        hidden = start.detach().requires_grad_(True)
        maps = []
        with torch.enable_grad():
            for block in self.network.vision_model.encoder.layers:
                residual = hidden
                attended, weights = block.self_attn(hidden_states=block.layer_norm1(hidden))
                hidden = residual + attended
                hidden = hidden + block.mlp(block.layer_norm2(hidden))
                maps.append(weights)
            return self._vision_end(hidden), maps

    def text_embedding_from(self, word_embeddings: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        text = self.network.text_model
        hidden = text.embeddings(inputs_embeds=word_embeddings)
        length = hidden.shape[1]
        causal = torch.full((length, length), torch.finfo(hidden.dtype).min).triu(1)[None, None]
        for block in text.encoder.layers:
            hidden = block(hidden, causal)
        hidden = text.final_layer_norm(hidden)
        pooled = hidden[torch.arange(hidden.shape[0]), _eos_positions(text, ids)]
        return F.normalize(self.network.text_projection(pooled), dim=-1)


def _eos_positions(text_model, ids: torch.Tensor) -> torch.Tensor:
    """Where CLIP reads each prompt: its end-of-text token (the same rule transformers applies)."""
    eos = text_model.eos_token_id
    if eos == 2:  # configs from before transformers fixed eos_token_id: the highest id is the end token
        return ids.to(torch.int).argmax(-1)
    return (ids == eos).to(torch.int).argmax(-1)


class ConseModel(ImageTextModel):
    """Offline stand-in in the manner of ConSE (Norouzi et al. 2014): the bundled ImageNet classifier's
    top class probabilities weight the bundled text encoder's embeddings of those class names; that
    mixture is the image embedding, compared with each prompt's embedding like CLIP does."""

    TOP_CLASSES = 10  # ConSE's T: the convex combination uses the classifier's T most probable classes

    def __init__(self, classifier: ImageClassifier, encoder, note: str = ""):
        self.classifier = classifier
        self.encoder = encoder
        self.text_network = encoder.network
        info = ModelInfo("ConSE: EfficientNet-Lite0 + MiniLM (bundled)", "bundled packages", note)
        how = (
            "ConSE (offline stand-in, not CLIP): the ImageNet classifier's 10 most probable classes are mixed, "
            "weighted by probability, from the text encoder's embeddings of their names; the prompt closest "
            "to that mixture wins (cosine similarity x 20, then softmax over the prompts)."
        )
        super().__init__(info, classifier.policy, encoder.tokenizer, 20.0, how, lock=classifier.lock)
        self.max_prompt_tokens = 128
        self.layers = classifier.layers
        with self.lock, torch.no_grad():
            names = self.tokenize(list(classifier.labels))
            self.class_embeddings = self.text_embedding_from(self.word_embeddings(names.ids), names.ids)

    @property
    def network(self) -> nn.Module:
        """The image tower (what the sanity check randomises); the text encoder is `text_network`."""
        return self.classifier.network

    def resized(self, rgb: np.ndarray) -> np.ndarray:
        return self.classifier.resized(rgb)

    def preprocess(self, rgb) -> torch.Tensor:
        return self.classifier.preprocess(rgb)

    def pixel_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier.pixel_range()

    def randomisable_parts(self) -> tuple[Part, ...]:
        return self.classifier.randomisable_parts()

    def with_random(self, names: Sequence[str], seed: int = 0) -> ConseModel:
        """A private copy whose classifier has the named parts re-initialised; the class-name embeddings,
        from the text encoder, stay."""
        twin = copy.copy(self)
        twin.classifier = self.classifier.with_random(names, seed)
        twin.lock = twin.classifier.lock
        twin.randomised = twin.classifier.randomised
        twin.info = replace(self.info, note=f"image classifier re-initialised: {' + '.join(twin.randomised)}")
        return twin

    def mixture(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The classes whose name embeddings make up the image embedding, and their weights (summing to 1)."""
        top = logits.softmax(-1).topk(self.TOP_CLASSES, dim=-1)
        return top.indices, top.values / top.values.sum(-1, keepdim=True)

    def image_embedding_from(self, pixels, layer):
        logits, leaf = self.classifier.forward_from(pixels, layer)
        with torch.set_grad_enabled(leaf is not None):
            indices, weights = self.mixture(logits)
            mixture = (weights[..., None] * self.class_embeddings[indices]).sum(1)
            return F.normalize(mixture, dim=-1), leaf, lambda feature: feature[0]

    def image_embedding_with_attention(self, pixels):
        return None  # a CNN tower has no attention to weigh

    def text_embedding_from(self, word_embeddings: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad_id()).long().expand(word_embeddings.shape[0], -1)  # one prompt may serve a batch
        output = self.text_network(inputs_embeds=word_embeddings, attention_mask=mask)
        states, weights = output.last_hidden_state, mask[..., None].to(output.last_hidden_state.dtype)
        return F.normalize((states * weights).sum(1) / weights.sum(1).clamp_min(1), dim=-1)


"""An image classifier adapter: preprocessing, labels, and the network split into named stages.

Explainers never touch the network directly. `forward_from` runs the stages up to a chosen layer
without gradients, hands back that layer's output as a fresh leaf tensor, and runs the rest with
gradients: Grad-CAM then differentiates against a tensor the explainer owns, so nothing is ever
attached to (or written into) the shared, frozen network.

`with_random` makes a private copy with some parts re-initialised (the model-randomisation sanity
check): the copy shares every module and tensor it does not change with the shared network and
rebuilds its stages around the copied modules, so the shared network is only ever read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch import nn

from .info import ModelInfo
from .randomise import Part, random_copy, randomised_after
from .turns import Turns

Stage = tuple[str, Callable[[torch.Tensor], torch.Tensor]]


@dataclass(frozen=True)
class InputPolicy:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    short_side: int = 224  # convolutional nets take any size: keep the photo's aspect
    long_side_max: int = 448  # bounds compute for panoramas
    fixed_size: tuple[int, int] | None = None  # (height, width) for models that need one size


def input_size(policy: InputPolicy, height: int, width: int) -> tuple[int, int]:
    """(h, w) the model reads a photo of (height, width) at."""
    if policy.fixed_size:
        return policy.fixed_size
    # One factor for both sides keeps the aspect, also for panoramas capped by the long side.
    scale = min(policy.short_side / min(height, width), policy.long_side_max / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def pixel_range(policy: InputPolicy) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised values of black and white under `policy`, per channel, shaped (1, 3, 1, 1)."""
    mean = torch.tensor(policy.mean).view(1, 3, 1, 1)
    std = torch.tensor(policy.std).view(1, 3, 1, 1)
    return (0 - mean) / std, (1 - mean) / std


class ImageClassifier:
    def __init__(
        self,
        network: nn.Module,
        labels: Sequence[str],
        policy: InputPolicy,
        info: ModelInfo,
        stages: Sequence[Stage] = (),
        head: Callable[[torch.Tensor], torch.Tensor] | None = None,
        logits_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        parts: Sequence[Part] = (),
        rebuild: Callable[[nn.Module], ImageClassifier] | None = None,
        readout: tuple[Callable[[torch.Tensor], torch.Tensor], nn.Linear] | None = None,
    ):
        self.network = network.eval().requires_grad_(False)
        self.labels = tuple(labels)
        self.policy = policy
        self.info = info
        self._stages = list(stages)
        self._head = head
        self._logits_fn = logits_fn
        # Top-down (head first); `rebuild` makes an adapter like this one around a copy of `network`.
        self._parts = list(parts)
        self._rebuild = rebuild
        self.randomised: tuple[str, ...] = ()  # parts re-initialised by with_random, top-down
        self._reused: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None  # see reuse_stages
        # The head as pooling then one linear layer, when it is that: the logits as sums of contributions.
        self.readout = readout
        # One lock per model: Streamlit sessions share this object across threads.
        self.lock = Turns(info.name)

    @property
    def layers(self) -> tuple[str, ...]:
        """Layers Grad-CAM may read, shallow to deep; empty when the architecture is not split."""
        return tuple(name for name, _ in self._stages[1:]) if self._head else ()

    @property
    def stages(self) -> tuple[Stage, ...]:
        """(name, module) in the order they run: the network's anatomy, shallow to deep."""
        return tuple(self._stages) if self._head else ()

    def head_module(self) -> nn.Module | None:
        """What follows the last stage (its parameters), when the adapter names it."""
        named = dict(self._parts)
        return named.get("head")

    @property
    def default_layer(self) -> str | None:
        return self.layers[-1] if self.layers else None

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        return input_size(self.policy, height, width)

    def resized(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3) at the model's input size (h, w, 3): the photo as the model sees it."""
        h, w = self.input_size(*rgb.shape[:2])
        shrinking = h * w < rgb.shape[0] * rgb.shape[1]
        return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """uint8 RGB (H, W, 3) -> normalised (1, 3, h, w) float tensor at the model's input size."""
        resized = self.resized(rgb)
        x = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1)[None].float().div_(255)
        mean = torch.tensor(self.policy.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.policy.std).view(1, 3, 1, 1)
        return (x - mean) / std

    def pixel_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised values of black and white, per channel, shaped (1, 3, 1, 1)."""
        return pixel_range(self.policy)

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        if self._logits_fn is not None:
            return self._logits_fn(pixels)
        return self.forward_from(pixels, None)[0]

    def forward_from(self, pixels: torch.Tensor, layer: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits, and the output of `layer` as a leaf that requires grad (None when layer is None).

        Stages before the layer run without autograd, so only the part after it is differentiated.
        """
        if layer is not None and layer not in self.layers:
            raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(self.layers)}")
        x, feature = pixels, None
        tracking = torch.is_grad_enabled() and pixels.requires_grad
        reused = self._reusable(pixels, tracking)
        for name, stage in self._stages:
            if name in reused:
                x = reused[name]
            else:
                with torch.set_grad_enabled(tracking or feature is not None):
                    x = stage(x)
            if name == layer:
                feature = x.detach().requires_grad_(True)
                x = feature
        with torch.set_grad_enabled(tracking or feature is not None):
            return self._head(x), feature

    def stage_outputs(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's output for `pixels`, without autograd (what copies can reuse: `reuse_stages`)."""
        return self.stages_and_logits(pixels)[0]

    def stages_and_logits(self, pixels: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Every stage's output and the logits (None without a head), from one forward pass without autograd."""
        outputs, x = {}, pixels
        with torch.no_grad():
            for name, stage in self._stages:
                x = outputs[name] = stage(x)
            return outputs, self._head(x) if self._head else None

    def stage_gradients(self, pixels: torch.Tensor, index: int | None = None) -> tuple[torch.Tensor, dict, dict]:
        """Logits, every stage's output, and the gradient of class `index`'s logit (None: the top class) with
        respect to each, from one forward and one backward pass: Grad-CAM at every depth at once. The stem runs
        without autograd and its output becomes a leaf this call owns, so nothing reaches the network."""
        if not self.stages:
            raise ValueError(f"{self.info.name} is not split into stages")
        outputs: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            x = self._stages[0][1](pixels)
        x = x.detach().requires_grad_(True)
        outputs[self._stages[0][0]] = x
        with torch.enable_grad():
            for name, stage in self._stages[1:]:
                x = outputs[name] = stage(x)
            logits = self._head(x)
            index = int(logits[0].argmax()) if index is None else index
            gradients = torch.autograd.grad(logits[0, index], list(outputs.values()))
        detached = {name: out.detach() for name, out in outputs.items()}
        return logits.detach(), detached, dict(zip(outputs, gradients))

    def reuse_stages(self, pixels: torch.Tensor, outputs: dict[str, torch.Tensor]) -> None:
        """Let this copy take `outputs` (the shared model's `stage_outputs(pixels)`) for its stages below the
        first one it re-initialised: they hold the very same weights, so they would compute the same. Used
        for forwards of exactly these pixels without gradients to them (the sanity check's CAMs)."""
        self._reused = (pixels, outputs)

    def _reusable(self, pixels: torch.Tensor, tracking: bool) -> dict[str, torch.Tensor]:
        if self._reused is None or tracking:
            return {}
        original, outputs = self._reused
        names = [name for name, _ in self._stages]
        random = set(self.randomised)
        if random - set(names) - {"head"}:  # a part that is no stage: which stages it touches is unknown
            return {}
        if pixels.shape != original.shape or not torch.equal(pixels, original):
            return {}
        first = min((names.index(name) for name in random if name in names), default=len(names))
        return {name: outputs[name] for name in names[:first]}

    @property
    def rebuildable(self) -> bool:
        """Whether this adapter can rebuild itself around a copy of its network (see with_random)."""
        return self._rebuild is not None

    def randomisable_parts(self) -> tuple[Part, ...]:
        """The parts `with_random` can re-initialise, top-down; empty if this adapter cannot rebuild itself."""
        return tuple(self._parts) if self.rebuildable else ()

    def with_random(self, names: Sequence[str], seed: int = 0) -> ImageClassifier:
        """A private copy (its own lock) with the named parts re-initialised; this classifier is only read.

        The copy shares every module and tensor it does not re-initialise with this classifier
        (models/randomise.py), so a copy of a copy adds only the newly random parts."""
        if not self.randomisable_parts():
            why = "it names no parts" if self.rebuildable else "its adapter cannot rebuild itself around a copy"
            raise ValueError(f"{self.info.name} cannot be copied with random weights: {why}")
        # The shared network is only read, but under its lock: no other session's call runs meanwhile.
        with self.lock:
            network = random_copy(self.network, self.randomisable_parts(), names, seed)
            twin = self._rebuild(network)  # its eval() and requires_grad_(False) reach shared modules: no-ops
        twin.randomised = randomised_after(self.randomisable_parts(), self.randomised, names)
        twin.info = replace(self.info, note=f"weights re-initialised: {' + '.join(twin.randomised)}")
        return twin

"""Perturbation attributions: LIME, Kernel SHAP and Occlusion over a plain forward function.

They need no gradients at all: parts of the input (superpixels, words, square patches) are swapped
for a caller-supplied baseline and the change in one output is measured. As in gradients.py, a
plain function means no hooks anywhere, so these are safe on a shared model; values come back raw.

LIME and Kernel SHAP run captum's samplers in an "interpretable space": one 0/1 entry per part,
turned into a real input by `_Parts`. Special tokens are simply not parts, so they never move and
never enter the regression (as features they would change Kernel SHAP's weighting).

Reproducible without global state: every random draw comes from a local torch.Generator, and the
surrogate fit reads captum's dataset directly, because iterating a torch DataLoader (which
captum's own fit does) draws a seed from torch's global RNG, which other threads use.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from captum._utils.models.model import Model
from captum.attr import KernelShap, Lime, Occlusion
from captum.attr._core.lime import get_exp_kernel_similarity_function
from skimage.segmentation import slic

from .batching import batch_for

Forward = Callable[[torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None]

SEGMENTS = (2, 500)  # slic's target count; it may produce a few fewer
SAMPLES = (10, 5000)
SEED_MAX = 2**32 - 1
COMPACTNESS = (0.1, 100.0)
PATCH_MIN = 2  # the maximum is the input's shorter side

# Defaults measured by benchmarks/perturbation_speed.py (bundled model, five samples, 2 threads,
# ~18 ms per input). Stability = rank correlation of two seeds' maps, median over the photos.
DEFAULT_SEGMENTS = 25  # slic gives 12-20; at 50 (44 on the cat) LIME needed 400 samples for 0.84
DEFAULT_COMPACTNESS = 10.0  # slic's own
DEFAULT_LIME_SAMPLES = 100  # stability 0.91 in 1.7 s (200: 0.95 in 3.7 s)
DEFAULT_SHAP_SAMPLES = 200  # 0.84 in 3.7 s; 0.9 needs ~400 (0.89 in 7.7 s)
DEFAULT_WORD_SAMPLES = 200  # MiniLM, 15-21 words: under 1 s, stability 0.91-0.99 (measured by hand)
DEFAULT_PATCH = 48  # pixels at the model's input size (short side 224): 118 forwards, 2.0 s
DEFAULT_STRIDE = 24

LIME_KERNEL_WIDTH = 0.25  # on the cosine distance between 0/1 vectors, as in Ribeiro et al.'s lime_image
# lime_image's own surrogate, Ridge(alpha=1). captum's default, Lasso(alpha=0.01), zeroed 31 of the 48
# superpixels of three sample photos at 100 samples: probabilities move by less than alpha per part.
LIME_RIDGE = 1.0


@dataclass(frozen=True)
class PerturbationResult:
    attribution: torch.Tensor  # (h, w) for images; (T,) for text, the word's value on its first piece
    params: dict = field(default_factory=dict)  # what was actually used (segments produced, samples, seed...)
    forwards: int = 0  # inputs the model evaluated


# --- Settings ------------------------------------------------------------------------------------


def _whole(name: str, value, low: int, high: int, unit: str = "", why: str = "") -> int:
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or not low <= number <= high:
        shown = value if number is None else number
        raise ValueError(f"{name} must be a whole number between {low} and {high}{unit}{why} (got {shown!r}).")
    return number


def check_seed(seed) -> int:
    return _whole("Seed", seed, 0, SEED_MAX)


def check_samples(samples) -> int:
    return _whole("Samples", samples, *SAMPLES)


def check_image_settings(segments, samples: Sequence, patch, stride, height: int, width: int) -> None:
    """Every image setting at once, before any model work: a clear message for the first one out of range."""
    _whole("Segments", segments, *SEGMENTS)
    for count in samples:
        check_samples(count)
    patch = _whole("Patch", patch, PATCH_MIN, min(height, width), " pixels", ", the input's shorter side")
    _whole("Stride", stride, 1, patch, " pixels", ", the patch side")


# --- Superpixels and parts -----------------------------------------------------------------------


def superpixels(
    rgb: np.ndarray, segments: int = DEFAULT_SEGMENTS, compactness: float = DEFAULT_COMPACTNESS
) -> np.ndarray:
    """SLIC superpixels of a uint8 RGB image at the model's input size: (h, w) labels 0..K-1.

    Computed once, a label map can serve LIME and Kernel SHAP alike (same parts, comparable maps)."""
    segments = _whole("Segments", segments, *SEGMENTS)
    if not COMPACTNESS[0] <= float(compactness) <= COMPACTNESS[1]:
        low, high = COMPACTNESS
        raise ValueError(f"Compactness must be between {low:g} and {high:g} (got {compactness!r}).")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"superpixels needs an (h, w, 3) RGB image, got shape {rgb.shape}")
    labels = slic(rgb, n_segments=segments, compactness=float(compactness), start_label=0, channel_axis=-1)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int64)  # no gaps


class _Counted:
    """The forward function reduced to the target output, counting evaluated inputs for progress."""

    def __init__(self, forward: Forward, target: int, progress: Progress | None, total: int):
        self.forward, self.target, self.progress, self.total, self.done = forward, target, progress, total, 0

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.forward(x)[:, self.target]
        self.done += x.shape[0]
        if self.progress is not None:
            self.progress(self.done, self.total)
        return out


class _Parts(_Counted):
    """Turns 0/1 vectors (B, M), one entry per part, into inputs: a kept part shows the input, a
    dropped one the baseline; positions owned by no part (owner -1) always show the input."""

    def __init__(self, forward, inputs, baseline, target, owner: torch.Tensor, progress, total: int):
        super().__init__(forward, target, progress, total)
        _check_pair(inputs, baseline)
        self.inputs, self.baseline = inputs, baseline
        self.count = int(owner.max()) + 1
        self.owner = owner.flatten().clone()
        self.owner[self.owner < 0] = self.count  # the extra column below: always kept
        self.mask_shape = owner.shape

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        keep = torch.cat([z.to(self.inputs.dtype), z.new_ones(len(z), 1, dtype=self.inputs.dtype)], 1)
        keep = keep[:, self.owner].view(len(z), *self.mask_shape)
        return self.evaluate(self.baseline + keep * (self.inputs - self.baseline))


def _check_pair(inputs: torch.Tensor, baseline: torch.Tensor) -> None:
    if inputs.shape[0] != 1 or baseline.shape != inputs.shape:
        shapes = f"{tuple(inputs.shape)} and {tuple(baseline.shape)}"
        raise ValueError(f"need one input and a baseline of its shape, got {shapes}")


# --- Surrogate models and samplers ---------------------------------------------------------------


class _WeightedLinear(Model):
    """Weighted least squares (ridge when `ridge` > 0) with an unpenalised intercept, in float64.

    Reads captum's TensorDataset instead of iterating its DataLoader: that iteration would draw
    from torch's global RNG."""

    def __init__(self, ridge: float):
        self.ridge = ridge
        self.coefficients = None

    def fit(self, train_data, **kwargs):
        x, y, w = (t.double() for t in train_data.dataset.tensors)
        w = w / w.sum()
        xc, yc = x - w @ x, y - w @ y
        root = w.sqrt()[:, None]
        a, b = root * xc, root[:, 0] * yc
        if self.ridge > 0:  # `ridge` as sklearn's Ridge(alpha) with weights averaging 1
            a = torch.cat([a, torch.eye(x.shape[1], dtype=a.dtype) * (self.ridge / len(x)) ** 0.5])
            b = torch.cat([b, b.new_zeros(x.shape[1])])
        self.coefficients = torch.linalg.lstsq(a, b[:, None], driver="gelsd").solution.T.float()
        return {}

    def representation(self) -> torch.Tensor:
        return self.coefficients

    def __call__(self, x):
        return x @ self.coefficients.T


class _SeededLime(Lime):
    def __init__(self, forward, generator: torch.Generator):
        def bernoulli(original, **kwargs):  # LIME's sampler: each part kept with probability 1/2, in pairs
            while True:
                z = torch.rand(1, kwargs["num_interp_features"], generator=generator).lt(0.5).long()
                yield z
                yield 1 - z

        super().__init__(
            forward,
            interpretable_model=_WeightedLinear(LIME_RIDGE),
            similarity_func=get_exp_kernel_similarity_function("cosine", LIME_KERNEL_WIDTH),
            perturb_func=bernoulli,
        )


class _SeededKernelShap(KernelShap):
    """captum's Kernel SHAP, its sampler drawing from a local generator: the all and none samples
    first, then a size k with p(k) ~ (M - 1) / (k (M - k)) and a uniform subset of that size, each
    followed by its complement. p(k) = p(M - k), so every sample keeps the Shapley kernel's
    distribution; pairing only cancels noise (Covert & Lee 2021: exact for pairwise interactions)."""

    def __init__(self, forward, generator: torch.Generator):
        super().__init__(forward)
        # captum: sklearn LinearRegression. Its kernel stays: weight 1, and 1e6 on the all and none
        # samples, which pins the values' sum to f(x) - f(baseline).
        self.interpretable_model = _WeightedLinear(0.0)
        self.generator = generator

    def kernel_shap_perturb_generator(self, original_inp, **kwargs):
        count = kwargs["num_interp_features"]
        sizes = kwargs["num_select_distribution"].probs  # captum's p(k), k = 0..M-1, p(0) = 0
        yield torch.ones(1, count, dtype=torch.long)
        yield torch.zeros(1, count, dtype=torch.long)
        while True:
            size = int(torch.multinomial(sizes, 1, generator=self.generator))
            z = torch.zeros(1, count, dtype=torch.long)
            z[0, torch.randperm(count, generator=self.generator)[:size]] = 1
            yield z
            yield 1 - z


def _batch(inputs: torch.Tensor) -> int:
    """How many perturbed copies of `inputs` (one example) go into one forward call."""
    return batch_for(inputs[0].numel())


def _sampled(kind: str, parts: _Parts, samples: int, seed: int) -> torch.Tensor:
    """One coefficient per part (M,) from LIME or Kernel SHAP."""
    if parts.count == 1:  # one part: both reduce to f(x) - f(baseline); Kernel SHAP's p(k) is 0/0
        ends = parts(torch.tensor([[1.0], [0.0]]))
        return (ends[:1] - ends[1:]).float()
    explainer = {"lime": _SeededLime, "kernel-shap": _SeededKernelShap}[kind]
    method = explainer(parts, torch.Generator().manual_seed(seed))
    ones = torch.ones(1, parts.count)
    coefficients = method.attribute(
        ones, baselines=torch.zeros_like(ones), feature_mask=torch.arange(parts.count)[None],
        n_samples=samples, perturbations_per_eval=_batch(parts.inputs), return_input_shape=False,
    )
    return coefficients.flatten().float()


# --- Images --------------------------------------------------------------------------------------


def _superpixel_map(kind, forward, pixels, baseline, target, labels, samples, seed, progress) -> PerturbationResult:
    samples, seed = check_samples(samples), check_seed(seed)
    labels = np.asarray(labels)
    if pixels.ndim != 4 or labels.shape != tuple(pixels.shape[-2:]):
        raise ValueError(f"the label map {labels.shape} must match the pixels {tuple(pixels.shape)}")
    owner = torch.from_numpy(np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int64))
    count = int(owner.max()) + 1
    # (1, h, w): one mask for every channel
    parts = _Parts(forward, pixels, baseline, target, owner[None], progress, samples if count > 1 else 2)
    values = _sampled(kind, parts, samples, seed)[owner]
    params = {"segments": parts.count, "samples": samples, "seed": seed}
    return PerturbationResult(values, params, parts.done)


def lime_image(
    forward: Forward, pixels: torch.Tensor, baseline: torch.Tensor, target: int, labels: np.ndarray,
    samples: int = DEFAULT_LIME_SAMPLES, seed: int = 0, progress: Progress | None = None,
) -> PerturbationResult:
    """LIME over superpixels (`labels` from `superpixels`): each pixel carries its superpixel's signed
    coefficient in a weighted ridge fit of the target output on which superpixels were kept."""
    return _superpixel_map("lime", forward, pixels, baseline, target, labels, samples, seed, progress)


def kernel_shap_image(
    forward: Forward, pixels: torch.Tensor, baseline: torch.Tensor, target: int, labels: np.ndarray,
    samples: int = DEFAULT_SHAP_SAMPLES, seed: int = 0, progress: Progress | None = None,
) -> PerturbationResult:
    """Kernel SHAP over superpixels: estimated Shapley values, which sum to about f(x) - f(baseline)."""
    return _superpixel_map("kernel-shap", forward, pixels, baseline, target, labels, samples, seed, progress)


def occlusion_windows(height: int, width: int, patch: int, stride: int) -> int:
    """How many patches captum's Occlusion slides over an image (the last one may overhang)."""
    return (-(-(height - patch) // stride) + 1) * (-(-(width - patch) // stride) + 1)


def occlusion_image(
    forward: Forward, pixels: torch.Tensor, baseline: torch.Tensor, target: int,
    patch: int = DEFAULT_PATCH, stride: int = DEFAULT_STRIDE, progress: Progress | None = None,
) -> PerturbationResult:
    """Drop of the target output when a square patch shows the baseline, averaged over the patches
    covering each pixel (signed: negative where hiding the patch raises the output)."""
    h, w = pixels.shape[-2:]
    patch = _whole("Patch", patch, PATCH_MIN, min(h, w), " pixels", ", the input's shorter side")
    stride = _whole("Stride", stride, 1, patch, " pixels", ", the patch side")
    _check_pair(pixels, baseline)
    counted = _Counted(forward, target, progress, 1 + occlusion_windows(h, w, patch, stride))
    channels = pixels.shape[1]  # a patch covers every channel
    values = Occlusion(counted.evaluate).attribute(
        pixels, sliding_window_shapes=(channels, patch, patch), strides=(channels, stride, stride),
        baselines=baseline, perturbations_per_eval=_batch(pixels),
    )
    return PerturbationResult(values[0].mean(0).float(), {"patch": patch, "stride": stride}, counted.done)


# --- Text ----------------------------------------------------------------------------------------


def _word_parts(forward, embeddings, baseline, target, words, progress, total) -> _Parts:
    length = embeddings.shape[1]
    owner = torch.full((length,), -1, dtype=torch.long)
    for index, pieces in enumerate(words):
        if not len(pieces):
            raise ValueError(f"word {index} has no tokens")
        for token in pieces:
            if not 0 <= token < length or owner[token] >= 0:
                raise ValueError(f"token {token} is out of range or in two words")
            owner[token] = index
    if not len(words):
        raise ValueError("The text has no words to perturb (only special tokens).")
    return _Parts(forward, embeddings, baseline, target, owner[:, None], progress, total)  # (T, 1): over D


def _on_first_pieces(values: torch.Tensor, words: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """One value per token: the word's on its first piece, 0 elsewhere, so pieces sum to words."""
    out = torch.zeros(length)
    for value, pieces in zip(values, words):
        out[min(pieces)] = value
    return out


def _word_values(kind, forward, embeddings, baseline, target, words, samples, seed, progress) -> PerturbationResult:
    samples, seed = check_samples(samples), check_seed(seed)
    parts = _word_parts(forward, embeddings, baseline, target, words, progress, samples if len(words) > 1 else 2)
    values = _sampled(kind, parts, samples, seed)
    params = {"words": parts.count, "samples": samples, "seed": seed}
    return PerturbationResult(_on_first_pieces(values, words, embeddings.shape[1]), params, parts.done)


def lime_words(
    forward: Forward, embeddings: torch.Tensor, baseline: torch.Tensor, target: int, words: Sequence[Sequence[int]],
    samples: int = DEFAULT_WORD_SAMPLES, seed: int = 0, progress: Progress | None = None,
) -> PerturbationResult:
    """LIME over words. `embeddings` and `baseline` are (1, T, D) word embeddings; `words` lists each
    word's token indices; tokens in no word (special tokens) stay as they are and get 0."""
    return _word_values("lime", forward, embeddings, baseline, target, words, samples, seed, progress)


def kernel_shap_words(
    forward: Forward, embeddings: torch.Tensor, baseline: torch.Tensor, target: int, words: Sequence[Sequence[int]],
    samples: int = DEFAULT_WORD_SAMPLES, seed: int = 0, progress: Progress | None = None,
) -> PerturbationResult:
    """Kernel SHAP over words, as `lime_words`."""
    return _word_values("kernel-shap", forward, embeddings, baseline, target, words, samples, seed, progress)


def occlusion_words(
    forward: Forward, embeddings: torch.Tensor, baseline: torch.Tensor, target: int, words: Sequence[Sequence[int]],
    progress: Progress | None = None,
) -> PerturbationResult:
    """Drop of the target output when one word (all its pieces) shows the baseline: 1 + words forwards."""
    parts = _word_parts(forward, embeddings, baseline, target, words, progress, len(words) + 1)
    ones = torch.ones(1, parts.count)
    occlusion = Occlusion(parts)  # one word at a time, over the 0/1 vector
    values = occlusion.attribute(ones, (1,), strides=1, baselines=0.0, perturbations_per_eval=_batch(embeddings))
    params = {"words": parts.count}
    return PerturbationResult(_on_first_pieces(values[0], words, embeddings.shape[1]), params, parts.done)

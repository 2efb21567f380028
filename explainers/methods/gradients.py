"""Gradient attributions: Integrated Gradients and SmoothGrad over a plain forward function.

A plain function (not a module) means no hooks are registered anywhere, so these are safe on a
model that other threads share. Values come back raw; figures normalise them at draw time.

Integrated Gradients offers captum's fixed quadrature rules and an adaptive trapezoid rule of our
own. Along the straight path from baseline to input, each interval [a, b] must satisfy
`(x - x') . integral of grad = f(b) - f(a)`; both sides are known once the gradients at a and b
are, so the completeness error of every interval is measured, not guessed, and new steps go
where it is largest. On real photos the output changes in a small part of the path, where
uniform or Gauss-Legendre steps are too sparse (see benchmarks/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

Forward = Callable[[torch.Tensor], torch.Tensor]
IG_METHODS = ("adaptive", "gausslegendre", "riemann_trapezoid")
ADAPTIVE_START = 8  # intervals of the first uniform pass
ADAPTIVE_TOLERANCE = 0.05  # stop once the summed |interval errors| is below 5% of f(x) - f(x')


@dataclass(frozen=True)
class IGResult:
    attribution: torch.Tensor  # same shape as the input
    convergence_delta: float  # sum(attribution) - (f(x) - f(baseline))
    output_difference: float  # f(x) - f(baseline) for the target
    gradient_steps: int  # gradient evaluations spent


def integrated_gradients(
    forward: Forward,
    inputs: torch.Tensor,
    baseline: torch.Tensor,
    target: int,
    steps: int,
    method: str = "adaptive",
    batch_size: int = 8,
) -> IGResult:
    """IG for one input (batch of 1) and one target output."""
    if method == "adaptive":
        return _adaptive_ig(forward, inputs, baseline, target, steps, batch_size)
    if method not in IG_METHODS:
        raise ValueError(f"unknown integration method {method!r}; choose one of {', '.join(IG_METHODS)}")
    attribution, delta = IntegratedGradients(forward).attribute(
        inputs,
        baselines=baseline,
        target=target,
        n_steps=steps,
        method=method,
        internal_batch_size=batch_size,
        return_convergence_delta=True,
    )
    with torch.no_grad():
        ends = forward(torch.cat([inputs, baseline]))[:, target]
    return IGResult(attribution.detach(), float(delta.sum()), float(ends[0] - ends[1]), steps)


def _path_gradients(forward: Forward, inputs, baseline, target: int, alphas: list[float]):
    """Target output and its input gradient at baseline + alpha * (input - baseline)."""
    points = torch.cat([baseline + a * (inputs - baseline) for a in alphas]).requires_grad_(True)
    with torch.enable_grad():
        outputs = forward(points)[:, target]
        (gradients,) = torch.autograd.grad(outputs.sum(), points)
    return outputs.detach(), gradients


def _enough(largest: torch.Tensor, excess: torch.Tensor) -> int:
    """How many of the largest interval errors to halve: just enough to remove the excess, counting
    on halving to cut an interval's trapezoid error about fourfold. Fewer points, less waste."""
    removed = torch.cumsum(largest * 0.75, 0)
    return int((removed < excess).sum()) + 1


def _adaptive_ig(forward: Forward, inputs, baseline, target: int, budget: int, batch_size: int) -> IGResult:
    budget = max(budget, ADAPTIVE_START + 1)
    difference = inputs - baseline
    alphas = torch.linspace(0, 1, ADAPTIVE_START + 1)
    values, grads = _path_gradients(forward, inputs, baseline, target, alphas.tolist())
    slopes = (grads * difference).flatten(1).sum(1)  # d f / d alpha at each node
    total = values[-1] - values[0]
    while True:
        widths = alphas[1:] - alphas[:-1]
        errors = widths / 2 * (slopes[1:] + slopes[:-1]) - (values[1:] - values[:-1])
        room = budget - len(alphas)
        allowed = ADAPTIVE_TOLERANCE * total.abs()
        if room <= 0 or errors.abs().sum() <= allowed:
            break
        worst = errors.abs().topk(min(batch_size, room, len(errors))).indices
        worst = worst[: _enough(errors.abs()[worst], errors.abs().sum() - allowed)]
        new = (alphas[worst] + alphas[worst + 1]) / 2
        new_values, new_grads = _path_gradients(forward, inputs, baseline, target, new.tolist())
        order = torch.cat([alphas, new]).argsort()
        alphas = torch.cat([alphas, new])[order]
        values = torch.cat([values, new_values])[order]
        grads = torch.cat([grads, new_grads])[order]
        slopes = torch.cat([slopes, (new_grads * difference).flatten(1).sum(1)])[order]
    widths = alphas[1:] - alphas[:-1]
    weights = torch.zeros(len(alphas), dtype=grads.dtype)
    weights[1:] += widths / 2
    weights[:-1] += widths / 2
    attribution = torch.einsum("n,n...->...", weights, grads)[None] * difference
    return IGResult(attribution, float(attribution.sum() - total), float(total), len(alphas))


def smoothgrad(
    forward: Forward, inputs: torch.Tensor, target: int, samples: int, noise: float, seed: int, batch_size: int = 8
) -> torch.Tensor:
    """Mean absolute input gradient over noisy copies; `noise` is a fraction of the input's range."""
    stdev = noise * float(inputs.max() - inputs.min())
    # captum draws the noise from torch's global generator: seed it so a result can be reproduced.
    torch.manual_seed(seed)
    tunnel = NoiseTunnel(Saliency(forward))
    attribution = tunnel.attribute(
        inputs, nt_type="smoothgrad", nt_samples=samples, nt_samples_batch_size=batch_size, stdevs=stdev, target=target
    )
    return attribution.detach()

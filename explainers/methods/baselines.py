"""What "no evidence" looks like for an image: the input Integrated Gradients starts from, and what
faithfulness curves and perturbation methods put where they remove pixels.

Every choice is out of distribution for the model in its own way (black is a colour the photo may
have, a blur keeps coarse shapes, noise adds texture), which is why the choice is shown with results.
"""

from __future__ import annotations

import cv2
import torch

BASELINES = ("black", "blurred", "noise", "mean")


def image_baseline(pixels: torch.Tensor, kind: str, black: torch.Tensor, white: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """`pixels` (1, 3, h, w) normalised; `black`/`white` are the normalised values of 0 and 1, (1, 3, 1, 1)."""
    if kind == "black":
        return black.expand_as(pixels).clone()
    if kind == "blurred":
        # sigma of 1/16 of the long side: the photo blurred beyond recognition, its colours kept
        sigma = max(pixels.shape[-2:]) / 16
        image = pixels[0].permute(1, 2, 0).numpy()
        blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        return torch.from_numpy(blurred).permute(2, 0, 1)[None].contiguous()
    if kind == "noise":
        generator = torch.Generator().manual_seed(seed)
        uniform = torch.rand(pixels.shape, generator=generator)
        return black + uniform * (white - black)
    if kind == "mean":
        return pixels.mean(dim=(-2, -1), keepdim=True).expand_as(pixels).clone()
    raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")

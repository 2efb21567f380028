"""The Grad-CAM family: each variant is one function from (activations, gradients) to a map.

Inputs are one image's feature map A and the gradient G of the target score with respect to it,
both shaped (channels, h, w). Every variant ends in a ReLU: CAMs show evidence *for* the class.
"""

from __future__ import annotations

import torch


def grad_cam(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """Selvaraju et al. 2017: channels weighted by their average gradient."""
    return torch.relu(torch.einsum("c,chw->hw", G.mean(dim=(1, 2)), A))


def grad_cam_plus_plus(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """Chattopadhay et al. 2018: pixel-wise weights alpha favour all instances of an object."""
    g2, g3 = G.pow(2), G.pow(3)
    denominator = 2 * g2 + A.sum(dim=(1, 2), keepdim=True) * g3
    alpha = torch.where(denominator != 0, g2 / torch.where(denominator != 0, denominator, 1), 0)
    weights = (alpha * torch.relu(G)).sum(dim=(1, 2))
    return torch.relu(torch.einsum("c,chw->hw", weights, A))


def layer_cam(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """Jiang et al. 2021: element-wise positive gradients; sharper maps from shallow layers."""
    return torch.relu((torch.relu(G) * A).sum(dim=0))


CAM_VARIANTS = {"gradcam": grad_cam, "gradcam++": grad_cam_plus_plus, "layercam": layer_cam}

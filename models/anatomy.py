"""A convolutional network's anatomy read from its modules (nothing run, nothing attached): parameter counts,
theoretical receptive fields and the first convolution's filters."""

from __future__ import annotations

from torch import nn

# Branches that run beside the main path (a residual's projection): they add no depth to the receptive field.
SIDE_BRANCHES = ("shortcut", "downsample.", "residual")


def parameter_count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def receptive_fields(stages) -> list[tuple[int, int] | None]:
    """Per stage, (receptive field, jump) in input pixels after it: how wide a patch of the photo one cell
    of its output can see, and how many pixels apart its cells are. Walks each stage's convolutions and
    poolings in the order they are registered, skipping side branches (ResNet's shortcut). None from the
    first stage whose layers cannot be read (a pooling with a kernel given as an adaptive size, say)."""
    field, jump, out = 1, 1, []
    known = True
    for _, stage in stages:
        for name, module in stage.named_modules() if isinstance(stage, nn.Module) else ():
            if any(branch in f"{name}." for branch in SIDE_BRANCHES):
                continue
            if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                kernel, stride, dilation = (_first(getattr(module, a, 1)) for a in ("kernel_size", "stride", "dilation"))
                field += (kernel - 1) * dilation * jump
                jump *= stride
            elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                known = False
        if not isinstance(stage, nn.Module):
            known = False
        out.append((field, jump) if known else None)
    return out


def first_filters(stem: nn.Module):
    """The first convolution that reads the three colour channels: its weights (out, 3, k, k), or None."""
    for module in stem.modules() if isinstance(stem, nn.Module) else ():
        if isinstance(module, nn.Conv2d):
            if module.in_channels == 3 and module.groups == 1:
                return module.weight.detach()
            return None
    return None


def _first(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)

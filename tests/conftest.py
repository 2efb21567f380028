"""Shared fixtures: the bundled classifier (loaded once), sample photos, and a few helpers."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for a module: on 2 cores shared with other processes, torch's default
    (every core, spin-waiting) oversubscribes and runs several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def bundled():
    from models.image_models import load_bundled

    return load_bundled()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    import skimage.data

    return skimage.data.chelsea()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    import skimage.data

    return skimage.data.coffee()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


@pytest.fixture(scope="session")
def chelsea_jpeg(chelsea) -> bytes:
    return encode(chelsea, "JPEG", quality=90)


def encode(image, fmt: str, **options) -> bytes:
    """An array or PIL image as the bytes of a file in `fmt`."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def assert_no_hooks_or_grads(network: torch.nn.Module) -> None:
    """Nothing an explainer did may stay behind on a shared network or in torch's global state."""
    from torch.nn.modules import module as torch_module

    for name, sub in network.named_modules():
        for attribute in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            hooks = getattr(sub, attribute, {})
            assert len(hooks) == 0, f"{name or 'network'} still has {attribute}: {hooks}"
    for attribute in (
        "_global_forward_hooks",
        "_global_forward_pre_hooks",
        "_global_backward_hooks",
        "_global_backward_pre_hooks",
        "_global_module_registration_hooks",
        "_global_parameter_registration_hooks",
        "_global_buffer_registration_hooks",
    ):
        hooks = getattr(torch_module, attribute, {})
        assert len(hooks) == 0, f"torch global {attribute} is not empty: {hooks}"
    for name, parameter in network.named_parameters():
        assert parameter.grad is None, f"{name} has a .grad"
        assert not parameter.requires_grad, f"{name} requires grad"
    for name, buffer in network.named_buffers():
        assert buffer.grad is None, f"buffer {name} has a .grad"

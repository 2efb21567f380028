"""Public-domain photos that ship inside scikit-image and matplotlib: a gallery for a classroom."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image

# name -> (loader, what a teacher may point out)
SAMPLES = {
    "Cat (Chelsea)": ("skimage:chelsea", "A tabby cat; ImageNet has five cat classes to confuse."),
    "Coffee cup": ("skimage:coffee", "An espresso cup on a saucer."),
    "Astronaut (Eileen Collins)": ("skimage:astronaut", "A person with a helmet and a flag: which object wins?"),
    "Rocket launch": ("skimage:rocket", "A rocket on the pad: missile, projectile or platform?"),
    "Grace Hopper": ("matplotlib:grace_hopper.jpg", "A portrait in uniform: clothing classes, not people."),
}


@cache
def sample_bytes(name: str) -> bytes:
    """The sample as PNG bytes, exactly as if the user had uploaded it."""
    source = SAMPLES[name][0]
    kind, _, item = source.partition(":")
    if kind == "skimage":
        import skimage.data

        pixels = getattr(skimage.data, item)()
    else:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data(item) as handle:
            pixels = np.asarray(Image.open(handle).convert("RGB"))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()

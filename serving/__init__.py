"""Where model work runs: in this process (the default) or on Ray Serve deployments (XAI_BACKEND=ray-serve).

Pages get a model with `load(kind, name)` and run work on it with `run(model, task, *args, **kwargs)`. In process
the model is the loaded adapter and `task(model, ...)` runs right here, in the model's line (models/turns.py).
With Ray Serve the model is a `Remote` card (info, labels, layers: no weights) and the same task function runs in
a replica of the kind's deployment (serving/deployment.py); its callbacks (progress, partial results, the place
in line) come back as events and are called here, and its result comes back as the same record. A page cannot
tell the two apart, except that the service may be unavailable (serving/errors.py).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from .cards import Remote
from .errors import ServiceError, ServiceTimeout, ServiceUnavailable

BACKENDS = ("in-process", "ray-serve")
__all__ = ["BACKENDS", "Remote", "ServiceError", "ServiceTimeout", "ServiceUnavailable", "backend", "load", "run",
           "variant"]


@functools.cache
def backend() -> str:
    """XAI_BACKEND, read once: "in-process" (default) or "ray-serve" (then XAI_RAY_ADDRESS: the Ray
    cluster's head as `ray start` printed it; default "auto", the one started on this machine)."""
    chosen = os.environ.get("XAI_BACKEND", "").strip().lower() or "in-process"
    if chosen not in BACKENDS:
        raise ValueError(f"XAI_BACKEND must be one of {', '.join(BACKENDS)}, not {chosen!r}.")
    return chosen


@functools.cache
def _service():
    from .ray_serve import RayServe

    return RayServe(os.environ.get("XAI_RAY_ADDRESS", "").strip() or "auto")


def load(kind: str, name: str):
    """The model `name` of `kind` ("image", "text", "clip"): loaded here, or described by the model service."""
    if backend() == "ray-serve":
        return _service().describe(kind, name)
    from models.runtime import configure_torch

    from .tasks import LOADERS

    configure_torch()
    return LOADERS[kind](name)


def variant(model, variant):
    """A zero-shot model's classifier for `variant` (its labels' descriptions): made here, or described by the
    model service, which makes it there when a task first runs on it."""
    if isinstance(model, Remote):
        return _service().describe(model.kind, (model.name, variant))
    return model.classifier(variant)


def run(model, task: Callable, *args, notice: Callable[[str], None] | None = None, **kwargs):
    """`task(model, *args, **kwargs)`, here or in the model service. `notice(text)` hears the service's trouble
    (unavailable, trying again) and may raise to give up; callbacks among the kwargs are called here either way."""
    if isinstance(model, Remote):
        return _service().run(model, task, args, kwargs, notice)
    return task(model, *args, **kwargs)

"""Copies of a network with some parts re-initialised, sharing everything else (the sanity check).

A copy shares every module and tensor it does not re-initialise with the network it was made from,
so a copy of a copy adds only its newly random parts, and the shared network is only ever read (call
under its lock). Each part draws from its own generator, seeded by (seed, its place top-down), so a
part gets the same fresh weights whichever others are random, and torch's global generator, which
other sessions' threads use, is neither read nor moved.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

Part = tuple[str, nn.Module]  # a named group of the network's modules that can be re-initialised


def random_copy(network: nn.Module, parts: Sequence[Part], names: Sequence[str], seed: int) -> nn.Module:
    """`network` copied with the `names`d parts (of `parts`, top-down) re-initialised."""
    known = dict(parts)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown part {', '.join(map(repr, unknown))}; choose from {', '.join(known)}")
    places = {name: place for place, (name, _) in enumerate(parts)}
    where = {id(module): path for path, module in network.named_modules()}
    owners = {name: _owners(where, known[name]) for name in names}
    paths = {path for name in names for path in owners[name]}
    fresh = {id(t) for path in paths for t in _own_tensors(network.get_submodule(path))}
    # deepcopy hands back whatever the memo maps an object's id to. Only the re-initialised modules
    # and the modules that contain them are copied; every other module and tensor is shared.
    copied = {ancestor for path in paths for ancestor in _ancestors(path)}
    memo = {id(t): t for t in (*network.parameters(), *network.buffers()) if id(t) not in fresh}
    memo |= {id(m): m for path, m in network.named_modules() if path not in copied}
    twin = copy.deepcopy(network, memo)
    with torch.no_grad():
        for name in names:
            generator = _generator(seed, places[name])
            with _DrawFrom(generator):
                for path in owners[name]:
                    _reinitialise(twin.get_submodule(path), generator)
    return twin


def randomised_after(parts: Sequence[Part], before: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """The parts random in a copy: those random before and the newly named ones, top-down."""
    return tuple(name for name, _ in parts if name in before or name in names)


def _generator(seed: int, place: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, place]).generate_state(1)[0]))


def _ancestors(path: str) -> list[str]:
    """"a.b.c" -> ["", "a", "a.b", "a.b.c"]: the module at `path` and every module that contains it."""
    parts = path.split(".") if path else []
    return [".".join(parts[:i]) for i in range(len(parts) + 1)]


def _own_tensors(module: nn.Module) -> list[torch.Tensor]:
    return [t for t in (*module.parameters(recurse=False), *module.buffers(recurse=False)) if t is not None]


def _owners(where: dict[int, str], part: nn.Module) -> list[str]:
    """Paths in the network (`where`: module id -> path) of the modules of `part` that hold tensors; a part
    may be a fresh container (the Sequential a stage is built as) around modules of the network."""
    owners = [module for module in part.modules() if _own_tensors(module)]
    outside = [type(module).__name__ for module in owners if id(module) not in where]
    if outside:
        raise ValueError(f"a part holds modules that are not in the network: {', '.join(outside)}")
    return [where[id(module)] for module in owners]


def _reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    """The module's own initialisation (BatchNorm: weight 1, bias 0 and fresh running statistics); tensors
    of a module without one (e.g. a ViT's position embeddings) are shuffled: their scale stays, what was
    learned goes."""
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        return
    for tensor in _own_tensors(module):
        if tensor.is_floating_point():
            order = torch.randperm(tensor.numel(), generator=generator)
            tensor.copy_(tensor.flatten()[order].view_as(tensor))


class _DrawFrom(TorchDispatchMode):
    """Make every random draw that names no generator use `generator`.

    `reset_parameters()` draws from torch's global generator, which other sessions' threads seed and use
    (SmoothGrad seeds it); dispatch modes are per thread, so this neither reads nor moves that state."""

    def __init__(self, generator: torch.Generator):
        super().__init__()
        self.generator = generator

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if kwargs.get("generator") is None and any(a.name == "generator" for a in func._schema.arguments):
            kwargs["generator"] = self.generator
        return func(*args, **kwargs)

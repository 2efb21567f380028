"""How many copies of one input go through the model per forward call, for methods that need many.

Measured with EfficientNet-Lite0 at 224 x 337 on 2 threads (benchmarks/perturbation_speed.py): 19-21 ms
per image two at a time, 23-27 one at a time, 30-32 four, 46 eight and 65-75 sixteen at a time. Big
batches make activations beyond glibc's 32 MB mmap threshold, mapped and page-faulted afresh on every
call, so a batch is capped by its size in input values (2-3 photos), not by a count alone.
"""

from __future__ import annotations

MAX_BATCH = 16  # e.g. texts: short inputs, many per call
BATCH_VALUES = 2**19  # input values per call: two or three photos at the model's input size


def batch_for(values_per_input: int) -> int:
    """Inputs per forward call, for inputs of `values_per_input` numbers each."""
    return max(1, min(MAX_BATCH, BATCH_VALUES // max(1, values_per_input)))

"""Median wall time of a call, after one warm-up call whose result is handed back."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeats: int):
    """(median seconds over `repeats` calls, the warm-up call's result)."""
    result = fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result

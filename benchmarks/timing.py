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


def interleaved(calls: dict, repeats: int) -> dict:
    """{name: median seconds} for calls timed in turn (a, b, c, a, b, c, ...) after one warm-up each, so a
    slow spell of the machine falls on all of them alike and their ratios stay fair."""
    for fn in calls.values():
        fn()
    samples = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}

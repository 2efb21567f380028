"""Process-wide torch settings, applied once before any model runs."""

from __future__ import annotations

import ctypes
import os
import threading

import torch

_done = threading.Event()
_lock = threading.Lock()


def configure_torch() -> None:
    """Fix torch's thread pools once: concurrent sessions each using every core oversubscribe the CPU."""
    with _lock:
        if _done.is_set():
            return
        threads = int(os.environ.get("XAI_TORCH_THREADS", 0)) or max(1, os.cpu_count() or 1)
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or parallel work has started: keep what is there
            pass
        _one_blas_thread()
        _done.set()


def _one_blas_thread() -> None:
    """numpy's OpenBLAS to one thread. numpy only does small sums here (a head's step-by-step, statistics),
    but OpenBLAS's idle threads keep spinning after each call and take the cores from the next torch forward
    pass: a click on a head made the next BERT-base prediction 2x slower, and the click itself took 5.6 ms
    instead of 0.5 ms (measured with benchmarks/timing.interleaved, with and without this limit). The limit covers the libraries loaded now;
    the environment variable those loaded later (scipy's own OpenBLAS, read when it loads)."""
    from threadpoolctl import threadpool_limits

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    threadpool_limits(limits=1, user_api="blas")


def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to trim
        return None


_libc = _glibc()


def release_freed_memory() -> None:
    """Hand memory freed by the last explanation back to the OS.

    Integrated Gradients briefly needs about 1 GB. glibc keeps what a thread freed in that thread's own
    arena, and every Streamlit session runs in its own thread, so a server explaining for eight sessions
    at once held about eight such peaks (measured: 8.1 GB; with this, 2.1 GB at the peak). malloc_trim
    takes about 0.1 s after Integrated Gradients and about 1 ms after a text explanation."""
    if _libc is not None:
        _libc.malloc_trim(0)

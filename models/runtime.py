"""Process-wide torch settings, applied once before any model runs."""

from __future__ import annotations

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
        _done.set()

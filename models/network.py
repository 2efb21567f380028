"""Decide once per process, within a couple of seconds, whether the model hub can be reached.

transformers alone spends about 27 s in retries before it gives up on a closed network; asking
once here lets every later load go straight to `local_files_only=True`.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 1.5
_TRUTHY = {"1", "true", "yes", "on"}
_lock = threading.Lock()
_verdict: bool | None = None


def offline_forced() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUTHY for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "XAI_OFFLINE"))


def _probe(host: str, port: int, result: list) -> None:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            result.append(True)
    except OSError:
        result.append(False)


def hub_reachable() -> bool:
    """True when the Hugging Face Hub answers a TCP connect; decided once, at most ~1.5 s."""
    global _verdict
    with _lock:
        if _verdict is None:
            if offline_forced():
                _verdict = False
            else:
                url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
                result: list[bool] = []
                # DNS lookups ignore socket timeouts, so the probe runs in a thread we stop waiting for.
                probe = threading.Thread(target=_probe, args=(url.hostname, url.port or 443, result), daemon=True)
                probe.start()
                probe.join(PROBE_TIMEOUT_S + 0.5)
                _verdict = bool(result and result[0])
        return _verdict

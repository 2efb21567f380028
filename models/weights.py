"""Find pretrained weights: a directory, the configured model folder, the local cache, then the Hub.

The first source that can serve wins. The Hub is asked only when `hub_reachable()` said yes once
for this process, so a closed network costs one quick probe, never a retry loop per request.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .network import hub_reachable

T = TypeVar("T")
MODEL_DIR_ENV = "XAI_MODEL_DIR"


class WeightsUnavailable(Exception):
    """No source could serve the weights; the message says what was tried, in plain words."""


def configured_dir() -> Path | None:
    value = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def local_candidates(model_id: str) -> list[tuple[Path, str]]:
    candidates = []
    if Path(model_id).expanduser().is_dir():
        candidates.append((Path(model_id).expanduser(), "local directory"))
    root = configured_dir()
    if root and (root / model_id).is_dir():
        candidates.append((root / model_id, f"configured model folder (${MODEL_DIR_ENV})"))
    return candidates


def load_pretrained(model_id: str, load: Callable[[str, bool], T]) -> tuple[T, str]:
    """Return (what `load(path_or_id, local_files_only)` built, where it came from)."""
    for path, source in local_candidates(model_id):
        try:
            return load(str(path), True), source
        except Exception as error:  # a user's folder can fail in many ways (bad JSON, torn safetensors...)
            raise WeightsUnavailable(f"the directory {path} does not hold a usable model ({first_line(error)})") from error
    try:
        return load(model_id, True), "local cache"
    except WeightsUnavailable:
        raise
    except Exception:  # not cached, or a torn cache entry: a download may still serve
        pass
    if not hub_reachable():
        raise WeightsUnavailable("weights are not in the local cache and the Hugging Face Hub is not reachable (offline)")
    try:
        return load(model_id, False), "downloaded from the Hugging Face Hub"
    except WeightsUnavailable:
        raise
    except Exception as error:
        raise WeightsUnavailable(f"could not be downloaded ({first_line(error)})") from error


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def check_tokenizer(tokenizer, vocab_size: int) -> None:
    """Refuse a tokenizer the model cannot use. transformers builds an almost empty one when the files
    are missing (every word becomes unknown), and another model's vocabulary indexes past the embeddings:
    either way every explanation would be wrong, silently."""
    if not getattr(tokenizer, "is_fast", False):
        raise WeightsUnavailable("the model has no fast tokenizer, which token positions need")
    if len(tokenizer) > vocab_size or len(tokenizer) <= len(tokenizer.all_special_ids) + 1:
        raise WeightsUnavailable(f"its tokenizer ({len(tokenizer)} tokens) does not fit the model ({vocab_size})")


def load_complete(model_class, source: str, config, local_only: bool):
    """`model_class.from_pretrained`, refusing weights that leave parts of the network unset: transformers
    fills those with random values, and explaining random values would mislead."""
    network, loading = model_class.from_pretrained(
        source, config=config, local_files_only=local_only, attn_implementation="eager", output_loading_info=True
    )
    if loading.get("missing_keys"):
        missing = sorted(loading["missing_keys"])
        raise WeightsUnavailable(f"the weights do not match the config ({len(missing)} missing, e.g. {missing[0]})")
    return network


def preprocessor_settings(source: str, local_only: bool) -> dict:
    """The model's preprocessor_config.json as a dict; empty when it has none."""
    import json

    from transformers.utils import cached_file

    path = cached_file(
        source, "preprocessor_config.json", local_files_only=local_only, _raise_exceptions_for_missing_entries=False
    )
    return json.loads(Path(path).read_text()) if path else {}

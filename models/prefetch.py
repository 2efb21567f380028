"""Prepare a machine for class the day before: download every named model into the local cache.

    python -m models.prefetch            # or: make prefetch

Afterwards the app finds them in the cache and runs with no network. Only what loading needs is
fetched: configs, tokenizer and preprocessor files, and safetensors weights (pickled .bin weights
only where a model has no safetensors). Progress bars come from huggingface_hub.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .image_models import DEFAULT_IMAGE_MODEL
from .image_text_models import DEFAULT_CLIP_MODEL
from .network import hub_reachable
from .text_models import DEFAULT_TEXT_MODEL

NAMED_MODELS = (DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, DEFAULT_CLIP_MODEL)
NEEDED = ["*.json", "*.txt", "*.model", "*.safetensors"]


def files_to_fetch(files: list[str]) -> list[str]:
    """Patterns for what loading needs; .bin weights only when there are no safetensors."""
    if any(name.endswith(".safetensors") for name in files):
        return NEEDED
    return NEEDED + ["pytorch_model*.bin"]


def prefetch(models=NAMED_MODELS, list_files: Callable | None = None, download: Callable | None = None, out=sys.stderr) -> int:
    """Download each model; 0 when all are cached, 2 when the Hub cannot be reached, 1 when one failed."""
    if not hub_reachable():
        print(
            "The Hugging Face Hub cannot be reached from this machine (or HF_HUB_OFFLINE is set), so nothing "
            "was downloaded. Run this again where there is a network; the app itself works offline with its "
            "bundled models.",
            file=out,
        )
        return 2
    if list_files is None or download is None:
        from huggingface_hub import list_repo_files, snapshot_download

        list_files, download = list_files or list_repo_files, download or snapshot_download
    failed = []
    for number, model_id in enumerate(models, 1):
        print(f"[{number}/{len(models)}] {model_id}", file=out)
        try:
            path = download(model_id, allow_patterns=files_to_fetch(list_files(model_id)))
        except Exception as error:  # report every model, then fail once
            failed.append(model_id)
            print(f"  could not download {model_id}: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=out)
            continue
        print(f"  cached in {path}", file=out)
    if failed:
        print(f"{len(failed)} of {len(models)} models could not be downloaded: {', '.join(failed)}", file=out)
        return 1
    print("All named models are in the local cache: the app now runs without a network.", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(prefetch())

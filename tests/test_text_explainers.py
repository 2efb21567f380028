"""The text explainers: a known answer, attention and rollout, IG completeness, the real bundled
MiniLM, records, and isolation (threads, hooks, gradients) on a shared classifier."""

from __future__ import annotations

import json
import math
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from conftest import TEXT_VOCAB, assert_no_hooks_or_grads, word_tokenizer
from explainers.records.as_json import text_record
from explainers.inputs.targets import TargetError
from explainers.tasks.text import TEXT_METHODS, TextSettings, attention_rollout, explain_text
from explainers.records.text import TextReport, classifier_view, grouped_values, token_groups
from models.info import ModelInfo
from models.text_classifier import TextClassifier
from models.text_models import load_text_model

pytestmark = pytest.mark.usefixtures("single_thread", "no_network")

ALL = ("integrated-gradients", "lime", "kernelshap", "occlusion", "attention", "rollout")


# --- A network whose answer is known ------------------------------------------------------------


class KeyWordNetwork(nn.Module):
    """"positive" rises with how much of one key word's embedding the text holds; "negative" is its mirror.

    Word embeddings are one-hot rows plus a little noise (so every token has a trace of the key
    direction); the decision reads the key coordinate summed over positions through a fixed tanh.
    Two "attention" layers (softmax of embedding similarities, two heads) mix the states: they are
    reported like a transformer's but the decision does not read them.
    """

    def __init__(self, key: str, layers: int = 2, heads: int = 2, max_positions: int = 32):
        super().__init__()
        size = len(TEXT_VOCAB)
        self.config = SimpleNamespace(max_position_embeddings=max_positions, num_hidden_layers=layers, num_attention_heads=heads)
        self.embeddings = nn.Embedding(size, size)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.embeddings.weight.copy_(torch.eye(size) + 0.05 * torch.randn(size, size, generator=generator))
            self.key = TEXT_VOCAB.index(key)
            # Other words hold only a trace of the key direction, so 30 of them cannot add up to the key word.
            self.embeddings.weight[:, self.key] *= 0.1
            self.embeddings.weight[self.key, self.key] = 1.0
        self.layers, self.heads = layers, heads

    def get_input_embeddings(self):
        return self.embeddings

    def attention_maps(self, states):
        scores = states @ states.transpose(-1, -2) / math.sqrt(states.shape[-1])
        return torch.stack([(scores * (h + 1)).softmax(-1) for h in range(self.heads)], dim=1)  # (B, heads, T, T)

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, output_attentions=False):
        x = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        states, maps = x, []
        for _ in range(self.layers):
            attention = self.attention_maps(states)
            maps.append(attention)
            states = 0.5 * states + 0.5 * attention.mean(1) @ states
        evidence = x[..., self.key].sum(-1)
        score = 3 * torch.tanh(2 * evidence - 1)
        return SimpleNamespace(
            logits=torch.stack([-score, score], dim=-1),
            last_hidden_state=states,
            attentions=tuple(maps) if output_attentions else None,
        )


def key_word_classifier(key: str = "wonderful", max_positions: int = 32) -> TextClassifier:
    network = KeyWordNetwork(key, max_positions=max_positions)
    return TextClassifier(
        network, word_tokenizer(), ["negative", "positive"], ModelInfo("key-word network", "test"),
        head=lambda output, mask: output.logits, pooling="cls", how="reads one word",
    )


@pytest.fixture(scope="module")
def keyword():
    return key_word_classifier()


@pytest.mark.parametrize(
    "text",
    ["The movie was wonderful.", "Wonderful!", "the plot was bad and the acting was awful but the film was wonderful",
     "wonderful plot, very bad acting, terrible film"],
)
def test_known_answer_ig_points_at_the_key_word(keyword, text):
    report = explain_text(keyword, text, ("integrated-gradients",))
    assert report.predictions[0].label == "positive"
    assert report.target.label == "positive"
    values = report.attribution.values
    assert values.shape == (len(report.tokens),)
    top = int(np.abs(values).argmax())
    assert report.tokens[top] == "wonderful", list(zip(report.tokens, values.round(3)))
    assert values[top] > 0
    others = np.delete(np.abs(values), top)
    assert values[top] > 5 * others.max()  # the others only share the embedding noise
    assert abs(report.attribution.convergence_delta) <= 0.05 * abs(report.attribution.output_difference)


def test_known_answer_without_the_key_word_and_for_the_other_class(keyword):
    report = explain_text(keyword, "The movie was terrible.", ("integrated-gradients",))
    assert report.predictions[0].label == "negative"

    against = explain_text(keyword, "a very good film, wonderful acting", ("integrated-gradients",), target="negative")
    assert against.target.label == "negative" and against.predictions[0].label == "positive"
    values = against.attribution.values
    top = int(np.abs(values).argmax())
    assert against.tokens[top] == "wonderful" and values[top] < 0  # evidence against "negative"
    assert abs(against.attribution.convergence_delta) <= 0.05 * abs(against.attribution.output_difference)


def test_known_answer_a_key_word_after_the_cut_is_not_read(keyword):
    """32 positions: [CLS], 30 words, [SEP]. The key word as word 31 is cut away, as word 30 it is read."""
    filler = "the plot was good . " * 6  # 30 tokens
    cut = explain_text(keyword, filler + "wonderful", ("integrated-gradients",))
    assert len(cut.tokens) == keyword.max_tokens == 32
    assert cut.cut_at == len(filler.rstrip())
    assert "wonderful" not in cut.tokens and cut.predictions[0].label == "negative"
    assert "32" in cut.truncation_notice and str(cut.cut_at) in cut.truncation_notice

    kept = explain_text(keyword, "the plot was good . " * 5 + "the plot was good wonderful", ("integrated-gradients",))
    assert kept.cut_at is None and kept.truncation_notice is None
    assert kept.tokens[-2] == "wonderful" and kept.predictions[0].label == "positive"
    assert int(np.abs(kept.attribution.values).argmax()) == len(kept.tokens) - 2


def test_word_pieces_merge_into_the_typed_word():
    classifier = key_word_classifier("film")
    report = explain_text(classifier, "Films, it was Films!", ("integrated-gradients",))
    assert report.tokens == ("[CLS]", "film", "##s", ",", "it", "was", "film", "##s", "!", "[SEP]")
    groups = token_groups(report, merge_words=True, hide_special=True)
    assert [label for label, _ in groups] == ["Films", ",", "it", "was", "Films", "!"]
    assert groups[0][1] == [1, 2] and groups[4][1] == [6, 7]
    merged = grouped_values(report.attribution.values, groups)
    assert np.isclose(merged.sum(), report.attribution.values.sum(), rtol=1e-6, atol=1e-7)
    assert {int(np.abs(merged).argmax())} <= {0, 4}
    unmerged = token_groups(report, merge_words=False, hide_special=False)
    assert [label for label, _ in unmerged] == list(report.tokens)


# --- Attention and rollout ----------------------------------------------------------------------


def test_rollout_of_a_two_layer_example_by_hand():
    # Layer 1: heads [[1, 0], [.5, .5]] and [[0, 1], [.5, .5]] -> mean [[.5, .5], [.5, .5]]
    #          -> 0.5 A + 0.5 I = [[.75, .25], [.25, .75]]
    # Layer 2: both heads [[1, 0], [1, 0]] -> 0.5 A + 0.5 I = [[1, 0], [.5, .5]]
    # Rollout = layer 2 @ layer 1 = [[.75, .25], [.5, .5]]
    attention = np.array(
        [
            [[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]],
            [[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]],
        ],
        dtype=np.float32,
    )
    rollout = attention_rollout(attention)
    assert rollout.shape == (2, 2)
    np.testing.assert_allclose(rollout, [[0.75, 0.25], [0.5, 0.5]], atol=1e-6)
    # One layer alone is just its residual-mixed mean.
    np.testing.assert_allclose(attention_rollout(attention[:1]), [[0.75, 0.25], [0.25, 0.75]], atol=1e-6)
    # The order matters: layer 1 first, then layer 2 on top of it.
    assert not np.allclose(attention_rollout(attention[::-1]), rollout)


def _rollout_by_formula(attention: np.ndarray) -> np.ndarray:
    size = attention.shape[-1]
    result = np.eye(size)
    for layer in attention.astype(np.float64):
        mixed = 0.5 * layer.mean(0) + 0.5 * np.eye(size)
        mixed = mixed / mixed.sum(-1, keepdims=True)
        result = mixed @ result
    return result


def _check_attention(report: TextReport, layers: int, heads: int) -> None:
    size = len(report.tokens)
    attention = report.attention
    assert attention.shape == (layers, heads, size, size)
    assert np.isfinite(attention).all() and (attention >= 0).all()
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-4)
    rollout = report.rollout
    assert rollout.shape == (size, size)
    assert (rollout >= 0).all()
    np.testing.assert_allclose(rollout.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(rollout, _rollout_by_formula(attention), atol=1e-5)
    view = classifier_view(report)
    assert view.shape == (size,) and abs(view.sum() - 1) < 1e-4


def test_attention_and_rollout_on_a_tiny_bert(tiny_bert_dir):
    classifier = load_text_model(str(tiny_bert_dir))
    report = explain_text(classifier, "The movie was wonderful, the plot was bad.", ("attention", "rollout"))
    _check_attention(report, layers=2, heads=2)
    assert report.attribution is None
    assert np.allclose(classifier_view(report), report.rollout[0])  # a CLS head reads the [CLS] row
    # Same maps as the network gives on its own.
    from transformers import AutoModelForSequenceClassification

    with torch.no_grad():
        own = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), attn_implementation="eager")
        maps = own(input_ids=classifier.encode(report.text).ids, output_attentions=True).attentions
    np.testing.assert_allclose(report.attention, torch.stack([a[0] for a in maps]).numpy(), atol=1e-5)


def test_attention_on_the_hand_built_network_is_passed_through(keyword):
    report = explain_text(keyword, "the movie was wonderful", ("attention", "rollout"))
    _check_attention(report, layers=2, heads=2)
    with torch.no_grad():
        ids = keyword.encode("the movie was wonderful").ids
        expected = keyword.network.attention_maps(keyword.word_embeddings(ids))[0]
    np.testing.assert_allclose(report.attention[0], expected.numpy(), atol=1e-6)


def test_attention_and_rollout_on_minilm(minilm):
    text = "The acting was superb, but the ending felt rushed."
    report = explain_text(minilm, text, ("attention", "rollout"))
    _check_attention(report, layers=6, heads=12)
    assert np.allclose(classifier_view(report), report.rollout.mean(0))  # mean pooling reads every row
    # Methods not asked for are not computed.
    plain = explain_text(minilm, text)
    assert plain.attention is None and plain.rollout is None and plain.attribution is None
    assert [p.score for p in plain.predictions] == pytest.approx([p.score for p in report.predictions], abs=1e-6)


# --- Integrated Gradients on the bundled MiniLM -------------------------------------------------

SENTENCES = (
    "The movie was wonderful.",
    "The service was horrible and the food was cold.",
    "I am not sure what to think about this film.",
    "An absolute masterpiece of modern cinema!",
)


@pytest.fixture(scope="module")
def ig_reports(minilm):
    return {text: explain_text(minilm, text, ("integrated-gradients",)) for text in SENTENCES}


@pytest.mark.parametrize("text", SENTENCES)
def test_ig_completeness_and_special_tokens(minilm, ig_reports, text):
    report = ig_reports[text]
    attribution = report.attribution
    values = attribution.values
    assert values.shape == (len(report.tokens),) and np.isfinite(values).all()
    assert attribution.params["ig_steps"] == TextSettings().ig_steps
    assert attribution.params["gradient_steps"] <= TextSettings().ig_steps
    # Completeness with the default settings: within 5% of f(x) - f(baseline).
    assert abs(attribution.convergence_delta) <= 0.05 * abs(attribution.output_difference), attribution
    assert attribution.convergence_delta == pytest.approx(values.sum() - attribution.output_difference, abs=1e-4)
    # [CLS] and [SEP] are kept in the baseline: exactly zero.
    specials = [i for i, s in enumerate(report.special) if s]
    assert specials == [0, len(report.tokens) - 1]
    assert report.tokens[0] == "[CLS]" and report.tokens[-1] == "[SEP]"
    assert all(values[i] == 0.0 for i in specials)
    # Words hide nothing: their sum is the total.
    groups = token_groups(report, merge_words=True, hide_special=True)
    assert sorted(i for _, idx in groups for i in idx) == [i for i, s in enumerate(report.special) if not s]
    assert grouped_values(values, groups).sum() == pytest.approx(float(values.sum()), rel=1e-5, abs=1e-6)
    assert [label for label, _ in groups if label.isalpha()] == [w for w in text.replace(",", " ").replace(".", " ").replace("!", " ").split()]
    # The explained difference is f(x) - f(baseline) for the target, baseline = [PAD] for every word.
    ids = minilm.encode(text).ids
    baseline = ids.clone()
    baseline[0, 1:-1] = minilm.pad_id()
    with torch.no_grad():
        f_x, f_b = minilm.logits(ids)[0, report.target.index], minilm.logits(baseline)[0, report.target.index]
    assert attribution.output_difference == pytest.approx(float(f_x - f_b), abs=1e-3)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_captum_rules_report_an_honest_delta(minilm, method):
    report = explain_text(minilm, SENTENCES[0], ("integrated-gradients",), settings=TextSettings(ig_steps=24, ig_method=method))
    attribution = report.attribution
    assert attribution.params["ig_method"] == method
    assert attribution.convergence_delta == pytest.approx(attribution.values.sum() - attribution.output_difference, abs=1e-3)
    assert attribution.values[0] == 0.0 and attribution.values[-1] == 0.0


def test_an_explicit_target_is_respected(minilm):
    text = "The movie was wonderful."
    positive = explain_text(minilm, text, ("integrated-gradients",))
    for target in ("negative", 0, "0"):
        report = explain_text(minilm, text, ("integrated-gradients",), target=target)
        assert report.target.index == 0 and report.target.label == "negative"
        assert report.predictions[0].label == "positive"  # the prediction does not change
        assert abs(report.attribution.convergence_delta) <= 0.05 * abs(report.attribution.output_difference)
    # Zero-shot logits are 20 x cosine to each label: the two targets explain different outputs.
    assert not np.allclose(report.attribution.values, positive.attribution.values)


def test_bad_targets_and_methods_are_refused(minilm):
    with pytest.raises(TargetError):
        explain_text(minilm, "fine", target="neutral")
    with pytest.raises(TargetError, match="out of range"):
        explain_text(minilm, "fine", target=2)
    with pytest.raises(ValueError, match="unknown method"):
        explain_text(minilm, "fine", ("gradcam",))
    assert set(TEXT_METHODS) == set(ALL)


# --- Real weights: the bundled MiniLM as a zero-shot sentiment classifier ------------------------

POSITIVE = ("The movie was wonderful.", "I loved this film, it was fantastic!", "This was a great experience.",
            "The staff were friendly and helpful.")
NEGATIVE = ("The movie was terrible.", "The service was horrible.", "The acting was bad.",
            "What an awful, boring waste of time.")


@pytest.mark.parametrize("text, label", [(t, "positive") for t in POSITIVE] + [(t, "negative") for t in NEGATIVE])
def test_minilm_zero_shot_gets_clear_sentiment_right(minilm, text, label):
    report = explain_text(minilm, text)
    assert report.predictions[0].label == label, report.predictions
    assert report.predictions[0].score > 0.6
    assert sum(p.score for p in report.predictions) == pytest.approx(1, abs=1e-5)


def test_text_classifier_by_name_is_the_bundled_minilm():
    from models.text_models import text_classifier

    classifier = text_classifier("minilm")
    assert classifier.labels == ("negative", "positive")
    assert explain_text(classifier, "The movie was wonderful.").predictions[0].label == "positive"


@pytest.mark.parametrize(
    "text, word",
    [("The movie was wonderful.", "wonderful"), ("The movie was terrible.", "terrible"),
     ("The service was horrible.", "horrible"), ("This was a great experience.", "great")],
)
def test_minilm_ig_puts_the_sentiment_word_on_top(minilm, text, word):
    report = explain_text(minilm, text, ("integrated-gradients",))
    groups = token_groups(report, merge_words=True, hide_special=True)
    values = grouped_values(report.attribution.values, groups)
    ranked = [groups[i][0] for i in np.argsort(-np.abs(values))]
    assert ranked[0] == word, list(zip([g[0] for g in groups], values.round(3)))
    assert values[int(np.abs(values).argmax())] > 0  # evidence for the predicted label


# --- Records ------------------------------------------------------------------------------------


def test_text_record_is_plain_json(minilm):
    report = explain_text(minilm, "The movie was wonderful.", ALL)
    for method in ALL:
        record = json.loads(json.dumps(text_record(report, method, source=report.text)))
        assert record["input"] == report.text and record["method"] == method
        assert record["model"]["name"] == report.model.name and record["model"]["source"] == report.model.source
        assert record["tokens"] == list(report.tokens)
        assert record["special_tokens"] == [0, len(report.tokens) - 1]
        assert record["target"] == {"index": report.target.index, "label": report.target.label, "score": pytest.approx(report.target.score)}
        assert [p["label"] for p in record["predictions"]] == [p.label for p in report.predictions]
        assert record["truncation"] is None
    ig = text_record(report, "integrated-gradients")
    assert len(ig["attribution"]) == len(report.tokens)
    assert sum(w["attribution"] for w in ig["words"]) == pytest.approx(sum(ig["attribution"]), rel=1e-4)
    assert [w["word"] for w in ig["words"]] == ["The", "movie", "was", "wonderful", "."]
    assert ig["convergence_delta"] == report.attribution.convergence_delta
    assert "attention" not in ig and "rollout" not in ig
    attention = text_record(report, "attention")
    assert attention["attention_shape"] == [6, 12, len(report.tokens), len(report.tokens)]
    assert np.array(attention["attention"]).shape == tuple(attention["attention_shape"])
    assert "attribution" not in attention
    rollout = text_record(report, "rollout")
    assert np.array(rollout["rollout"]).shape == (len(report.tokens),) * 2


# --- Nothing left behind on a shared model, and threads -----------------------------------------


def _lock_is_free(classifier) -> bool:
    taken = []

    def take():
        if classifier.lock.acquire(timeout=2):
            taken.append(True)
            classifier.lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return taken == [True]


def _failing_head(classifier: TextClassifier, when) -> tuple[TextClassifier, type]:
    """The same shared network with a head that raises part way through a request."""

    class Boom(RuntimeError):
        pass

    def head(output, mask):
        if when(output):
            raise Boom("head failed")
        return classifier._head(output, mask)

    failing = TextClassifier(classifier.network, classifier.tokenizer, classifier.labels, classifier.info, head,
                             classifier.pooling, classifier.how, lock=classifier.lock)
    return failing, Boom


@pytest.mark.parametrize("which", ["hand-built", "minilm"])
def test_no_hooks_and_no_grads_after_success_and_failures(request, which):
    """Explanations attach nothing. The hand-built network has no hooks at all; on a transformers
    model the only hooks are transformers' own output-capturing ones, installed at load (the
    classifier's warm-up), and they are the same before and after every request."""
    classifier = request.getfixturevalue("keyword" if which == "hand-built" else "minilm")
    network = classifier.network
    at_load = _hooks(network)
    assert all(hook.__name__ == "output_capturing_hook" for hooks in at_load.values() for hook in hooks), at_load
    if which == "hand-built":
        assert_no_hooks_or_grads(network)

    def unchanged():
        assert _hooks(network) == at_load
        for name, parameter in network.named_parameters():
            assert parameter.grad is None and not parameter.requires_grad, name
        if which == "hand-built":
            assert_no_hooks_or_grads(network)

    explain_text(classifier, "The movie was wonderful.", ALL)
    unchanged()

    with pytest.raises(TargetError):
        explain_text(classifier, "The movie was wonderful.", ALL, target="no such label")
    unchanged()
    assert _lock_is_free(classifier)

    # Fails while gradients flow: predictions and attention are done, IG is under way.
    failing, Boom = _failing_head(classifier, lambda output: output.last_hidden_state.requires_grad)
    with pytest.raises(Boom):
        explain_text(failing, "The movie was wonderful.", ALL)
    unchanged()
    assert _lock_is_free(classifier)

    again = explain_text(classifier, "The movie was wonderful.", ("integrated-gradients",))
    assert again.predictions[0].label == "positive"
    unchanged()


def _hooks(network: nn.Module) -> dict:
    return {
        (name, kind): tuple(getattr(module, kind).values())
        for name, module in network.named_modules()
        for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
        if getattr(module, kind)
    }


def test_explaining_adds_no_hooks_beyond_transformers_own(minilm):
    """Diagnostic next to the strict test above: transformers 5 installs inert, context-gated
    output-capturing hooks on the first `output_attentions=True` call. Whatever else happens, an
    explanation (succeeding or failing) must add nothing to them, and leave no gradient behind."""
    explain_text(minilm, "warm up", ("attention",))
    before = _hooks(minilm.network)
    assert all(hook.__name__ == "output_capturing_hook" for hooks in before.values() for hook in hooks), before
    explain_text(minilm, "The movie was wonderful.", ALL)
    with pytest.raises(TargetError):
        explain_text(minilm, "The movie was wonderful.", ALL, target="no such label")
    failing, Boom = _failing_head(minilm, lambda output: output.last_hidden_state.requires_grad)
    with pytest.raises(Boom):
        explain_text(failing, "The movie was wonderful.", ALL)
    assert _hooks(minilm.network) == before
    for name, parameter in minilm.network.named_parameters():
        assert parameter.grad is None and not parameter.requires_grad, name


def test_threads_sharing_one_classifier_get_serial_results(minilm):
    texts = {"good": "The movie was wonderful and the cast was great.", "bad": "The service was horrible and slow."}
    settings = TextSettings(ig_steps=24)
    serial = {name: explain_text(minilm, text, ALL, settings=settings) for name, text in texts.items()}
    assert serial["good"].predictions[0].label != serial["bad"].predictions[0].label

    results = {name: [] for name in texts}
    errors = []
    start = threading.Barrier(len(texts))

    def work(name):
        try:
            start.wait()
            for _ in range(3):
                results[name].append(explain_text(minilm, texts[name], ALL, settings=settings))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(name,)) for name in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name in texts:
        expected = serial[name]
        assert len(results[name]) == 3
        for report in results[name]:
            assert report.tokens == expected.tokens
            assert [p.index for p in report.predictions] == [p.index for p in expected.predictions]
            assert np.allclose([p.score for p in report.predictions], [p.score for p in expected.predictions], atol=1e-6)
            np.testing.assert_allclose(report.attribution.values, expected.attribution.values, rtol=1e-4, atol=1e-5)
            assert report.attribution.convergence_delta == pytest.approx(expected.attribution.convergence_delta, abs=1e-4)
            np.testing.assert_allclose(report.attention, expected.attention, atol=1e-6)
            np.testing.assert_allclose(report.rollout, expected.rollout, atol=1e-6)
    for name, parameter in minilm.network.named_parameters():
        assert parameter.grad is None and not parameter.requires_grad, name


def test_threads_encoding_at_once_get_serial_results(minilm):
    """explain_text tokenises outside the model's lock, so encode must be safe on its own: a fast
    tokenizer's truncation setting is state of the shared tokenizer, and encode changes it twice a call
    (once without truncation to count the tokens, once with). A long text must come back cut at
    512 tokens and a short one whole, whatever the other threads are doing."""
    texts = ("The movie was wonderful. " * 200, "The movie was wonderful. " * 30, "The service was horrible.")
    serial = {text: minilm.encode(text) for text in texts}
    assert len(serial[texts[0]].tokens) == 512 and serial[texts[0]].total_tokens == 1002
    wrong, errors = [], []
    start = threading.Barrier(4)

    def work(offset):
        try:
            start.wait()
            for n in range(150):
                text = texts[(offset + n) % len(texts)]
                got, expected = minilm.encode(text), serial[text]
                if (got.tokens, got.total_tokens, got.cut_at) != (expected.tokens, expected.total_tokens, expected.cut_at):
                    wrong.append((len(text), len(got.tokens), got.total_tokens, got.cut_at))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not wrong, f"{len(wrong)} of 600 encodings differ from serial ones, e.g. (chars, tokens, total, cut_at): {wrong[:3]}"

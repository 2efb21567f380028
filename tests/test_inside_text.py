"""Inside a text classifier: the step-by-step attention reproduces the model's own maps, the layers' readout
ends on the prediction, and the command line's numbers match the `text` command's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import word_tokenizer
from test_text_explainers import _hooks
from explainers.inside.text import inside_text, token_paths
from explainers.tasks.text import TextInputError, explain_text

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = "the movie was not very good , but the acting was wonderful ."


@pytest.fixture(scope="module")
def tiny_bert(tiny_bert_dir):
    from models.text_models import text_classifier

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("XAI_OFFLINE", "1")
        return text_classifier(str(tiny_bert_dir))


def check_every_head(classifier, text: str) -> None:
    at_load = _hooks(classifier.network)
    assert all(hook.__name__ == "output_capturing_hook" for hooks in at_load.values() for hook in hooks), at_load
    record = inside_text(classifier, text)
    report = explain_text(classifier, text, ("attention",))
    assert record.tokens == report.tokens
    assert (record.layers, record.heads) == report.attention.shape[:2]
    for layer in range(record.layers):
        for head in range(record.heads):
            # The whole map the page draws beside the arithmetic, recomputed from the states, is the model's.
            np.testing.assert_allclose(record.head_map(layer, head), report.attention[layer, head], atol=1e-5)
            for token in range(len(record.tokens)):
                step = record.step_by_step(layer, head, token)
                # The arithmetic on the page, redone from q, k and v, is the model's own attention row.
                np.testing.assert_allclose(step.weights, report.attention[layer, head, token], atol=1e-5)
                np.testing.assert_allclose(step.scores, step.keys @ step.query / step.scale)
                np.testing.assert_allclose(step.output, step.weights @ step.values)
    # The record reads the shared weights through views that refuse writes.
    weights = record.projections[0][0]
    with pytest.raises(ValueError, match="read-only"):
        weights[0, 0] = 1.0
    assert np.shares_memory(weights, _attention_query(classifier).weight.detach().numpy())
    # Nothing attached: transformers' own capturing hooks from load are all there is, and no gradient.
    assert _hooks(classifier.network) == at_load
    for name, parameter in classifier.network.named_parameters():
        assert parameter.grad is None and not parameter.requires_grad, name


def _attention_query(classifier):
    return classifier.network.base_model.encoder.layer[0].attention.self.query


def test_step_by_step_reproduces_every_head_of_the_tiny_bert(tiny_bert):
    check_every_head(tiny_bert, SENTENCE)


def test_step_by_step_reproduces_every_head_of_minilm(minilm):
    check_every_head(minilm, "A quietly wonderful film that I will watch again.")


@pytest.mark.parametrize("which", ["tiny_bert", "minilm"])
def test_the_readout_of_the_last_layer_is_the_prediction(which, request):
    classifier = request.getfixturevalue(which)
    record = inside_text(classifier, SENTENCE)
    assert classifier.reads_every_layer
    assert record.readout.shape == (record.layers + 1, len(record.labels))
    np.testing.assert_allclose(record.readout.sum(-1), 1, atol=1e-9)
    final = {p.index: p.score for p in record.predictions}
    np.testing.assert_allclose(record.readout[-1], [final[i] for i in range(len(record.labels))], atol=1e-5)
    settled = record.settles_at
    assert 0 <= settled <= record.layers
    top = record.readout.argmax(-1)
    assert (top[settled:] == top[-1]).all() and (settled == 0 or top[settled - 1] != top[-1])
    # Each token's final state is itself; the path holds every layer of every token.
    np.testing.assert_allclose(record.self_similarity[-1], 1, atol=1e-9)
    paths = token_paths(record)
    assert paths.coords.shape == (record.layers + 1, len(record.tokens), 2)
    assert 0 < paths.variance[1] <= paths.variance[0] <= 1
    # The same two components as an SVD of all the centred states, up to sign, and the shares they hold.
    states = torch.from_numpy(record.states.reshape(-1, record.states.shape[-1])).double()
    centred = states - states.mean(0)
    u, singular, _ = torch.linalg.svd(centred, full_matrices=False)
    expected = (u[:, :2] * singular[:2]).numpy()
    ours = paths.coords.reshape(-1, 2)
    np.testing.assert_allclose(np.abs(ours), np.abs(expected), atol=1e-6 * float(singular[0]))
    np.testing.assert_allclose(paths.variance, (singular[:2] ** 2 / (singular ** 2).sum()).numpy(), atol=1e-9)


def test_a_head_that_cannot_be_read_from_inner_layers_says_so():
    """DistilBERT's head (pre_classifier, ReLU, classifier on [CLS]) does not take a layer's states the way
    the adapter tries: the view says so instead of showing a wrong readout; its attention still comes apart."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from models.info import ModelInfo
    from models.text_models import fine_tuned_classifier

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=40, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64)
    config._attn_implementation = "eager"  # as the loader asks for: attention maps need it
    network = DistilBertForSequenceClassification(config).eval()
    classifier = fine_tuned_classifier(network, word_tokenizer(), ModelInfo("tiny distilbert", "test"))
    assert not classifier.reads_every_layer
    record = inside_text(classifier, "the plot was awful")
    assert record.readout is None and record.settles_at is None
    assert "cannot be read" in record.readout_note
    report = explain_text(classifier, "the plot was awful", ("attention",))
    np.testing.assert_allclose(record.step_by_step(1, 1, 0).weights, report.attention[1, 1, 0], atol=1e-5)


def test_short_long_and_empty_texts(tiny_bert, minilm):
    one = inside_text(tiny_bert, "wonderful")
    assert one.tokens == ("[CLS]", "wonderful", "[SEP]") and one.default_token() == 0
    assert minilm.pooling == "mean" and inside_text(minilm, "great").default_token() == 1
    long = inside_text(tiny_bert, " ".join(["good"] * 600))
    assert len(long.tokens) == tiny_bert.max_tokens and long.cut_at is not None and long.total_tokens == 602
    assert long.step_by_step(0, 0, len(long.tokens) - 1).weights.shape == (tiny_bert.max_tokens,)
    for empty in ("", "   \n"):
        with pytest.raises(TextInputError, match="type some text"):
            inside_text(tiny_bert, empty)
    with pytest.raises(ValueError, match="head 2 does not exist"):
        one.step_by_step(0, 2, 0)
    with pytest.raises(ValueError, match="token 3 does not exist"):
        one.step_by_step(0, 0, 3)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XAI_OFFLINE": "1", "XAI_TORCH_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "explainers", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def test_the_command_line_weights_are_the_text_commands_attention_row(tiny_bert_dir):
    """The issue's contract: `inside text --json` step_by_step.weights == row `token` of the head's map in
    `text --method attention --json`, token indices as in its `tokens`."""
    texts = ("the acting was awful .", "i loved it !")
    attention = run_cli("text", *texts, "--model", str(tiny_bert_dir), "--method", "attention", "--json")
    assert attention.returncode == 0, attention.stderr
    maps = [json.loads(line) for line in attention.stdout.splitlines()]
    for layer, head, token in ((1, 1, 3), (0, 0, 0)):
        inside = run_cli("inside", "text", *texts, "--model", str(tiny_bert_dir), "--layer", str(layer),
                         "--head", str(head), "--token", str(token), "--json")
        assert inside.returncode == 0, inside.stderr
        for line, expected in zip(inside.stdout.splitlines(), maps):
            record = json.loads(line)
            assert record["tokens"] == expected["tokens"]
            step = record["step_by_step"]
            assert (step["layer"], step["head"], step["token"]) == (layer, head, token)
            assert step["token_text"] == expected["tokens"][token]
            np.testing.assert_allclose(step["weights"], expected["attention"][layer][head][token], atol=1e-5)
            scores = np.array(step["scores"])
            softmax = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
            np.testing.assert_allclose(step["weights"], softmax, atol=1e-5)
            assert record["settles_at_layer"] in range(record["layers"] + 1)


def test_the_command_line_reports_a_bad_choice_and_goes_on(tiny_bert_dir):
    result = run_cli("inside", "text", "good", "   ", "--model", str(tiny_bert_dir), "--token", "1", "--json")
    assert result.returncode == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["step_by_step"]["token_text"] == "good"
    assert second["error"].startswith("Please type some text")
    bad = run_cli("inside", "text", "good", "--model", str(tiny_bert_dir), "--layer", "7")
    assert bad.returncode == 1 and "layer 7 does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_a_network_that_returns_no_layer_states_gets_a_sentence():
    from test_text_explainers import key_word_classifier

    classifier = key_word_classifier()  # hand-built: its forward takes no output_hidden_states
    assert not classifier.traceable and not classifier.reads_every_layer
    with pytest.raises(ValueError, match="does not return its layers' states"):
        inside_text(classifier, "the movie was wonderful")
    assert explain_text(classifier, "the movie was wonderful", ("attention",)).attention is not None

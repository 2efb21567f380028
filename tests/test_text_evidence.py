"""Evidence for word maps: LIME, Kernel SHAP and Occlusion over words, word deletion and insertion, and the
sanity check over the encoder's layers; known answers, properties, and the shared model left alone."""

from __future__ import annotations

import hashlib
import json
import threading

import numpy as np
import pytest
import torch

from conftest import assert_no_hooks_or_grads
from explainers.evaluation.sanity import SanityError
from explainers.evaluation.text_sanity import text_sanity_check, with_text_sanity
from explainers.records.as_json import text_record
from explainers.records.sanity import WORD_LENGTHS
from explainers.tasks.text import TextSettings, explain_text
from models.text_models import text_classifier
from test_text_explainers import key_word_classifier

pytestmark = pytest.mark.usefixtures("single_thread", "no_network")

WORD_METHODS = ("lime", "kernelshap", "occlusion")
TEXT = "the plot was bad and the acting was awful but the film was wonderful"
CHEAP = TextSettings(lime_samples=60, shap_samples=60, faithfulness=True, faithfulness_steps=20)


@pytest.fixture(scope="module")
def keyword():
    return key_word_classifier()


@pytest.fixture(scope="module")
def keyword_report(keyword):
    return explain_text(keyword, TEXT, ("integrated-gradients",) + WORD_METHODS, target="positive", settings=CHEAP)


def fingerprint(network: torch.nn.Module) -> dict[str, str]:
    tensors = {**dict(network.named_parameters()), **{f"buffer {n}": b for n, b in network.named_buffers()}}
    return {name: hashlib.sha256(t.detach().numpy().tobytes()).hexdigest() for name, t in tensors.items()}


def hook_count(network: torch.nn.Module) -> int:
    return sum(len(getattr(m, a)) for m in network.modules()
               for a in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"))


# --- Known answers on the key-word network ------------------------------------------------------


def test_every_word_method_puts_the_key_word_on_top_and_records_what_it_used(keyword_report):
    report = keyword_report
    assert [m.method for m in report.token_maps] == ["integrated-gradients", *WORD_METHODS]
    for attribution in report.perturbations:
        values = attribution.values
        top = int(np.abs(values).argmax())
        assert report.tokens[top] == "wonderful" and values[top] > 0, attribution.method
        assert all(values[i] == 0 for i, s in enumerate(report.special) if s)
        assert attribution.convergence_delta is None
        assert attribution.params["output"] == "probability" and attribution.params["words"] == 14
    lime, shap, occlusion = (m.params for m in report.perturbations)
    assert lime["samples"] == shap["samples"] == 60 and lime["seed"] == 0
    assert occlusion["forwards"] == 15  # the text, then one word hidden at a time


def test_the_true_map_beats_a_random_order_and_a_wrong_map_does_worse(keyword, keyword_report):
    for attribution in keyword_report.token_maps:
        f = attribution.faithfulness
        assert f.curves.deletion_auc < f.references["random"].deletion_auc, attribution.method
        assert f.curves.insertion_auc > f.references["random"].insertion_auc, attribution.method
    # The same text, a map that points at "plot" instead of the key word.
    wrong = keyword_report.attribution.values.copy() * 0
    wrong[keyword_report.tokens.index("plot")] = 1.0
    from explainers.evaluation.faithfulness import measure_word_faithfulness
    from explainers.tasks.text import _embeddings, _probabilities, word_groups

    encoding = keyword.encode(TEXT)
    embeddings, empty = _embeddings(keyword, encoding)
    probability = lambda batch: _probabilities(keyword)(batch)[:, 1]  # noqa: E731
    measured = measure_word_faithfulness(probability, embeddings, empty, word_groups(encoding),
                                         {"true": keyword_report.attribution.values, "wrong": wrong}, steps=20)
    assert measured["wrong"].curves.deletion_auc > measured["true"].curves.deletion_auc
    assert measured["wrong"].curves.insertion_auc < measured["true"].curves.insertion_auc


def test_curves_start_where_they_must_and_steps_are_capped_at_the_words(keyword, keyword_report):
    f = keyword_report.attribution.faithfulness
    with torch.no_grad():
        full = float(keyword.logits(keyword.encode(TEXT).ids).softmax(-1)[0, 1])
    assert f.curves.deletion[0] == pytest.approx(full, abs=1e-5)
    assert f.curves.insertion[-1] == pytest.approx(full, abs=1e-5)
    assert f.curves.insertion[0] == pytest.approx(f.curves.deletion[-1], abs=1e-6)  # the all-[PAD] text
    assert f.steps == 14 and f.unit == "words (14)" and f.replacement == "pad"  # 20 asked, 14 words
    for curves in (f.curves, *f.references.values()):
        assert 0 <= curves.deletion_auc <= 1 and 0 <= curves.insertion_auc <= 1
    # The references are computed once for every map.
    assert len({id(m.faithfulness.references) for m in keyword_report.token_maps}) == 1


def test_a_constant_map_gets_a_note_not_a_crash(keyword):
    from explainers.evaluation.faithfulness import measure_word_faithfulness
    from explainers.tasks.text import _embeddings, _probabilities, word_groups

    encoding = keyword.encode(TEXT)
    embeddings, empty = _embeddings(keyword, encoding)
    zeros = np.zeros(len(encoding.tokens))
    measured = measure_word_faithfulness(lambda b: _probabilities(keyword)(b)[:, 1], embeddings, empty,
                                         word_groups(encoding), {"zeros": zeros})
    assert measured["zeros"].notes and "constant" in measured["zeros"].notes[0]
    assert np.isfinite(measured["zeros"].curves.deletion).all()


def test_the_same_seed_gives_the_same_maps_and_curves(keyword):
    first, again = (explain_text(keyword, TEXT, WORD_METHODS, settings=CHEAP) for _ in range(2))
    other = explain_text(keyword, TEXT, ("lime",), settings=TextSettings(lime_samples=60, seed=1))
    for a, b in zip(first.perturbations, again.perturbations):
        assert np.array_equal(a.values, b.values) and a.faithfulness.as_dict() == b.faithfulness.as_dict()
    assert not np.array_equal(first.perturbations[0].values, other.perturbations[0].values)


def test_the_record_carries_the_method_faithfulness_and_words(keyword_report):
    record = json.loads(json.dumps(text_record(keyword_report, "kernelshap", source="typed")))
    assert record["method"] == "kernelshap" and record["parameters"]["samples"] == 60
    assert "convergence_delta" not in record
    assert set(record["faithfulness"]) >= {"deletion_auc", "insertion_auc", "steps", "replacement", "references"}
    assert set(record["faithfulness"]["references"]) == {"random"}
    assert max(record["words"], key=lambda w: abs(w["attribution"]))["word"] == "wonderful"


@pytest.mark.parametrize("settings, message", [
    (TextSettings(lime_samples=5), "Samples must be a whole number between 10 and 5000 (got 5)."),
    (TextSettings(seed=-1), "Seed must be a whole number between 0 and"),
    (TextSettings(faithfulness=True, faithfulness_steps=2), "from 4 to 200"),
])
def test_bad_settings_are_refused_before_any_model_work(keyword, settings, message):
    with pytest.raises(ValueError) as caught:
        explain_text(keyword, TEXT, ("lime", "integrated-gradients"), settings=settings)
    assert message in str(caught.value)


def test_progress_names_each_method_and_cancelling_frees_the_lock(keyword):
    seen = []
    explain_text(keyword, TEXT, WORD_METHODS, settings=CHEAP, progress=lambda *a: seen.append(a[0]))
    assert seen[0] == "LIME (1 of 3)" and "Occlusion (3 of 3)" in seen
    assert any(s.startswith("Kernel SHAP (2 of 3): ") and s.endswith("of 60 samples") for s in seen)
    assert any(s.startswith("Faithfulness: ") for s in seen)

    def cancel(what, done, total):
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        explain_text(keyword, TEXT, ("lime",), settings=CHEAP, progress=cancel)
    assert keyword.lock.acquire(timeout=1)
    keyword.lock.release()
    assert_no_hooks_or_grads(keyword.network)


# --- The sanity check over the encoder's layers ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tiny_bert_dir):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        return text_classifier(str(tiny_bert_dir))


def test_a_bert_classifier_is_randomised_head_first_and_its_maps_change(tiny_bert):
    assert [name for name, _ in tiny_bert.randomisable_parts()] == ["head", "layer 2", "layer 1", "embeddings"]
    before, hooks = fingerprint(tiny_bert.network), hook_count(tiny_bert.network)
    seen = []
    result = text_sanity_check(tiny_bert, "the acting was wonderful", "integrated-gradients",
                               progress=lambda *a: seen.append(a))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.steps == ("head", "head + layer 2", "head + layer 2 + layer 1", "head + layer 2 + layer 1 + embeddings")
    assert min(result.method.similarity) < 0.9  # the map moves once the weights go
    assert result.reference.name == WORD_LENGTHS and result.reference.similarity == (1.0,) * 4
    assert result.subject == "text" and len(result.method.original) == 4  # one value per word
    assert all(b > 0 for b in result.step_bytes) and result.step_bytes == tuple(sorted(result.step_bytes))
    assert fingerprint(tiny_bert.network) == before
    assert hook_count(tiny_bert.network) == hooks
    record = result.record()
    assert {"steps", "similarity", "ssim", "passed"} <= set(record) and record["reference"]["name"] == WORD_LENGTHS


def test_minilm_is_randomised_from_its_top_layer_and_stays_unchanged(minilm):
    assert [name for name, _ in minilm.randomisable_parts()][:2] == ["layer 6", "layer 5"]
    before = fingerprint(minilm.network)
    report = explain_text(minilm, "The movie was wonderful.", ("occlusion",))
    checked = with_text_sanity(minilm, report, TextSettings())
    result = checked.perturbations[0].sanity
    assert len(result.steps) == 7 and result.steps[-1].endswith("+ embeddings")
    assert all(-1 <= v <= 1 for v in result.method.similarity + result.method.ssim)
    assert fingerprint(minilm.network) == before
    again = explain_text(minilm, "The movie was wonderful.", ("occlusion",)).perturbations[0]
    assert np.array_equal(again.values, report.perturbations[0].values)  # the shared model still answers alike


def test_two_threads_checking_at_once_get_serial_results(minilm):
    texts = {"good": "A wonderful film.", "bad": "A dreadful film."}
    serial = {k: text_sanity_check(minilm, t, "occlusion", max_steps=2).method.similarity for k, t in texts.items()}
    results = {}

    def check(key):
        results[key] = text_sanity_check(minilm, texts[key], "occlusion", max_steps=2).method.similarity

    threads = [threading.Thread(target=check, args=(k,)) for k in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == serial


def test_a_model_without_parts_says_it_cannot_be_checked(keyword):
    with pytest.raises(SanityError, match="cannot be sanity-checked"):
        text_sanity_check(keyword, TEXT, "integrated-gradients")

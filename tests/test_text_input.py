"""Bad and unusual text, on the real bundled tokenizer and model: every input gets a correct result or
a clear TextInputError, never another exception."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.tasks.text import MAX_CHARACTERS, TextInputError, TextSettings, check_text, explain_text
from explainers.figures.text import attention_figure, attribution_bars
from explainers.records.text import TextReport, grouped_values, token_groups

pytestmark = pytest.mark.usefixtures("single_thread", "no_network")

ALL = ("integrated-gradients", "attention", "rollout")
CHEAP = TextSettings(ig_steps=16)


def explain_or_refuse(classifier, text: str, methods=ALL, settings=CHEAP) -> TextReport | TextInputError:
    """The only two acceptable outcomes; anything else fails the test with its own traceback."""
    try:
        return explain_text(classifier, text, methods, settings=settings)
    except TextInputError as error:
        assert str(error).strip() and len(str(error)) < 300, repr(error)
        return error


def check_report(report: TextReport, text: str) -> None:
    """What every explained text must satisfy, whatever its characters."""
    size = len(report.tokens)
    assert report.text == text
    assert size >= 3 and report.tokens[0] == "[CLS]" and report.tokens[-1] == "[SEP]"
    # Exactly the two tokens the tokenizer added are special; anything the user typed is text.
    assert report.special == (True,) + (False,) * (size - 2) + (True,), list(zip(report.tokens, report.special))
    assert len(report.words) == len(report.spans) == size
    for (start, end), special in zip(report.spans, report.special):
        assert 0 <= start <= end <= len(text)
        assert special or end > start
    assert size <= report.max_tokens
    if report.total_tokens <= report.max_tokens:
        # It fits: nothing was cut, and the page must not say otherwise.
        assert report.cut_at is None and report.truncation_notice is None, report.truncation_notice
        assert report.total_tokens == size
    else:
        assert report.cut_at is not None and size == report.max_tokens
    scores = [p.score for p in report.predictions]
    assert np.isfinite(scores).all() and abs(sum(scores) - 1) < 1e-5
    if report.attribution is not None:
        values = report.attribution.values
        assert values.shape == (size,) and np.isfinite(values).all()
        assert values[0] == 0 and values[-1] == 0
        assert np.isfinite(report.attribution.convergence_delta)
    if report.attention is not None:
        assert report.attention.shape[-2:] == (size, size)
        np.testing.assert_allclose(report.attention.sum(-1), 1, atol=1e-4)
    if report.rollout is not None:
        assert report.rollout.shape == (size, size)
        np.testing.assert_allclose(report.rollout.sum(-1), 1, atol=1e-4)


def words_of(report: TextReport) -> list[str]:
    return [label for label, _ in token_groups(report, merge_words=True, hide_special=True)]


# --- Refused with a clear message ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "   \n\t  \r\n", "\u00a0\u2003"], ids=["empty", "space", "whitespace", "unicode-spaces"])
def test_empty_text_is_refused(minilm, text):
    with pytest.raises(TextInputError, match="empty"):
        explain_text(minilm, text, ALL)


def test_not_a_string_is_refused(minilm):
    for value in (None, b"good movie", 42):
        with pytest.raises(TextInputError):
            explain_text(minilm, value)


def test_too_many_characters_is_refused_before_tokenising(minilm):
    text = "good " * (MAX_CHARACTERS // 5) + "x"
    assert len(text) == MAX_CHARACTERS + 1
    with pytest.raises(TextInputError) as refused:
        explain_text(minilm, text)
    message = str(refused.value)
    assert f"{MAX_CHARACTERS:,}" in message and f"{MAX_CHARACTERS + 1:,}" in message
    # Exactly at the limit is accepted (and truncated to the model's tokens).
    assert check_text(text[:-1]) == text[:-1]
    report = explain_text(minilm, text[:-1])
    assert len(report.tokens) == minilm.max_tokens and report.cut_at is not None


def test_only_control_characters_is_refused(minilm):
    with pytest.raises(TextInputError, match="nothing the model can read"):
        explain_text(minilm, "\x00\x07\x1b\x7f", ALL)


# --- Truncation ---------------------------------------------------------------------------------


def test_ten_thousand_characters_are_cut_at_the_token_limit(minilm):
    text = "The movie was wonderful. " * 400  # 5 tokens a sentence
    assert len(text) == 10_000
    report = explain_text(minilm, text, ALL, settings=TextSettings(ig_steps=9))
    check_report(report, text)
    assert len(report.tokens) == report.max_tokens == 512
    assert report.total_tokens == 2 + 5 * 400
    # 510 word tokens = 102 whole sentences; the cut falls right after the 102nd full stop.
    assert report.cut_at == 102 * 25 - 1
    assert text[: report.cut_at].endswith("wonderful.")
    notice = report.truncation_notice
    assert notice and "512" in notice and str(report.total_tokens) in notice
    assert f"character {report.cut_at} of 10000" in notice and "wonderful." in notice
    assert report.attribution.values.shape == (512,)


def test_the_token_limit_boundary(minilm):
    fits = explain_text(minilm, "good " * 510)
    assert len(fits.tokens) == 512 and fits.cut_at is None and fits.truncation_notice is None
    assert fits.total_tokens == 512
    over = explain_text(minilm, "good " * 511)
    assert len(over.tokens) == 512 and over.total_tokens == 513
    assert over.cut_at == 510 * 5 - 1 and over.truncation_notice


# --- Unusual text: explained as text ------------------------------------------------------------


def test_literal_special_token_names_are_plain_text(minilm):
    text = "[CLS] [SEP] [MASK]"
    report = explain_or_refuse(minilm, text)
    assert isinstance(report, TextReport), report
    check_report(report, text)
    assert report.tokens.count("[CLS]") == 1 and report.tokens.count("[SEP]") == 1
    assert "[MASK]" not in report.tokens
    assert [w for w in words_of(report) if w.isalpha()] == ["CLS", "SEP", "MASK"]
    assert any(v != 0 for v in report.attribution.values[1:-1])


@pytest.mark.parametrize(
    "text, typed",
    [("[PAD] [UNK]", ["PAD", "UNK"]), ("great[SEP]terrible[PAD]", ["great", "SEP", "terrible", "PAD"]),
     ("[MASK]", ["MASK"])],
    ids=["pad-and-unk", "glued-to-words", "mask-alone"],
)
def test_typed_pad_unk_and_glued_special_token_names_are_plain_text(minilm, text, typed):
    """A typed [PAD] as a real token would be masked out of what the model reads; [UNK] would hide a word."""
    report = explain_or_refuse(minilm, text)
    assert isinstance(report, TextReport), report
    check_report(report, text)
    assert not {"[PAD]", "[UNK]", "[MASK]"} & set(report.tokens), report.tokens
    assert report.tokens.count("[CLS]") == 1 and report.tokens.count("[SEP]") == 1
    assert [w for w in words_of(report) if w.isalpha()] == typed


@pytest.mark.parametrize(
    "text",
    ["good\u200b movie", "good \u2060movie", "\ufeffgood movie", "good\x00 movie", "good \u200d\u200c movie"],
    ids=["zero-width-space", "word-joiner", "byte-order-mark", "nul", "zero-width-joiners"],
)
def test_invisible_characters_between_words_change_nothing(minilm, text):
    report = explain_or_refuse(minilm, text, methods=())
    plain = explain_text(minilm, "good movie")
    assert isinstance(report, TextReport), report
    check_report(report, text)
    assert report.tokens == plain.tokens == ("[CLS]", "good", "movie", "[SEP]")
    assert [p.score for p in report.predictions] == pytest.approx([p.score for p in plain.predictions], abs=1e-6)
    assert words_of(report) == ["good", "movie"]  # labels are the typed words, without the invisible ones


@pytest.mark.parametrize(
    "text", ["\u200b\u200b", "\ufeff", "\u200d\u2060", "\x00\x00", " \u200b\n\x00 "],
    ids=["zero-width-spaces", "byte-order-mark", "joiners", "nul-bytes", "mixed"],
)
def test_only_invisible_characters_is_refused(minilm, text):
    with pytest.raises(TextInputError, match="nothing the model can read"):
        explain_text(minilm, text, ALL)


@pytest.mark.parametrize("text, emoji", [("😀😀😀", ["😀😀😀"]), ("🎬 🍿 👍", ["🎬", "🍿", "👍"])], ids=["one-run", "three"])
def test_only_emoji_is_explained_with_the_emoji_as_labels(minilm, text, emoji):
    """Each emoji run is one unknown token: text, not a control token, and shown as typed, never as [UNK]."""
    report = explain_or_refuse(minilm, text)
    assert isinstance(report, TextReport), report
    check_report(report, text)
    assert report.tokens[1:-1] == ("[UNK]",) * len(emoji)
    assert words_of(report) == emoji
    assert all(v != 0 for v in report.attribution.values[1:-1])


def test_repeated_words_keep_one_bar_and_one_row_each(minilm):
    """On a categorical axis the three "the" would collapse into one bar; each keeps its own place and label."""
    text = "the the the"
    report = explain_or_refuse(minilm, text)
    assert isinstance(report, TextReport), report
    groups = token_groups(report, merge_words=True, hide_special=True)
    labels = [label for label, _ in groups]
    assert labels == ["the", "the", "the"]
    bars = attribution_bars(labels, grouped_values(report.attribution.values, groups), "words")
    assert len(bars.data[0].x) == 3 and len(set(bars.data[0].y)) == 3
    assert list(bars.layout.yaxis.ticktext) == labels and list(bars.layout.yaxis.tickvals) == list(bars.data[0].y)
    attention = attention_figure(report.tokens, report.attention[-1].mean(0), "attention")
    assert attention.data[0].z.shape == (5, 5) and len(set(attention.layout.xaxis.tickvals)) == 5
    assert list(attention.layout.xaxis.ticktext) == list(attention.layout.yaxis.ticktext) == list(report.tokens)


def test_html_and_script_payload_is_just_text(minilm):
    text = "<script>alert(1)</script><b>x</b>"
    report = explain_or_refuse(minilm, text)
    assert isinstance(report, TextReport), report
    check_report(report, text)
    assert "<" in report.tokens and "script" in report.tokens
    words = words_of(report)
    assert {"script", "alert", "b", "x"} <= set(words)
    assert "".join(words) == text  # every character accounted for, in order


@pytest.mark.parametrize(
    "text, words",
    [
        ("هذا الفيلم رائع", ["هذا", "الفيلم", "رائع"]),
        ("הסרט הזה נהדר", ["הסרט", "הזה", "נהדר"]),
        ("Café naïve résumé", ["Café", "naïve", "résumé"]),
    ],
    ids=["arabic", "hebrew", "accents"],
)
def test_right_to_left_and_accented_words_map_back_to_the_text(minilm, text, words):
    report = explain_or_refuse(minilm, text)
    assert isinstance(report, TextReport), report
    check_report(report, text)
    assert words_of(report) == words


def test_chinese_text(minilm):
    text = "这部电影非常好看。"  # "This film is very good."
    report = explain_or_refuse(minilm, text)
    if isinstance(report, TextReport):
        assert len(report.tokens) == len(text) + 2  # BERT splits CJK into single characters
        # Nine characters fit easily in 512 tokens: nothing may be reported as cut.
        assert report.cut_at is None and report.truncation_notice is None, report.truncation_notice
        check_report(report, text)


@pytest.mark.parametrize(
    "text",
    [
        "😀",
        "Great movie 😀🎬👍",
        "supercalifragilistic" * 250,
        "\x00\x07 good \x1b[31m",
        "good\u200bmovie\ufeff",
        "e\u0301\u0301\u0301",
        "good \udcff movie",
    ],
    ids=["single-emoji", "emoji-in-text", "one-5000-character-word", "control-characters", "zero-width",
         "combining-marks", "lone-surrogate"],
)
def test_unusual_text_is_explained_or_clearly_refused(minilm, text):
    outcome = explain_or_refuse(minilm, text)
    if isinstance(outcome, TextReport):
        check_report(outcome, text)
        if text == "\x00\x07 good \x1b[31m":
            assert "good" in words_of(outcome)
        if text == "Great movie 😀🎬👍":
            assert outcome.truncation_notice is None, outcome.truncation_notice
        if len(text) == 5000:
            assert outcome.cut_at is None  # one word is one (unknown) token: nothing to cut


def test_encoding_positions_follow_the_text(minilm):
    text = "  Leading spaces,\nnew lines\tand   gaps. "
    encoding = minilm.encode(text)
    for token, (start, end), special in zip(encoding.tokens, encoding.spans, encoding.special):
        if not special:
            assert text[start:end].lower() == token.removeprefix("##"), (token, text[start:end])
    assert encoding.cut_at is None and encoding.total_tokens == len(encoding.tokens)

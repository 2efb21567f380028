"""Hostile and unusual CLIP prompts: each is read as the characters typed, or refused with a PromptError.

Most tests run on a tiny random CLIP whose tokenizer, like the real one, has a token for every byte and reads 77
tokens. The shared `tiny_clip` knows only letters and a little punctuation: any other character becomes its
unknown token, which is also its end-of-text token, so there a typed `<` cannot be told from the end of a prompt.
What the model answers does not matter here; what it reads does. Empty prompts, a template without {},
duplicates, more than 32 prompts and a prompt beyond the token limit are in test_clip_explainers.py.
"""

from __future__ import annotations

import time
import unicodedata

import numpy as np
import pytest

import conftest
from explainers.tasks.clip import MAX_PROMPT_CHARACTERS, PromptError, clean_prompts, explain_image_text
from models.image_text import ClipModel
from models.image_text_models import load_image_text_model

pytestmark = pytest.mark.usefixtures("single_thread", "no_network")

WORDS = ("text-integrated-gradients",)
START, END = "<|startoftext|>", "<|endoftext|>"


def _byte_characters() -> dict[int, str]:
    """The character byte-level BPE (GPT-2, CLIP) stands each byte for."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b) for b in printable} | {b: chr(256 + n) for n, b in enumerate(others)}


BYTE_OF = {character: byte for byte, character in _byte_characters().items()}
BYTE_VOCAB = tuple(BYTE_OF) + tuple(c + "</w>" for c in BYTE_OF) + (START, END)

# Typed where the tokenizer's own control tokens would go; each must stay text.
TYPED_CONTROL_TOKENS = {
    "end-token-mid-prompt": f"a photo of {END} a dog",
    "start-token-first": f"{START}a dog",
    "both-glued": f"cat{END}{START}dog",
}


@pytest.fixture(scope="module")
def byte_clip(tmp_path_factory) -> ClipModel:
    """conftest's tiny random CLIP with 77 text positions and a token for every byte, through our loader."""
    directory = tmp_path_factory.mktemp("byte-clip") / "byte clip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conftest, "CLIP_VOCAB", BYTE_VOCAB)
        patch.setattr(conftest, "TINY_CLIP", {**conftest.TINY_CLIP, "text_positions": 77})
        conftest.save_tiny_clip(directory)
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("XAI_OFFLINE", "1")
        model = load_image_text_model(str(directory))
    assert isinstance(model, ClipModel) and model.max_prompt_tokens == 77, model.info
    return model


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def tokens_of(model, prompt: str) -> tuple[str, ...]:
    """The prompt's tokens, after checking that the only control tokens are the start and end the tokenizer added."""
    tokens = model.tokenize([prompt])
    (row,), (special,) = tokens.tokens, tokens.special
    assert row[0] == START and row[-1] == END, row
    assert START not in row[1:] and END not in row[:-1], f"a typed control token became a real one: {row}"
    assert special == (True,) + (False,) * (len(row) - 2) + (True,), list(zip(row, special))
    return row


def spelled(tokens: tuple[str, ...]) -> bytes:
    """The bytes the tokens between start and end stand for (CLIP drops the spaces between words)."""
    return bytes(BYTE_OF[c] for token in tokens[1:-1] for c in token.removesuffix("</w>"))


def as_clip_reads(prompt: str) -> bytes:
    """What CLIP's tokenizer keeps of a prompt: NFC, lower case, no white space."""
    return "".join(unicodedata.normalize("NFC", prompt).lower().split()).encode("utf-8")


def check_report(report, prompts: list[str]) -> None:
    assert report.prompts == tuple(prompts)
    assert report.probabilities.shape == (1, len(prompts)) and np.isfinite(report.probabilities).all()
    assert report.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    for words in report.words:
        assert len(words.tokens) == len(words.attribution.values) <= 77
        assert np.isfinite(words.attribution.values).all()


# --- Markup and control tokens: text, never instructions --------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    ["<script>alert(1)</script><b>x</b>", "<img src=x onerror=alert(1)>", '<a href="javascript:alert(1)">x</a>'],
    ids=["script", "img-onerror", "javascript-link"],
)
def test_html_prompt_is_kept_as_typed_and_read_as_its_characters(byte_clip, photo, payload):
    prompts = ["a cat", payload]
    report = explain_image_text(byte_clip, [photo], prompts, WORDS, target=1)
    check_report(report, prompts)  # neither stripped nor escaped in the record: the figures escape it
    assert spelled(tokens_of(byte_clip, payload)) == as_clip_reads(payload)
    (words,) = report.words
    assert words.tokens == tokens_of(byte_clip, payload)


def test_html_in_a_template_is_read_as_its_characters(byte_clip, photo):
    report = explain_image_text(byte_clip, [photo], ["cat", "dog"], template="<b>{}</b>")
    check_report(report, ["<b>cat</b>", "<b>dog</b>"])
    assert spelled(tokens_of(byte_clip, report.prompts[0])) == b"<b>cat</b>"


@pytest.mark.parametrize("prompt", list(TYPED_CONTROL_TOKENS.values()), ids=list(TYPED_CONTROL_TOKENS))
def test_typed_control_tokens_are_read_as_characters(byte_clip, prompt):
    assert spelled(tokens_of(byte_clip, prompt)) == as_clip_reads(prompt)


def test_words_after_a_typed_end_token_still_count(byte_clip, photo):
    """CLIP reads a prompt at its first end token: a typed one must not hide the words after it."""
    report = explain_image_text(byte_clip, [photo], [f"a {END} dog", f"a {END} cow"])
    first, second = report.similarity[0]
    assert abs(first - second) > 1e-4, report.similarity


def test_typed_bert_control_tokens_in_a_conse_prompt_are_read_as_characters(conse):
    """The offline stand-in reads prompts with MiniLM's BERT tokenizer: a typed [PAD] would be masked out."""
    for prompt in ("a [PAD] cat", "[SEP] [CLS] [MASK] dog"):
        (row,) = conse.tokenize([prompt]).tokens
        assert row[0] == "[CLS]" and row[-1] == "[SEP]", row
        assert not {"[PAD]", "[SEP]", "[CLS]", "[MASK]"} & set(row[1:-1]), row


# --- Blank, invisible and unusual characters ---------------------------------------------------------------


@pytest.mark.parametrize(
    "blank",
    [" ", "\t\r\n", "\u00a0", "\u2003\u3000", "\u2028\u0085", "\x0b\x0c"],
    ids=["space", "tabs-and-newlines", "no-break-space", "em-and-ideographic-space", "unicode-line-breaks", "vt-ff"],
)
def test_a_blank_prompt_among_good_ones_is_dropped_without_a_note(byte_clip, photo, blank):
    assert clean_prompts(["a cat", blank, "a dog"]) == (["a cat", "a dog"], [])
    report = explain_image_text(byte_clip, [photo], ["a cat", blank, "a dog"])
    check_report(report, ["a cat", "a dog"])
    assert report.notes == ()


@pytest.mark.parametrize(
    "prompt",
    ["a\u200bcat\ufeff", "a\x00cat", "\x1b[31m red cat", "😀🐱", "قطة", "חתול", "cafe\u0301 cat", "ÇA CAT"],
    ids=["zero-width", "nul", "ansi-escape", "only-emoji", "arabic", "hebrew", "combining", "upper-case"],
)
def test_unusual_characters_are_read_byte_for_byte(byte_clip, photo, prompt):
    """Nothing typed is lost or invented: the tokens spell exactly the bytes CLIP's normaliser keeps."""
    assert spelled(tokens_of(byte_clip, prompt)) == as_clip_reads(prompt)
    report = explain_image_text(byte_clip, [photo], ["a cat", prompt], WORDS, target=1)
    check_report(report, ["a cat", prompt])


@pytest.mark.parametrize("where", ["prompt", "template"])
def test_a_lone_surrogate_is_refused_with_a_clear_message(byte_clip, photo, where):
    """Undecodable bytes reach Python as lone surrogates (e.g. from a command line: surrogateescape)."""
    broken = "a \udcff cat"
    prompts, template = (["a dog", broken], "") if where == "prompt" else (["dog", "cat"], "a \udcff {}")
    with pytest.raises(PromptError) as refused:
        explain_image_text(byte_clip, [photo], prompts, template=template)
    assert "Unicode" in str(refused.value) and len(str(refused.value)) < 300


# --- Length --------------------------------------------------------------------------------------------------


def test_a_ten_thousand_character_prompt_is_cut_quickly_with_a_note(byte_clip, photo):
    long = "a big orange cat " * 589 + "end"
    assert len(long) == 10_016
    started = time.perf_counter()
    report = explain_image_text(byte_clip, [photo], ["a dog", long], WORDS, target=1)
    assert time.perf_counter() - started < 2
    kept = report.prompts[1]
    assert len(kept) == MAX_PROMPT_CHARACTERS and long.startswith(kept)
    notes = [note for note in report.notes if "cut" in note]
    assert notes == ["Prompt 2 is longer than 77 tokens and was cut."], report.notes
    (words,) = report.words
    assert len(words.tokens) == 77 and words.tokens[0] == START and words.tokens[-1] == END
    assert spelled(words.tokens) == as_clip_reads(long)[: len(spelled(words.tokens))]  # the start, in order

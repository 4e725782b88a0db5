"""Word level (docs/analysis.md): word boundaries from WordPiece, byte-level BPE and SentencePiece tokenizers, from
their word ids or their markers, and head maps aggregated to words whose rows still sum to 1."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import WORD_CORPUS as CORPUS
from conftest import WORD_TEXT as TEXT
from conftest import tiny_llama
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from attnwidget import AttentionWidget, capture
from attnwidget.analysis.words import word_attention, word_groups


def text_words(result, side: str = "input") -> list[str]:
    groups = result.word_groups(side)
    return [label for label, special in zip(groups.labels, groups.special) if not special]


def assert_word_maps_are_aggregates(result) -> None:
    """Every head's word map: columns summed over a word's tokens, rows averaged, rows summing to 1."""
    groups = result.word_groups()
    ends = [*groups.starts[1:], len(result.tokens)]
    for head in range(result.num_heads()):
        tokens = result.head_attention(0, head).astype(np.float64)
        words = result.word_attention(0, head)
        assert words.shape == (len(groups), len(groups))
        np.testing.assert_allclose(words.sum(axis=1), 1, rtol=0, atol=1e-6)
        for row, (q0, q1) in enumerate(zip(groups.starts, ends)):
            for column, (k0, k1) in enumerate(zip(groups.starts, ends)):
                assert words[row, column] == pytest.approx(tokens[q0:q1, k0:k1].sum() / (q1 - q0))


def test_wordpiece_words_of_the_real_minilm_tokenizer(minilm):
    model, tokenizer = minilm
    result = capture(model, tokenizer, TEXT, "unbelievable tokenization")
    assert "##" in "".join(result.raw_tokens), "the text should split some words into pieces"
    assert text_words(result) == [*TEXT.split(), "unbelievable", "tokenization"]
    groups = result.word_groups()
    assert [label for label, special in zip(groups.labels, groups.special) if special] == ["[CLS]", "[SEP]", "[SEP]"]
    assert_word_maps_are_aggregates(result)
    # The same tokens given as strings: the words come from the ## markers, and are the same.
    from_strings = AttentionWidget.from_attention(result.attention()[:, None], result.raw_tokens).capture
    np.testing.assert_array_equal(from_strings.word_groups().starts, groups.starts)


def test_byte_level_bpe_words_from_word_ids_and_from_markers_agree(byte_level_bpe):
    result = capture(tiny_llama(len(byte_level_bpe)), byte_level_bpe, TEXT)
    assert any(token.startswith("Ġ") for token in result.raw_tokens)
    assert len(result.tokens) > len(TEXT.split()), "the text should split some words into pieces"
    assert result.input_side.word_of is not None
    assert text_words(result) == TEXT.split()
    markers = word_groups(result.tokens, result.raw_tokens, result.special_tokens_mask)
    np.testing.assert_array_equal(markers.starts, result.word_groups().starts)
    assert_word_maps_are_aggregates(result)


def test_sentencepiece_words_come_from_the_markers_when_word_ids_do_not_split(llama_sentencepiece):
    encoding = llama_sentencepiece(TEXT)
    assert set(encoding.word_ids()) - {None} == {0}, "this tokenizer numbers every token word 0"
    result = capture(tiny_llama(len(llama_sentencepiece)), llama_sentencepiece, TEXT)
    assert len(result.tokens) > len(TEXT.split()) + 1
    assert text_words(result) == TEXT.split()
    assert_word_maps_are_aggregates(result)


def test_a_metaspace_tokenizer_that_splits_gives_its_word_ids():
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=120, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>")
    result = capture(tiny_llama(len(fast)), fast, TEXT)
    assert len(result.tokens) > len(TEXT.split())
    assert text_words(result) == TEXT.split()


def test_word_attention_of_a_constructed_map():
    groups = word_groups(["[CLS]", "un", "believ", "able", "oak"], ["[CLS]", "un", "##believ", "##able", "oak"],
                         [True, False, False, False, False])  # fmt: skip
    assert groups.labels == ["[CLS]", "unbelievable", "oak"]
    attention = np.array(
        [
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.0, 0.5, 0.5, 0.0, 0.0],
            [0.1, 0.0, 0.0, 0.0, 0.9],
            [0.4, 0.0, 0.3, 0.3, 0.0],
        ]
    )
    # The middle word's row: the mean of rows 1..3 after summing columns 1..3 of each.
    expected = [[1.0, 0.0, 0.0], [(0.2 + 0 + 0.1) / 3, (0.6 + 1.0 + 0.0) / 3, (0.2 + 0 + 0.9) / 3], [0.4, 0.6, 0.0]]
    np.testing.assert_allclose(word_attention(attention, groups, groups), expected)


def test_a_byte_level_pre_tokenizer_without_its_regex_gives_words_from_the_markers(byte_level_bpe):
    import copy

    unsplit = copy.deepcopy(byte_level_bpe)
    unsplit.backend_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    assert set(unsplit(TEXT).word_ids()) == {0}, "one pre-token: every token is word 0"
    result = capture(tiny_llama(len(unsplit)), unsplit, TEXT)
    assert text_words(result) == TEXT.split()


def test_a_word_map_is_the_same_read_in_blocks_of_words(monkeypatch):
    from attnwidget.analysis import words as module

    tokens = [f"{'##' if i % 3 else ''}t{i}" for i in range(40)]  # words of three pieces, the last of one
    groups = word_groups(tokens, tokens, [False] * 40)
    attention = np.random.default_rng(0).random((40, 40))
    attention /= attention.sum(axis=1, keepdims=True)
    whole = word_attention(attention, groups, groups)
    monkeypatch.setattr(module, "ROW_BLOCK_VALUES", 40 * 5)  # five rows: one word of three a block, never half
    np.testing.assert_allclose(word_attention(attention, groups, groups), whole, rtol=1e-12)
    assert whole.shape == (14, 14)

"""Word level: a token map turned into a word map, and where a side's words begin (docs/analysis.md).

A word is a run of consecutive tokens. Its boundaries come from the tokenizer's `word_ids()` when its
pre-tokenizer splits text into words (recorded at capture time, `TokenSide.word_of`), and otherwise from the
markers the pieces carry: WordPiece's `##` continues a word, byte-level BPE's `Ġ` and SentencePiece's `▁` (a
leading space) start one. Special tokens are always words of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..capturing.tokens import PLAIN, WORDPIECE, TokenScheme, detect_scheme, scheme_from_tokens, token_text, visible_text

_SHOWN_SPACE = visible_text(" ")
ROW_BLOCK_VALUES = 2**20
"""Attention values summed at once: the rows of whole words, about 256 query rows of a 4096-token head."""


@dataclass(frozen=True)
class WordGroups:
    """The words of one token side: word w is tokens starts[w] up to starts[w + 1] (or the end)."""

    starts: np.ndarray
    """[words] int: the first token of each word, ascending, starting at 0."""
    labels: list[str]
    """Each word's display string: its tokens' display strings joined, without a leading lone-space token."""
    special: list[bool]
    """Whether each word is a special token."""

    def __len__(self) -> int:
        return len(self.labels)

    def sizes(self, n_tokens: int) -> np.ndarray:
        return np.diff(np.append(self.starts, n_tokens))


def word_groups(
    tokens: Sequence[str], raw_tokens: Sequence[str], special: Sequence[bool], word_of: Sequence[int] | None = None
) -> WordGroups:
    """The words of a side from its display strings, raw tokens and special flags, and the word number of each
    token where the capture recorded them (else read from the raw tokens' markers)."""
    numbers = list(word_of) if word_of is not None else marker_word_numbers(raw_tokens, special)
    if len(numbers) != len(tokens):
        raise ValueError(f"{len(numbers)} word numbers for {len(tokens)} tokens; pass one per token")
    starts = [index for index in range(len(numbers)) if index == 0 or numbers[index] != numbers[index - 1]]
    ends = [*starts[1:], len(numbers)]
    # A word can begin with a token that is only its leading space (SentencePiece's lone "▁"), shown as "␣".
    joined = ["".join(tokens[start:end]) for start, end in zip(starts, ends)]
    labels = [word.lstrip(_SHOWN_SPACE) or word for word in joined]
    return WordGroups(np.array(starts, dtype=np.int64), labels, [bool(special[start]) for start in starts])


def word_attention(attention: np.ndarray, query_words: WordGroups, key_words: WordGroups) -> np.ndarray:
    """A head's [n_query, n_key] map as [query words, key words] float64: the weight a query gives a word is the
    sum over the word's tokens (so rows keep their sums), and a word's row is the mean of its tokens' rows.
    Read a block of whole words' rows at a time, so the float64 sums in flight stay small however long the input."""
    n_query, n_key = attention.shape
    starts, sizes = query_words.starts, query_words.sizes(n_query)
    ends = starts + sizes
    words = np.empty((len(query_words), len(key_words)))
    step = max(1, ROW_BLOCK_VALUES // max(n_key, 1))
    first = 0
    while first < len(words):
        last = max(first + 1, int(np.searchsorted(ends, starts[first] + step, side="right")))
        rows = attention[starts[first] : ends[last - 1]]
        by_key_word = np.add.reduceat(rows, key_words.starts, axis=1, dtype=np.float64)
        words[first:last] = np.add.reduceat(by_key_word, starts[first:last] - starts[first], axis=0)
        words[first:last] /= sizes[first:last, None]
        first = last
    return words


# -- word numbers ------------------------------------------------------------------------------------------


def marker_word_numbers(
    raw_tokens: Sequence[str], special: Sequence[bool], scheme: TokenScheme | None = None
) -> list[int]:
    """The word number of each token, read from the markers of its raw string under `scheme` (guessed from the
    tokens when not given). A token starts a word when it follows a special token, and:
    WordPiece: when it does not carry the continuation marker (`##`);
    byte-level BPE and SentencePiece: when the text it stands for starts with whitespace (`Ġ`, `▁`, a newline), or
    the previous token's ends with it or with a word-end suffix (CLIP's `</w>`);
    tokens with no markers at all (plain strings): every token is a word."""
    scheme = scheme or scheme_from_tokens(list(raw_tokens))
    return _numbered(
        index == 0 or special[index] or special[index - 1] or _starts_word(raw, raw_tokens[index - 1], scheme)
        for index, raw in enumerate(raw_tokens)
    )


def _numbered(starts) -> list[int]:
    """Word numbers 0, 0, 1, ... from whether each token starts a word (the first always does)."""
    numbers: list[int] = []
    for index, start in enumerate(starts):
        numbers.append(0 if index == 0 else numbers[-1] + 1 if start else numbers[-1])
    return numbers


def _starts_word(raw: str, previous: str, scheme: TokenScheme) -> bool:
    if scheme.kind == PLAIN:
        return True
    if scheme.kind == WORDPIECE:
        return not raw.startswith(scheme.marker)
    if scheme.word_end and previous.endswith(scheme.word_end):
        return True
    text, before = token_text(raw, scheme)[0], token_text(previous, scheme)[0]
    return text[:1].isspace() or before[-1:].isspace()


def tokenizer_word_numbers(
    tokenizer, encoding, row: int, positions: Sequence[int], raw_tokens: Sequence[str], special: Sequence[bool]
) -> list[int]:
    """The word number of each kept token of one encoded row: from the tokenizer's word ids where its
    pre-tokenizer splits words, else from the markers of the tokenizer's scheme."""
    word_ids = _word_ids(tokenizer, encoding, row)
    if word_ids is None:
        return marker_word_numbers(raw_tokens, special, detect_scheme(tokenizer))
    try:
        sequences = encoding.sequence_ids(row)
    except (AttributeError, ValueError):
        sequences = [0] * len(word_ids)
    # A pair numbers its second text's words from 0 again: the text a token is in tells them apart.
    words = [
        None if special[index] or word_ids[position] is None else (sequences[position], word_ids[position])
        for index, position in enumerate(positions)
    ]
    return _numbered(word is None or index == 0 or word != words[index - 1] for index, word in enumerate(words))


def _word_ids(tokenizer, encoding, row: int) -> list[int | None] | None:
    """The fast tokenizer's word id of each position of a row, or None where it has none that mean words: slow
    tokenizers, and those whose pre-tokenizer does not split (Llama's Metaspace with split=False numbers every
    token 0)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre_tokenizer = None if backend is None else backend.pre_tokenizer
    if pre_tokenizer is None or not _splits_words(json.loads(pre_tokenizer.__getstate__())):
        return None
    try:
        return encoding.word_ids(row)
    except (AttributeError, ValueError):  # an encoding a fast tokenizer did not make
        return None


def _splits_words(state: dict) -> bool:
    """Whether a serialized pre-tokenizer cuts text into words: all do but a Metaspace that does not split and a
    ByteLevel without its regex (Llama 3 puts a splitting regex before one: the Sequence splits)."""
    kind = state.get("type")
    if kind == "Sequence":
        return any(_splits_words(child) for child in state.get("pretokenizers", []))
    if kind == "Metaspace":
        return state.get("split") is not False
    if kind == "ByteLevel":
        return state.get("use_regex") is not False
    return True

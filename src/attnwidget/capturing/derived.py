"""Derived stacks: stacks whose heads are computed from a capture's recorded stacks when read, never stored.

A derived stack shows a *measure* of a recorded (base) stack, optionally at word level, and is named after them,
joined by "·": "self·rollout" (attention rollout, one head per layer), "self·value" (value-weighted attention,
each query row's share of the weighted norm), "self·words" (the base's heads over words),
"self·rollout·words", "cross·words". Its layers (`DerivedLayer`) answer what wire, serving and the export read of a
recorded layer (shape, one head, some rows of one head) and hold no n² arrays: a head is computed when asked for,
and only the last one is kept. Word level puts both token sides into words (`analysis/words.py`) on new token sides
named "<side>·words", whose tokens are the words.

Adding a measure is one entry of `MEASURES`: how many heads a layer has, whether the measure is defined for a base
stack, and the function computing one head of one layer (docs/data-contract.md, "Derived stacks").
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..analysis.rollout import head_mean, residual_step, rollout_by_layer
from ..analysis.words import WordGroups, word_attention
from .result import Capture, Derivation, StackRecord, TokenSide

SEPARATOR = "·"
ATTENTION = "attention"
"""The measure of a recorded stack: its heads as the model computed them."""
ROLLOUT = "rollout"
VALUE = "value"
WORDS = "words"
MAX_DERIVED_VALUES = 2**22
"""Attention values (layers × heads × n_query × n_key) of a recorded stack up to which its derived stacks are added
unasked (`derived=None`, the widget's default), the limit up to which head scores are too (`widget.AUTO_SCORE_VALUES`):
every derived head's thumbnail is computed as the widget opens, and exports hold their chunks after the recorded ones,
so they cost about what the stack itself does, again and again. MiniLM (6 × 12) up to 241 tokens, a 32 × 32 model up
to 64. At 512 tokens MiniLM's widget opened in 1.33 s with them against 0.06 s without, and its export weighed 23.1 MB
against 14.3 MB (one run, 2 cores). `derived=True` adds them at any size, `word_level=True` the word stacks."""
ROLLOUT_CACHE_BYTES = 64 * 2**20
"""Rollout products kept per stack, most recently used first: 8 layers at 1024 tokens, every layer of MiniLM at 512."""

HeadFunction = Callable[[int, int], np.ndarray]
"""(layer, head) -> one head's [n_query, n_key] map of a derived stack."""


@dataclass(frozen=True)
class Measure:
    """What a derived stack shows of its base stack."""

    heads: Callable[[Capture, str], int]
    """How many heads each layer has, for a base stack."""
    defined: Callable[[Capture, str], bool]
    """Whether the measure is defined for a base stack (rollout: queries and keys are the same tokens; value: the
    capture recorded value norms)."""
    head_function: Callable[[Capture, str], HeadFunction]
    """The function computing one head of one layer of a base stack; made once per derived stack, so it may keep
    what later layers reuse (rollout keeps its products)."""


def affordable(capture: Capture, base: str) -> bool:
    """Whether a recorded stack is small enough for its derived stacks to be added unasked (`MAX_DERIVED_VALUES`)."""
    query, key = capture.stack_tokens(base)
    return capture.num_layers(base) * capture.num_heads(base) * len(query) * len(key) <= MAX_DERIVED_VALUES


def _square(capture: Capture, base: str) -> bool:
    query, key = capture.stack_tokens(base)
    return query.name == key.name


class _RolloutChain:
    """The rollout of one stack through each of its layers (`Capture.rollout`), computed from the nearest earlier
    layer whose product is kept, so reading the layers in order multiplies each once."""

    def __init__(self, capture: Capture, base: str):
        self._capture, self._base = capture, base
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()

    def __call__(self, layer: int, _head: int) -> np.ndarray:
        start = max((kept for kept in self._kept if kept <= layer), default=-1)
        product = self._kept.get(start)
        heads = self._capture.num_heads(self._base)
        means = (
            head_mean(self._capture.head_attention(index, head, self._base) for head in range(heads))
            for index in range(start + 1, layer + 1)
        )
        for index, product in enumerate(rollout_by_layer(means, product), start + 1):
            self._keep(index, product)
        self._kept.move_to_end(layer)
        return product

    def _keep(self, layer: int, product: np.ndarray) -> None:
        self._kept[layer] = product
        while len(self._kept) > 1 and sum(kept.nbytes for kept in self._kept.values()) > ROLLOUT_CACHE_BYTES:
            self._kept.popitem(last=False)


def _value_weighted(capture: Capture, base: str) -> bool:
    return capture.has_value_weights(base)


def _value_shares(capture: Capture, base: str) -> HeadFunction:
    """Value-weighted attention (`Capture.value_weighted`, docs/analysis.md) with each query row divided by its sum:
    the row's share of the weighted norm. Rows then sum to 1 like attention's, so the page's byte encoding and colour
    scales read it as they read attention; Python's `value_weighted` keeps the norms themselves. A row with no weight
    at all stays 0."""

    def shares(layer: int, head: int) -> np.ndarray:
        weighted = capture.value_weighted(layer, head, base)
        sums = weighted.sum(axis=1, keepdims=True, dtype=np.float64)
        return np.divide(weighted, sums, out=weighted, where=sums > 0, casting="same_kind")

    return shares


MEASURES: dict[str, Measure] = {
    ROLLOUT: Measure(heads=lambda _capture, _base: 1, defined=_square, head_function=_RolloutChain),
    VALUE: Measure(
        heads=lambda capture, base: capture.num_heads(base), defined=_value_weighted,
        head_function=_value_shares,
    ),  # fmt: skip
}
"""Every measure a derived stack can show besides the base's attention, in the order the page offers them."""


# -- names --------------------------------------------------------------------------------------
def derived_name(base: str, measure: str = ATTENTION, words: bool = False) -> str:
    """"self", "self·rollout", "self·words", "self·rollout·words"."""
    return SEPARATOR.join([base] + ([measure] if measure != ATTENTION else []) + ([WORDS] if words else []))


def words_side_name(side: str) -> str:
    return f"{side}{SEPARATOR}{WORDS}"


# -- layers ---------------------------------------------------------------------------------------
class _LastHead:
    """A derived stack's head function, keeping the last head it computed: a tile, a chunk and the top keys of the
    head on screen read it in turn, and a long head's rows come in several pieces."""

    def __init__(self, function: HeadFunction):
        self._function = function
        self._last: tuple[tuple[int, int], np.ndarray] | None = None

    def __call__(self, layer: int, head: int) -> np.ndarray:
        if self._last is None or self._last[0] != (layer, head):
            self._last = None  # let the old head go before the new one exists
            self._last = ((layer, head), self._function(layer, head))
        return self._last[1]


class DerivedLayer:
    """One layer of a derived stack, read like a recorded `LayerRecord`: no queries, keys, bias or sinks, and each
    head computed when read."""

    query = key = scale = bias = softcap = sinks = None

    def __init__(self, layer: int, shape: tuple[int, int, int], heads: _LastHead):
        self._layer, self.shape, self._heads = layer, shape, heads

    @property
    def attention(self) -> np.ndarray:
        """[heads, n_query, n_key] float32, every head computed."""
        return np.stack([self.head_attention(head).astype(np.float32, copy=False) for head in range(self.shape[0])])

    def head_attention(self, head: int) -> np.ndarray:
        return self._heads(self._layer, head)

    def head_rows(self, head: int, start: int, stop: int) -> np.ndarray:
        return self.head_attention(head)[start:stop]


# -- stacks ---------------------------------------------------------------------------------------
def with_derived_stacks(capture: Capture, measures: bool | None = None, words: bool | None = None) -> Capture:
    """`capture` with derived stacks after its recorded ones, sharing their records. For each recorded stack: every
    measure of `MEASURES` defined for it, then the word level of it and of each of those. `measures` and `words`: True
    always, False never, None where `affordable`. Derived stacks already in `capture` are made anew."""
    recorded = [capture.stack(name) for name in capture.recorded_stacks]
    sides = {name: side for name, side in capture.sides.items() if side.words_of is None}
    derived = []
    for base in recorded:
        if base.signed:  # a difference A − B is no attention: rollout and word sums of it would mislead
            continue
        with_measures = measures if measures is not None else affordable(capture, base.name)
        measured = [(ATTENTION, None)] + [
            (name, measure) for name, measure in MEASURES.items() if with_measures and measure.defined(capture, base.name)
        ]
        query, key = capture.stack_tokens(base.name)
        at_word_level = words if words is not None else affordable(capture, base.name)
        for name, measure in measured:
            function = (lambda layer, head, base=base.name: capture.head_attention(layer, head, base))
            heads = base.num_heads
            if measure is not None:
                function, heads = measure.head_function(capture, base.name), measure.heads(capture, base.name)
                derived.append(_stack(base, Derivation(base.name, name, False), heads, function, query, key))
            if at_word_level:
                for side in (query, key):
                    sides.setdefault(words_side_name(side.name), _words_side(capture, side))
                query_words, key_words = (sides[words_side_name(side.name)] for side in (query, key))
                grouped = _by_words(function, capture.word_groups(query.name), capture.word_groups(key.name))
                derived.append(_stack(base, Derivation(base.name, name, True), heads, grouped, query_words, key_words))
    return Capture(list(sides.values()), recorded + derived, capture.generation)


def _stack(base: StackRecord, derivation: Derivation, heads: int, function: HeadFunction,
           query: TokenSide, key: TokenSide) -> StackRecord:  # fmt: skip
    computed = _LastHead(function)
    shape = (heads, len(query), len(key))
    return StackRecord(
        name=derived_name(derivation.base, derivation.measure, derivation.words),
        query_side=query.name,
        key_side=key.name,
        layers=[DerivedLayer(layer, shape, computed) for layer in range(base.num_layers)],
        model_layer_numbers=list(base.model_layer_numbers),
        derivation=derivation,
    )


def _by_words(function: HeadFunction, query_words: WordGroups, key_words: WordGroups) -> HeadFunction:
    """Each head of `function` at word level: a word's weight summed over its tokens, a word's row their mean."""
    return lambda layer, head: word_attention(function(layer, head), query_words, key_words).astype(np.float32)


def _words_side(capture: Capture, side: TokenSide) -> TokenSide:
    """The words of a token side as a token side of their own: each word's display string, special when its token
    is, the second text starting at the word that holds its first token."""
    groups = capture.word_groups(side.name)
    count = len(groups)
    pair = None if side.segment_b_start is None else word_of_token(groups.starts, side.segment_b_start)
    return TokenSide(
        name=words_side_name(side.name),
        tokens=list(groups.labels),
        raw_tokens=list(groups.labels),
        token_ids=[-1] * count,
        special=list(groups.special),
        segment_b_start=pair if pair else None,
        word_of=list(range(count)),
        words_of=side.name,
        word_starts=tuple(int(start) for start in groups.starts),
    )


# -- the selected token across sides ------------------------------------------------------------------
def word_of_token(starts, token: int) -> int:
    """The word holding `token`, from the first token of each word."""
    return int(np.searchsorted(np.asarray(starts), token, side="right")) - 1


def token_on_side(capture: Capture, token: int | None, side: str, other: str) -> int | None:
    """What a selected query `token` of `side` becomes when the query side changes to `other`: itself on the same
    side, its word on the side of its words, a word's first token on the side of the word's tokens, else None (an
    index on another side would name another token)."""
    if token is None or side == other:
        return token
    here, there = capture.sides[side], capture.sides[other]
    if there.words_of == side:
        return word_of_token(there.word_starts, token)
    if here.words_of == other:
        return here.word_starts[token]
    return None

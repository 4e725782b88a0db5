"""The result of a capture: tokens, attention, queries, keys and bias, held on the CPU.

`run.py` fills a `Capture` by running a model; `from_tensors.py` fills one from tensors
the user already has. Everything downstream (widget, exports, BertViz layer) reads
only this class, so it is the one place that knows how the arrays are laid out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

STACK_NAMES = ("self", "encoder", "decoder", "cross")
RUN_SEPARATOR = ":"
"""A compared capture names its stacks "<run>:<stack>" ("A:self", "A-B:self"; docs/data-contract.md)."""
DERIVE_CHUNK_BYTES = 16 * 2**20
"""Float32 scores of one head derived at once: 2048 query rows of a 2048-token input, 1024 of a 4096-token one."""


def rows_per_chunk(n_key: int) -> int:
    """How many query rows of one head make `DERIVE_CHUNK_BYTES` of float32 scores: at least one."""
    return max(1, DERIVE_CHUNK_BYTES // (4 * n_key))


@dataclass(frozen=True)
class TokenSide:
    """The tokens of one input sequence ("input" for the encoder or sole stack, "decoder")."""

    name: str
    tokens: list[str]
    """Display strings: readable, whitespace made visible. Plain data, never markup."""
    raw_tokens: list[str]
    token_ids: list[int]
    special: list[bool]
    segment_b_start: int | None = None
    word_of: list[int] | None = None
    """The word each token belongs to, numbered 0, 0, 1, 2, 2, ... along the side (a special token is a word of
    its own), as the tokenizer split the text at capture time; None when the tokens came as strings, whose words
    `analysis/words.py` reads from their markers. Python only: not part of `meta`."""
    words_of: str | None = None
    """On a side of words (a derived stack's, `capturing/derived.py`): the token side whose words these are."""
    word_starts: tuple[int, ...] | None = None
    """On a side of words: the first token of each word on `words_of`, ascending from 0."""

    def __post_init__(self) -> None:
        n = len(self.tokens)
        if not (len(self.raw_tokens) == len(self.token_ids) == len(self.special) == n):
            raise ValueError(
                f"token side {self.name!r}: tokens, raw_tokens, token_ids and special must have one entry per "
                f"position; got {n}, {len(self.raw_tokens)}, {len(self.token_ids)}, {len(self.special)}"
            )
        if self.word_of is not None and len(self.word_of) != n:
            raise ValueError(f"token side {self.name!r}: word_of has {len(self.word_of)} entries for {n} tokens")
        if self.segment_b_start is not None and not (0 < self.segment_b_start < n):
            raise ValueError(f"segment_b_start={self.segment_b_start} is outside 1..{n - 1}")

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Sink:
    """What the sinks of a stack's layers stand for: one more key in every softmax that is no token of the text.

    GPT-OSS learns one logit per head. Where a model attends to keys that are not tokens of the text (CPM-Ant's
    prompt, Pegasus-X's global tokens, LongT5's block summaries), their logits are collapsed into one per query,
    the log-sum-exp of theirs: the softmax then gives every token its weight exactly, and the extra key the share
    that went to all of them."""

    label: str
    """How the page names the extra key: "<sink>", "<prompt>", "<global>"."""
    stands_for: str
    """What its weight goes to, as a noun phrase: "the 32 prompt positions CPM-Ant puts before the text"."""


ATTENTION_SINK = Sink("<sink>", "the head's learned attention sink")


@dataclass(frozen=True)
class Generation:
    """Which query row produced each generated token, in a capture of a prompt and the model's output.

    Step s (0-based) is the query that produced generated token s: row prompt_length + s - 1 of the input side
    for a decoder-only model (the last prompt token produces the first output token), row s of the decoder side
    for an encoder-decoder (whose decoder input is the start token, then the output). That row attends to the
    prompt and to the output before token s."""

    stack: str
    """The stack a step is shown in: "self", or "cross" (the prompt as keys) for an encoder-decoder."""
    side: str
    """The token side holding the generated tokens and their query rows: "input" or "decoder"."""
    prompt_length: int
    """Tokens of the prompt (of the encoder input, for an encoder-decoder)."""
    first_row: int
    """The query row of step 0; step s is row first_row + s and produced the token at row first_row + s + 1."""
    steps: int
    """Tokens generated."""

    def row(self, step: int) -> int:
        return self.first_row + step

    def step_of(self, row: int | None) -> int | None:
        """The step whose query `row` is, or None (a prompt row, or the last token, which produced nothing)."""
        return None if row is None or not 0 <= row - self.first_row < self.steps else row - self.first_row


class LayerRecord:
    """What one attention call of one layer produced, for the single sequence kept.

    A capture of a float32 model stores no attention where softmax(q @ k.T * scale + bias)
    gives back exactly the model's own (the recorder checks every layer): queries and keys
    take 2·n·head_dim values per head against n² for the attention. `attention` then derives
    it on each read and keeps nothing, so the capture stays small.
    """

    def __init__(
        self,
        attention: np.ndarray | None = None,
        query: np.ndarray | None = None,
        key: np.ndarray | None = None,
        scale: float | None = None,
        bias: np.ndarray | None = None,
        softcap: float | None = None,
        sinks: np.ndarray | None = None,
    ):
        self.stored_attention = attention
        """[heads, n_query, n_key], float32 or float16; None when derived from the rest."""
        self.query = query
        """[heads, n_query, head_dim] as the model used it (after rotary embedding)."""
        self.key = key
        """[kv_heads, n_key, head_dim]; query head h reads key head h // (heads // kv_heads)."""
        self.scale = scale
        self.bias = bias
        """Broadcastable to [heads, n_query, n_key]; masked positions are -inf."""
        self.softcap = softcap
        """Logit soft-capping (Gemma 2): scores become tanh(scores / softcap) * softcap before the bias."""
        self.value_norms: np.ndarray | None = None
        """‖f_h(x_j)‖ [heads, n_key] float32, for value-weighted attention (capturing/values.py), or None."""
        self.sinks = sinks
        """The logit of one more key in every softmax, which is no token of the text (see `Sink`), or None:
        [heads] float32 where it is the same for every query (GPT-OSS's learned sinks), [heads, n_query] where
        each query has its own (Inkling2's, or the log-sum-exp of the logits of keys that are not tokens). The attention is the
        weights of the tokens; the rest of each row went to the sink."""
        if attention is None and (query is None or key is None or scale is None):
            raise ValueError("a layer record needs its attention, or the query, key and scale to derive it from")

    @property
    def attention(self) -> np.ndarray:
        """[heads, n_query, n_key]: the stored array, or a fresh one derived from q, k, scale and bias."""
        return self.derived_attention() if self.stored_attention is None else self.stored_attention

    @property
    def shape(self) -> tuple[int, int, int]:
        """The attention's shape, without deriving it."""
        if self.stored_attention is not None:
            return tuple(self.stored_attention.shape)
        return (self.query.shape[0], self.query.shape[1], self.key.shape[1])

    def derived_attention(self) -> np.ndarray:
        """softmax(q @ k.T * scale, capped, + bias) as float32 [heads, n_query, n_key]."""
        attention = np.empty(self.shape, dtype=np.float32)
        for head in range(self.shape[0]):
            self.derive_head(head, out=attention[head])
        return attention

    def head_attention(self, head: int) -> np.ndarray:
        """[n_query, n_key] of one head: a view of the stored array, or derived for this head alone."""
        if self.stored_attention is not None:
            return self.stored_attention[head]
        return self.derive_head(head, out=np.empty(self.shape[1:], dtype=np.float32))

    def derive_head(self, head: int, out: np.ndarray) -> np.ndarray:
        """One head's derived attention written into `out` [n_query, n_key], a few rows at a time, so the scores
        in flight stay at most `DERIVE_CHUNK_BYTES` however long the input. Inputs up to 2048 tokens are one
        chunk: every row comes out of the same ops the recorder checked against the model, bit for bit."""
        n_query, n_key = self.shape[1:]
        step = rows_per_chunk(n_key)
        for start in range(0, n_query, step):
            stop = min(start + step, n_query)
            # Derived even where the attention is stored: the recorder checks the stored array against this.
            out[start:stop] = self.derived_rows(head, np.arange(start, stop)).numpy()
        return out

    def head_rows(self, head: int, start: int, stop: int) -> np.ndarray:
        """Query rows [start, stop) of one head, [stop - start, n_key]: a view of the stored array, or derived for
        those rows alone (callers keep `stop - start` to about `rows_per_chunk`), and for the keys they may see:
        under a causal mask, rows [start, stop) see only keys before `stop`, half the head on average."""
        if self.stored_attention is not None:
            return self.stored_attention[head, start:stop]
        rows = np.arange(start, stop)
        seen = self._keys_seen(head, start, stop)
        if seen in (0, self.key.shape[1]):
            return self.derived_rows(head, rows).numpy()
        # The keys no row sees are -inf, so each is 0 (exactly, as derived whole); a row that sees no key is NaN.
        part = self.derived_rows(head, rows, seen).numpy()
        out = np.zeros((stop - start, self.key.shape[1]), dtype=np.float32)
        out[:, :seen] = part
        out[np.isnan(part[:, 0])] = np.nan
        return out

    def _keys_seen(self, head: int, start: int, stop: int) -> int:
        """How many leading keys rows [start, stop) may see: past the last key any of them has a finite bias for,
        every key is masked. All of them where a sink takes its share: its weight depends on every key."""
        if self.bias is None or self.sinks is not None:
            return self.key.shape[1]
        bias = self.bias[head if self.bias.shape[0] > 1 else 0]
        finite = np.flatnonzero(np.isfinite(bias if bias.shape[0] == 1 else bias[start:stop]).any(axis=0))
        if not len(finite):
            return 0
        # Whole blocks of KEYS_SEEN_STEP keys: torch's softmax takes a short row's last few values another way than
        # a long row's, which changes the last bit; whole vectors of them it takes alike.
        return min(self.key.shape[1], -(-(int(finite[-1]) + 1) // KEYS_SEEN_STEP) * KEYS_SEEN_STEP)

    def derived_rows(self, head: int, rows: np.ndarray, keys: int | None = None) -> "torch.Tensor":
        """softmax(q @ k.T * scale + bias) of one head for some query rows, as a float32 tensor
        [len(rows), n_key], with the float32 ops of transformers' eager attention in their order, so it can
        equal the model's own bit for bit. Only the first `keys` keys when the rest are masked for these rows:
        the weights are the same, bit for bit (tests/test_tiles.py checks it), for a fraction of the work."""
        import torch  # only captures of a model hold queries and keys, and those come from torch

        whole = len(rows) == self.query.shape[1]  # no gather: the rows are the record's own memory
        query = torch.from_numpy(self.query[head] if whole else self.query[head, rows])
        key = torch.from_numpy(self.key[head // (self.query.shape[0] // self.key.shape[0]), :keys])
        scores = torch.matmul(query, key.transpose(0, 1)).mul_(self.scale)
        if self.softcap is not None:
            scores = scores.div_(self.softcap).tanh_().mul_(self.softcap)
        if self.bias is not None:
            # One map shared by every head (a mask) is read, never copied per head; so is one row shared by all.
            bias = self.bias[head if self.bias.shape[0] > 1 else 0][:, :keys]
            scores.add_(torch.from_numpy(bias if whole or bias.shape[0] == 1 else bias[rows]))
        if self.sinks is None:
            return torch.softmax(scores, dim=-1, dtype=torch.float32)
        # As GPT-OSS's eager function: the sink as a last column, the row's maximum taken out, then dropped. A sink
        # per query ([heads, n_query]) gives each row its own.
        sink = torch.as_tensor(self.sinks[head], dtype=torch.float32)
        if sink.dim() == 1 and not whole:
            sink = sink[torch.from_numpy(np.asarray(rows))]
        logits = torch.cat([scores, sink.reshape(-1, 1).expand(scores.shape[0], 1)], dim=-1)
        logits = logits - logits.max(dim=-1, keepdim=True).values
        return torch.softmax(logits, dim=-1, dtype=torch.float32)[:, :-1]


KEYS_SEEN_STEP = 64
"""Rows derived for the keys they see take them in multiples of this (`LayerRecord._keys_seen`)."""


@dataclass(frozen=True)
class Derivation:
    """How a derived stack's heads are computed from a recorded stack (`capturing/derived.py`)."""

    base: str
    """The recorded stack it is computed from."""
    measure: str
    """What each head shows: "attention" (the base's heads), "rollout" (one head per layer, through that layer),
    "value" (value-weighted attention, each query row's share of the weighted norm)."""
    words: bool
    """Whether both token sides are grouped into words (key columns summed, query rows averaged)."""


@dataclass
class StackRecord:
    """All layers of one attention stack, in the order the model ran them."""

    name: str
    query_side: str
    key_side: str
    layers: list[LayerRecord] = field(default_factory=list)
    kv_head_of: np.ndarray | None = None
    model_layer_numbers: list[int | None] = field(default_factory=list)
    """The model's own number of each recorded layer, read from its module name (None where the name
    holds none); empty when unknown. `Capture.layer_numbers` says which numbers are shown."""
    sink: Sink = ATTENTION_SINK
    """What the sinks of its layers stand for, where they have any."""
    difference_of: tuple[str, str] | None = None
    """For the difference A − B of two compared runs (`capturing/comparing.py`), the names of the stacks A and B:
    its values are signed, in [-1, 1], not attention. None for attention."""
    no_value_weights: str | None = None
    """Why a layer of the stack has no value norms, where the recorder found out."""
    derivation: Derivation | None = None
    """None for a recorded stack; for a derived one, what it is computed from (its layers compute heads on demand)."""

    @property
    def signed(self) -> bool:
        return self.difference_of is not None

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_heads(self) -> int:
        return int(self.layers[0].shape[0])


def _of_input_side(field: str, doc: str) -> property:
    return property(lambda capture: getattr(capture.input_side, field), doc=doc)


class Capture:
    """Attention of one text through one model, ready to inspect or visualize."""

    def __init__(
        self, sides: Sequence[TokenSide], stacks: Sequence[StackRecord], generation: Generation | None = None
    ):
        self._sides = {side.name: side for side in sides}
        self._stacks = {stack.name: stack for stack in stacks}
        if not self._stacks:
            raise ValueError("a capture needs at least one attention stack")
        for stack in self._stacks.values():
            self._check_stack(stack)
        if generation is not None:
            self._check_generation(generation)
        self.generation = generation
        """Where the generated tokens are, for a capture of a prompt and the model's output (see `Generation`)."""

    # -- tokens ---------------------------------------------------------------------------
    @property
    def input_side(self) -> TokenSide:
        return self._sides["input"]

    # The input side's lists, under the names BertViz users and the first version of this class know.
    tokens = _of_input_side("tokens", "Display strings of the input tokens.")
    raw_tokens = _of_input_side("raw_tokens", "The tokenizer's own strings of the input tokens.")
    token_ids = _of_input_side("token_ids", "Token ids of the input (-1 where only strings were given).")
    special_tokens_mask = _of_input_side("special", "Whether each input token is a special token.")
    segment_b_start = _of_input_side("segment_b_start", "First token of the second text of a pair, or None.")

    @property
    def sides(self) -> dict[str, TokenSide]:
        return dict(self._sides)

    # -- stacks ---------------------------------------------------------------------------
    @property
    def stacks(self) -> tuple[str, ...]:
        """Every stack's name: the recorded ones first, then the derived ones (`capturing/derived.py`)."""
        return tuple(self._stacks)

    @property
    def recorded_stacks(self) -> tuple[str, ...]:
        """The stacks the model ran, without the ones derived from them."""
        return tuple(name for name, stack in self._stacks.items() if stack.derivation is None)

    def stack(self, stack: str | None = None) -> StackRecord:
        name = self.stacks[0] if stack is None else stack
        if name not in self._stacks:
            raise KeyError(f"no attention stack {name!r}; this capture has {list(self._stacks)}")
        return self._stacks[name]

    def stack_tokens(self, stack: str | None = None) -> tuple[TokenSide, TokenSide]:
        """(query side, key side) of a stack: cross-attention reads decoder queries against input keys."""
        record = self.stack(stack)
        return self._sides[record.query_side], self._sides[record.key_side]

    def num_layers(self, stack: str | None = None) -> int:
        return self.stack(stack).num_layers

    def num_heads(self, stack: str | None = None) -> int:
        return self.stack(stack).num_heads

    def layer_numbers(self, stack: str | None = None) -> list[int]:
        """The model's own number of each layer: [1, 3] where a hybrid model (Jamba, LFM2) attends only in
        layers 1 and 3 of four. Layer arguments everywhere else are 0-based indices into the captured
        layers. 0, 1, 2... when the model's numbers are unknown (tensors given by hand) or do not increase
        (ALBERT runs one shared layer several times)."""
        record = self.stack(stack)
        numbers = record.model_layer_numbers
        known = len(numbers) == record.num_layers and all(isinstance(number, int) for number in numbers)
        if known and all(earlier < later for earlier, later in zip(numbers, numbers[1:])):
            return list(numbers)
        return list(range(record.num_layers))

    # -- arrays ---------------------------------------------------------------------------
    def attention(self, stack: str | None = None) -> np.ndarray:
        """[layers, heads, n_query, n_key] float32."""
        return np.stack([layer.attention.astype(np.float32, copy=False) for layer in self.stack(stack).layers])

    def layer_attention(self, layer: int, stack: str | None = None) -> np.ndarray:
        """[heads, n_query, n_key] in its stored dtype, without stacking every layer."""
        return self._layer(layer, stack).attention

    def head_attention(self, layer: int, head: int, stack: str | None = None) -> np.ndarray:
        """[n_query, n_key] of one head, in its stored dtype, without computing the other heads: at 4096 tokens
        one head is 64 MiB of float32, a layer of 32 heads 2 GiB."""
        record = self._layer(layer, stack)
        if not 0 <= head < record.shape[0]:
            raise IndexError(f"head {head} is out of range; layer {layer} has {record.shape[0]} heads")
        return record.head_attention(head)

    def head_rows(self, layer: int, head: int, start: int, stop: int, stack: str | None = None) -> np.ndarray:
        """Query rows [start, stop) of one head, [stop - start, n_key], computing only those rows: a region of a
        4096-token head costs its rows, not the head. Keep `stop - start` near `rows_per_chunk(n_key)`."""
        record = self._layer(layer, stack)
        if not 0 <= head < record.shape[0]:
            raise IndexError(f"head {head} is out of range; layer {layer} has {record.shape[0]} heads")
        if not 0 <= start < stop <= record.shape[1]:
            raise IndexError(f"query rows [{start}, {stop}) are outside 0..{record.shape[1]}")
        return record.head_rows(head, start, stop)

    def kv_head_of(self, stack: str | None = None) -> np.ndarray:
        """For each query head, the key/value head it reads (identity without GQA)."""
        record = self.stack(stack)
        if record.kv_head_of is not None:
            return record.kv_head_of
        return np.arange(record.num_heads)

    def query_key(self, layer: int, stack: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(q [heads, n_query, d], k [heads, n_key, d]) float32, k already mapped to each query head."""
        derivation = self.stack(stack).derivation
        if derivation is not None:
            raise ValueError(
                f"stack {self.stack(stack).name!r} is computed from stack {derivation.base!r} and has no queries or "
                f"keys of its own; ask stack {derivation.base!r} for them"
            )
        record = self._layer(layer, stack)
        if record.query is None or record.key is None:
            raise ValueError(
                "this capture holds no queries or keys (it was built from attention tensors alone); "
                "use attnwidget.capture(model, tokenizer, text) to record them"
            )
        key = record.key[self.kv_head_of(stack)]
        return record.query.astype(np.float32, copy=False), key.astype(np.float32, copy=False)

    @property
    def scale(self) -> float | None:
        """The score scale of the first stack's first layer (see `layer_scale` when layers differ)."""
        return self.layer_scale(0)

    def layer_scale(self, layer: int, stack: str | None = None) -> float | None:
        return self._layer(layer, stack).scale

    def bias(self, layer: int, stack: str | None = None) -> np.ndarray | None:
        """The additive pre-softmax term (mask, relative position bias, ALiBi) or None; -inf where masked."""
        return self._layer(layer, stack).bias

    def softcap(self, layer: int, stack: str | None = None) -> float | None:
        """The logit soft-cap c (Gemma 2), or None: scores become c·tanh(scores / c) before the bias."""
        return self._layer(layer, stack).softcap

    def sinks(self, layer: int, stack: str | None = None) -> np.ndarray | None:
        """The logits of the sink, one more key in each softmax that is no token of the text, or None: [heads]
        (GPT-OSS's learned sinks) or [heads, n_query] (log-sum-exp of each query's logits of such keys)."""
        return self._layer(layer, stack).sinks

    def sink(self, stack: str | None = None) -> Sink | None:
        """What the sinks of a stack stand for, or None when none of its layers has any."""
        record = self.stack(stack)
        return record.sink if any(layer.sinks is not None for layer in record.layers) else None

    # -- analysis (docs/analysis.md) ---------------------------------------------------------
    def head_scores(
        self, stacks: Sequence[str] | None = None, layers: Sequence[int] | None = None, progress: bool = True
    ):
        """A pandas DataFrame with one row per (stack, layer, head) of `stacks` (default: every recorded stack but a
        difference A − B) and one column per score of `analysis.scores.SCORES`, computed from one head's map at a
        time. `layers` limits it to those layer indices of each stack. A long capture shows a progress bar over its
        layers; `progress=False` never does."""
        from ..analysis.scores import capture_score_rows, scores_frame

        names = tuple(name for name in self.recorded_stacks if not self.stack(name).signed) if stacks is None else tuple(stacks)
        for name in names:  # unknown stacks and layers are refused before any head is scored
            if self.stack(name).signed:
                raise ValueError(
                    f"stack {name!r} holds differences of attention, not attention, so head scores do not apply; "
                    "its heads' Jensen-Shannon distances are in AttentionWidget.compare_scores()"
                )
            for layer in layers or ():
                self._layer(layer, name)
        return scores_frame(capture_score_rows(self, names, layers, progress))

    def rollout(self, stack: str | None = None, layer: int | None = None) -> np.ndarray:
        """Attention rollout [n, n] float64 of a stack through `layer` (default: its last): R = Â_layer ··· Â_0 with
        Â = 0.5·mean_h(A) + 0.5·I, rows renormalised, the earliest layer applied first. Row i is the share of
        position i's representation after that layer that comes from each input token; rows sum to 1."""
        from ..analysis.rollout import attention_rollout, head_mean

        record = self.stack(stack)
        if record.signed:
            raise ValueError(
                f"stack {record.name!r} holds differences of attention; roll out each run's own stack "
                f"({' and '.join(map(repr, record.difference_of))}) and compare the results"
            )
        if record.query_side != record.key_side:
            raise ValueError(
                f"rollout follows attention from a sequence back to itself, and stack {record.name!r} reads "
                f"{record.query_side!r} queries against {record.key_side!r} keys; pick one of "
                f"{[name for name in self.recorded_stacks if self.stack(name).query_side == self.stack(name).key_side]}"
            )
        last = record.num_layers - 1 if layer is None else layer
        self._layer(last, record.name)  # an out-of-range layer is refused before anything is computed
        means = (
            head_mean(self.head_attention(index, head, record.name) for head in range(record.num_heads))
            for index in range(last + 1)
        )
        return attention_rollout(means)

    def has_value_weights(self, stack: str | None = None) -> bool:
        """Whether every layer of the stack holds what `value_weighted` needs (`why_no_value_weights` says why not)."""
        return self.why_no_value_weights(stack) is None

    def why_no_value_weights(self, stack: str | None = None) -> str | None:
        """None where the stack has value-weighted attention, else why not, in a sentence."""
        record = self.stack(stack)
        if record.derivation is not None:
            return f"stack {record.name!r} is computed from stack {record.derivation.base!r}; ask that stack"
        if all(layer.value_norms is not None for layer in record.layers):
            return None
        return record.no_value_weights or (
            f"no values were recorded for stack {record.name!r}: captures built from attention tensors, and "
            "architectures attnwidget records through module hooks (docs/coverage.md), keep none"
        )

    def value_norms(self, layer: int, stack: str | None = None) -> np.ndarray:
        """‖f_h(x_j)‖ = ‖v_j W_O^h‖ of every query head h and key j, [heads, n_key] float32 (docs/analysis.md)"""
        reason = self.why_no_value_weights(stack)
        if reason is not None:
            raise ValueError(f"no value-weighted attention: {reason}; the raw attention is there as usual")
        return self._layer(layer, stack).value_norms

    def value_weighted(self, layer: int, head: int, stack: str | None = None) -> np.ndarray:
        """Value-weighted attention (Kobayashi et al. 2020) of one head, [n_query, n_key] float32: α_ij ‖f_h(x_j)‖,
        the length of what key j adds to query i's output through this head. Not normalised; no sink column
        (a learned sink has no value, so it adds nothing)."""
        norms = self.value_norms(layer, stack)
        return np.multiply(self.head_attention(layer, head, stack), norms[head], dtype=np.float32)

    def word_groups(self, side: str = "input"):
        """The words of a token side (`analysis.words.WordGroups`): from the tokenizer where the capture ran one,
        else from the tokens' markers."""
        from ..analysis.words import word_groups

        if side not in self._sides:
            raise KeyError(f"no token side {side!r}; this capture has {list(self._sides)}")
        tokens = self._sides[side]
        return word_groups(tokens.tokens, tokens.raw_tokens, tokens.special, tokens.word_of)

    def word_attention(self, layer: int, head: int, stack: str | None = None) -> np.ndarray:
        """One head's map at word level, [query words, key words] float64: a word's weight is the sum over its
        tokens, a word's row the mean of its tokens' rows, so rows keep their sums (1, or less with a sink)."""
        from ..analysis.words import word_attention

        record = self.stack(stack)
        attention = self.head_attention(layer, head, record.name)
        return word_attention(attention, self.word_groups(record.query_side), self.word_groups(record.key_side))

    # -- internals ------------------------------------------------------------------------
    def _layer(self, layer: int, stack: str | None) -> LayerRecord:
        record = self.stack(stack)
        if not 0 <= layer < record.num_layers:
            raise IndexError(f"layer {layer} is out of range; stack {record.name!r} has {record.num_layers} layers")
        return record.layers[layer]

    def _check_generation(self, generation: Generation) -> None:
        stack = self.stack(generation.stack)
        if stack.query_side != generation.side:
            raise ValueError(
                f"generation: stack {stack.name!r} reads queries of {stack.query_side!r}, not {generation.side!r}"
            )
        length = len(self._sides[generation.side])
        # The generated tokens end the side: the last one sits right after the last step's row.
        if generation.steps < 1 or generation.first_row < 0 or generation.row(generation.steps) != length - 1:
            raise ValueError(
                f"generation: {generation.steps} steps from row {generation.first_row} do not end the "
                f"{length} tokens of side {generation.side!r}"
            )

    def _check_stack(self, stack: StackRecord) -> None:
        base_name = stack.name.rpartition(RUN_SEPARATOR)[2]
        if stack.derivation is None and base_name not in STACK_NAMES:
            raise ValueError(
                f"unknown stack name {stack.name!r}; expected one of {STACK_NAMES}, or '<run>:<one of them>'"
            )
        for side in (stack.query_side, stack.key_side):
            if side not in self._sides:
                raise ValueError(f"stack {stack.name!r} refers to token side {side!r}, which is missing")
        if not stack.layers:
            raise ValueError(f"stack {stack.name!r} has no layers")
        n_query, n_key = len(self._sides[stack.query_side]), len(self._sides[stack.key_side])
        heads = stack.num_heads
        for index, layer in enumerate(stack.layers):
            expected = (heads, n_query, n_key)
            if layer.shape != expected:
                raise ValueError(
                    f"stack {stack.name!r} layer {index}: attention shape {layer.shape} does not match "
                    f"{heads} heads x {n_query} query tokens x {n_key} key tokens"
                )
            if layer.sinks is not None and np.shape(layer.sinks) not in ((heads,), (heads, n_query)):
                raise ValueError(
                    f"stack {stack.name!r} layer {index}: sinks of shape {np.shape(layer.sinks)} are neither one "
                    f"per head ({heads},) nor one per head and query ({heads}, {n_query})"
                )

"""Build a `Capture` from attention tensors the user already has.

For attention from `model(..., output_attentions=True)` or from anywhere else: BertViz-style
tuples of per-layer `(batch, heads, n, n)` tensors, one stacked array, or nested lists.
Everything is checked before anything is built, and every complaint names the layer, the
shape seen and the shape expected. Inputs are copied, never modified.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .result import Capture, LayerRecord, StackRecord, TokenSide
from .tokens import is_special_token, readable_tokens

# Rows of softmax output sum to 1 up to rounding; bfloat16 keeps about 3 significant
# digits per value, so its rows can be off by a few thousandths.
ROW_SUM_TOLERANCE = 0.02
VALUE_TOLERANCE = 1e-4


def capture_from_attention(
    attention: Any = None,
    tokens: Sequence[str] | None = None,
    *,
    sentence_b_start: int | None = None,
    encoder_attention: Any = None,
    decoder_attention: Any = None,
    cross_attention: Any = None,
    encoder_tokens: Sequence[str] | None = None,
    decoder_tokens: Sequence[str] | None = None,
    row: int | None = None,
    probabilities: bool = True,
) -> Capture:
    """A `Capture` of attention you already have, for `AttentionWidget.from_attention`.

    Either `attention` with `tokens` (one self-attention stack; `sentence_b_start` marks
    where the second sentence of a pair begins), or any of `encoder_attention`,
    `decoder_attention`, `cross_attention` with `encoder_tokens` and `decoder_tokens`.

    Attention may be a tuple/list with one entry per layer, each `[batch, heads, n_query, n_key]`
    or `[heads, n_query, n_key]`; or one array `[layers, heads, n, n]` or
    `[layers, batch, heads, n, n]`. Torch tensors (any float dtype, any device), numpy
    arrays and nested lists are accepted. `row` picks the batch row, and is required when there are
    several. With
    `probabilities=False` any finite values are allowed (e.g. pre-softmax scores).
    """
    _check_flags(row, probabilities)
    enc_dec_given = any(value is not None for value in (encoder_attention, decoder_attention, cross_attention))
    if attention is not None and enc_dec_given:
        raise ValueError(
            "pass either attention= (one self-attention stack) or encoder_attention/decoder_attention/"
            "cross_attention (an encoder-decoder), not both"
        )
    if enc_dec_given:
        if sentence_b_start is not None:
            raise ValueError("sentence_b_start applies to attention= with tokens=, not to encoder-decoder attention")
        return _encoder_decoder_capture(
            encoder_attention, decoder_attention, cross_attention, encoder_tokens, decoder_tokens, row, probabilities
        )
    if attention is None:
        raise ValueError(
            "no attention given: pass attention=outputs.attentions (from model(..., output_attentions=True)) "
            "with tokens=, or encoder_attention/decoder_attention/cross_attention for an encoder-decoder"
        )
    if encoder_tokens is not None or decoder_tokens is not None:
        raise ValueError("encoder_tokens/decoder_tokens go with encoder/decoder/cross attention; pass tokens= instead")
    side = _token_side("input", tokens, "tokens", sentence_b_start)
    positions = _Positions(len(side), len(side), "tokens", "tokens")
    layers = _layers(attention, "attention", positions, row, probabilities)
    return Capture([side], [StackRecord("self", "input", "input", layers)])


def _encoder_decoder_capture(
    encoder_attention, decoder_attention, cross_attention, encoder_tokens, decoder_tokens, row, probabilities
) -> Capture:
    if encoder_tokens is None:
        raise ValueError(
            "encoder-decoder attention needs encoder_tokens= (the input tokens) as well as decoder_tokens=; "
            "for a decoder on its own pass attention= and tokens= instead"
        )
    if decoder_tokens is None and (decoder_attention is not None or cross_attention is not None):
        raise ValueError("decoder and cross attention need decoder_tokens= (the tokens the decoder read)")
    sides = {"input": _token_side("input", encoder_tokens, "encoder_tokens")}
    if decoder_tokens is not None:
        sides["decoder"] = _token_side("decoder", decoder_tokens, "decoder_tokens")
    argument_of = {"input": "encoder_tokens", "decoder": "decoder_tokens"}
    stacks = []
    for name, given, query_side, key_side in (
        ("encoder", encoder_attention, "input", "input"),
        ("decoder", decoder_attention, "decoder", "decoder"),
        ("cross", cross_attention, "decoder", "input"),
    ):
        if given is not None:
            positions = _Positions(
                len(sides[query_side]), len(sides[key_side]), argument_of[query_side], argument_of[key_side]
            )
            layers = _layers(given, f"{name}_attention", positions, row, probabilities)
            stacks.append(StackRecord(name, query_side, key_side, layers))
    return Capture(list(sides.values()), stacks)


def _check_flags(row: object, probabilities: object) -> None:
    if row is not None:  # None: the only batch row, checked against each layer
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)):
            raise TypeError(f"row must be an int (the 0-based batch row to show), not {type(row).__name__} {row!r}")
        if row < 0:
            raise ValueError(f"row={row} is negative; pass the 0-based index of the batch row to show")
    if not isinstance(probabilities, (bool, np.bool_)):
        raise TypeError(f"probabilities must be True or False, got {type(probabilities).__name__}")


# -- tokens --------------------------------------------------------------------------------


def _token_side(name: str, tokens: object, argument: str, sentence_b_start: object = None) -> TokenSide:
    raw = _token_list(tokens, argument)
    n = len(raw)
    if sentence_b_start is not None:
        if isinstance(sentence_b_start, bool) or not isinstance(sentence_b_start, (int, np.integer)):
            raise TypeError(f"sentence_b_start must be an int token index, got {type(sentence_b_start).__name__}")
        if not 0 < sentence_b_start < n:
            raise ValueError(
                f"sentence_b_start={sentence_b_start} is outside 1..{n - 1} for {n} tokens; pass the index of "
                "the first token of the second sentence, or None for a single sentence"
            )
        sentence_b_start = int(sentence_b_start)
    return TokenSide(
        name=name,
        tokens=readable_tokens(raw),
        raw_tokens=raw,
        token_ids=[-1] * n,  # ids are unknown when only strings were given
        special=[is_special_token(token) for token in raw],
        segment_b_start=sentence_b_start,
    )


def _token_list(tokens: object, argument: str) -> list[str]:
    if tokens is None:
        raise ValueError(
            f"{argument} is missing: pass one string per position, "
            "e.g. tokenizer.convert_ids_to_tokens(inputs['input_ids'][0])"
        )
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"{argument} must be a list of strings, one per position, not a single {type(tokens).__name__}")
    try:
        items = list(tokens)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"{argument} must be a list of strings, got {type(tokens).__name__}") from None
    for index, token in enumerate(items):
        if not isinstance(token, str):
            raise TypeError(
                f"{argument}[{index}] is {type(token).__name__} {token!r}, not a string; pass token strings, "
                "e.g. tokenizer.convert_ids_to_tokens(ids), not ids"
            )
    if not items:
        raise ValueError(f"{argument} is empty; attention needs at least one token")
    return [str(token) for token in items]


# -- attention -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Positions:
    """The query and key lengths every layer must have, and the token arguments that set them."""

    n_query: int
    n_key: int
    query_tokens: str
    key_tokens: str

    def shape(self, heads: object = "heads") -> str:
        return f"({heads}, {self.n_query}, {self.n_key})"

    def token_counts(self) -> str:
        """e.g. "tokens has 11 tokens", or both arguments of cross-attention."""
        if self.query_tokens == self.key_tokens:
            return f"{self.query_tokens} has {self.n_query} tokens"
        return f"{self.query_tokens} has {self.n_query} and {self.key_tokens} has {self.n_key} tokens"


def _layers(
    given: object, argument: str, positions: _Positions, row: int | None, probabilities: bool
) -> list[LayerRecord]:
    layers: list[LayerRecord] = []
    heads = None
    for index, item in enumerate(_split_layers(given, argument, positions)):
        where = f"{argument} layer {index}"
        picked = _pick_row(_numeric_array(item, where), where, row, positions)
        values = np.array(picked, dtype=np.float32, copy=True)  # never a view of what the caller passed
        if values.shape[1:] != (positions.n_query, positions.n_key):
            raise ValueError(
                f"{where}: shape {values.shape} has {values.shape[1]} query x {values.shape[2]} key positions, but "
                f"{positions.token_counts()} (expected {positions.shape()}); pass the tokens the attention was "
                "computed for"
            )
        if heads is None:
            heads = values.shape[0]
            if heads == 0:
                raise ValueError(f"{where}: shape {values.shape} has no heads; pass attention with at least one head")
        if values.shape[0] != heads:
            raise ValueError(
                f"{where}: shape {values.shape} has {values.shape[0]} heads, but layer 0 has {heads} (expected "
                f"{positions.shape(heads)}); every layer of one stack needs the same number of heads"
            )
        _check_values(values, where, probabilities)
        layers.append(LayerRecord(attention=values))
    return layers


def _split_layers(given: object, argument: str, positions: _Positions) -> list[object]:
    """One entry per layer: a tuple/list is already per layer; an array is split on its first axis."""
    if isinstance(given, (list, tuple)):
        if not given:
            raise ValueError(
                f"{argument} is empty, and needs one attention tensor per layer. BertViz's `model(inputs)[-1]` "
                "gives an empty tuple in transformers 5: the last output of a model without cross-attention is "
                "its empty cross_attentions. Pass outputs.attentions instead, from "
                "`outputs = model(inputs, output_attentions=True)` (load the model with attn_implementation=\"eager\")"
            )
        return list(given)
    stacked = _numeric_array(given, argument)
    if stacked.ndim not in (4, 5):
        raise ValueError(
            f"{argument}: one array of shape {stacked.shape} ({stacked.ndim} dims); expected [layers, heads, "
            f"{positions.n_query}, {positions.n_key}] or [layers, batch, heads, {positions.n_query}, "
            f"{positions.n_key}], or a tuple with one "
            "[batch, heads, n, n] tensor per layer (as model(..., output_attentions=True) returns)"
        )
    if stacked.shape[0] == 0:
        raise ValueError(f"{argument}: shape {stacked.shape} has no layers")
    return list(stacked)


def _numeric_array(item: object, where: str) -> np.ndarray:
    """A real-valued numpy view or copy of a tensor, array or nested list (read, never written)."""
    if item is None:
        raise ValueError(f"{where} is None; the model returned no attention for it (was output_attentions=True?)")
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is already imported
    if torch is not None and isinstance(item, torch.Tensor):
        if item.is_complex():
            raise TypeError(f"{where}: complex tensor of shape {tuple(item.shape)}; attention must be real")
        item = item.detach().float().cpu().numpy()  # bfloat16 has no numpy dtype, so go through float32
    try:
        values = np.asarray(item)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{where}: nested lists of uneven lengths ({error}); every row needs n values") from None
    if values.dtype == object:
        raise ValueError(
            f"{where}: could not read {type(item).__name__} as an array of numbers (nested lists of uneven "
            "lengths, or values that are not numbers?); every row needs one number per key token"
        )
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise TypeError(
            f"{where}: values of dtype {values.dtype} with shape {values.shape}; attention must be real numbers"
        )
    return values


def _pick_row(values: np.ndarray, where: str, row: int | None, positions: _Positions) -> np.ndarray:
    if values.ndim == 3:
        if row not in (None, 0):
            raise ValueError(
                f"{where}: shape {values.shape} has no batch axis, so row={row} cannot be picked; use row=0"
            )
        return values
    if values.ndim != 4:
        raise ValueError(
            f"{where}: shape {values.shape} ({values.ndim} dims), expected (batch, heads, {positions.n_query}, "
            f"{positions.n_key}) or {positions.shape()}"
        )
    if row is None:
        if values.shape[0] != 1:
            raise ValueError(
                f"{where}: shape {values.shape} holds a batch of {values.shape[0]} rows and one is shown; pick it "
                f"with row=0..{values.shape[0] - 1} (or pass one row's attention, e.g. [a[i:i + 1] for a in "
                "attention])"
            )
        row = 0
    if row >= values.shape[0]:
        raise ValueError(
            f"{where}: row={row} is out of range for shape {values.shape} (batch of {values.shape[0]}); "
            f"pass row= between 0 and {values.shape[0] - 1}"
        )
    return values[row]


def _check_values(values: np.ndarray, where: str, probabilities: bool) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        head, query, key = (int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{where}: {int((~finite).sum())} values of shape {values.shape} are NaN or infinite, first at "
            f"head {head}, query {query}, key {key} ({values[head, query, key]}); pass finite attention "
            "(replace masked -inf scores with probabilities from a softmax)"
        )
    if not probabilities:
        return
    low, high = float(values.min()), float(values.max())
    if low < -VALUE_TOLERANCE or high > 1 + VALUE_TOLERANCE:
        raise ValueError(
            f"{where}: values of shape {values.shape} range from {low:.4g} to {high:.4g}, outside [0, 1]; "
            "pass softmax probabilities, or probabilities=False for scores"
        )
    sums = values.sum(axis=-1)
    # A query that may look at nothing (fully masked) legitimately has an all-zero row.
    bad = (np.abs(sums - 1) > ROW_SUM_TOLERANCE) & (sums > ROW_SUM_TOLERANCE)
    if bad.any():
        head, query = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{where}: rows of shape {values.shape} should each sum to 1, but head {head}, query {query} sums to "
            f"{sums[head, query]:.4g} ({int(bad.sum())} rows off); pass attention after the softmax, or "
            "probabilities=False if these values are not probabilities"
        )

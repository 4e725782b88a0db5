"""Induction and duplicate-token scores: the model run on a start token and a random sequence R repeated, R‖R.

On the second copy of R, query i reads the same token s positions back (i − s: its duplicate) and the token that
followed that duplicate (i − s + 1): an induction head attends there, predicting that what came next last time
comes next again. The model is run through `capture_ids`, which leaves it exactly as it was.
"""

from __future__ import annotations

import numpy as np

from ..capturing import resolve_tokenizer
from ..capturing.run import capture_ids, decoder_start_id, is_encoder_decoder
from .scores import scores_frame

REPEAT_SCORES = ("induction", "duplicate_token")


def repeat_scores(attention: np.ndarray, start: int, period: int) -> dict[str, float]:
    """(induction, duplicate_token) of one head's map over a sequence whose tokens start..start+period-1 are
    repeated at start+period..start+2·period-1: the means over the second copy of A[i, i − period + 1] and
    A[i, i − period]."""
    rows = np.arange(start + period, start + 2 * period)
    return {
        "induction": float(np.mean(attention[rows, rows - period + 1], dtype=np.float64)),
        "duplicate_token": float(np.mean(attention[rows, rows - period], dtype=np.float64)),
    }


def induction_scores(model, tokenizer=None, *, seq_len: int = 50, batches: int = 4, seed: int = 0):
    """A pandas DataFrame, one row per (stack, layer, head) and the columns `induction` and `duplicate_token`,
    each averaged over `batches` runs of the model on a start token then R‖R, R being `seq_len` distinct random
    tokens (no special ones), drawn with numpy's generator seeded by `seed`.

    The start token is the tokenizer's (or config's) BOS, else its CLS (BERT), else none. Decoder-only and
    encoder models score their one stack. Encoder-decoders read R‖R twice: the encoder gets it as its input,
    the decoder after its start token, and both stacks are scored; cross-attention is left out, since its
    queries and keys are different sequences and "the same token earlier" has no meaning there.
    """
    for name, value, least in (("seq_len", seq_len, 2), ("batches", batches, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer of at least {least}, not {value!r}")
    tokenizer = resolve_tokenizer(model) if tokenizer is None else tokenizer
    candidates = _ordinary_token_ids(model, tokenizer)
    if len(candidates) < seq_len:
        raise ValueError(
            f"seq_len={seq_len} needs that many distinct ordinary tokens, and this tokenizer has {len(candidates)}; "
            "pass a smaller seq_len"
        )
    prefix = _start_tokens(model, tokenizer)
    encoder_decoder = is_encoder_decoder(model)
    rng = np.random.default_rng(seed)
    sums: dict[tuple[str, int, int], np.ndarray] = {}
    for _ in range(batches):
        repeated = [int(token) for token in rng.choice(candidates, size=seq_len, replace=False)] * 2
        decoder = [decoder_start_id(model), *repeated] if encoder_decoder else None
        result = capture_ids(model, tokenizer, prefix + repeated, decoder_input_ids=decoder, progress=False)
        for stack in result.stacks:
            record = result.stack(stack)
            if record.query_side != record.key_side:
                continue
            start = 1 if record.query_side == "decoder" else len(prefix)
            for layer in range(record.num_layers):
                for head in range(record.num_heads):
                    scores = repeat_scores(result.head_attention(layer, head, stack), start, seq_len)
                    key = (stack, layer, head)
                    sums[key] = sums.get(key, 0) + np.array([scores[name] for name in REPEAT_SCORES])
    rows = [
        {"stack": stack, "layer": layer, "head": head, **dict(zip(REPEAT_SCORES, total / batches))}
        for (stack, layer, head), total in sums.items()
    ]
    return scores_frame(rows, REPEAT_SCORES)


def _ordinary_token_ids(model, tokenizer) -> np.ndarray:
    """Ids the model embeds and the tokenizer has, without special or added tokens."""
    size = min(len(tokenizer), model.get_input_embeddings().num_embeddings)
    excluded = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    return np.array([token_id for token_id in range(size) if token_id not in excluded])


def _start_tokens(model, tokenizer) -> list[int]:
    for token_id in (
        getattr(tokenizer, "bos_token_id", None),
        getattr(model.config, "bos_token_id", None),
        getattr(tokenizer, "cls_token_id", None),
    ):
        if isinstance(token_id, int):
            return [token_id]
    return []


"""Encoder-decoder attention from before the AttentionInterface: BART's (kept by MVP, TrOCR, XGLM and LED's
decoder) and fairseq's (FSMT)."""

from __future__ import annotations

import torch
from torch import nn

from .parts import arguments, asked_for_weights, keep_outputs, watch_asked_with_projections


def _watch_bart_style(modules: list[nn.Module], recorder) -> list:
    """BART's attention before the interface, kept by MVP, TrOCR, XGLM and LED's decoder: queries scaled before the
    product, plus the mask; cross-attention projects the encoder's states (`key_value_states`) to keys."""

    def terms(attention, given, query, key):
        return query, key, given.get("attention_mask"), attention.scaling, None

    def projections_of(attention):
        return attention.q_proj, attention.k_proj

    return watch_asked_with_projections(modules, recorder, projections_of, terms)


def _watch_fsmt(modules: list[nn.Module], recorder) -> list:
    """FSMT keeps fairseq's [seq, batch, dim] layout: queries scaled before the product, the decoder's additive
    causal `attn_mask` [n, n], and padding as a `key_padding_mask` [batch, n_key] that is True where padded."""
    handles = asked_for_weights(modules)
    kept = keep_outputs([linear for attention in modules for linear in (attention.q_proj, attention.k_proj)], handles)
    # Every layer gets the same masks: broadcast each once, so the recorder converts it once. The source stays
    # referenced here, so its id cannot be reused by another tensor during the capture.
    broadcast: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def once(mask: torch.Tensor, shape) -> torch.Tensor:
        if id(mask) not in broadcast:
            broadcast[id(mask)] = (mask, shape(mask))
        return broadcast[id(mask)][1]

    def record(attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        query, key = (
            kept.pop(id(linear)).unflatten(-1, (attention.num_heads, -1)).permute(1, 2, 0, 3)
            for linear in (attention.q_proj, attention.k_proj)
        )
        padding, causal = given.get("key_padding_mask"), given.get("attn_mask")
        attend = None if padding is None or padding.dim() == 0 else once(padding, lambda m: ~m[:, None, None, :])
        bias = None if causal is None else once(causal, lambda m: m[None, None])
        recorder.record(attention, query, key, output[1], attend, attention.scaling, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


WATCHERS = {
    "modeling_mvp.MvpAttention": _watch_bart_style,
    "modeling_trocr.TrOCRAttention": _watch_bart_style,
    "modeling_led.LEDDecoderAttention": _watch_bart_style,
    "modeling_xglm.XGLMAttention": _watch_bart_style,
    "modeling_fsmt.Attention": _watch_fsmt,
}

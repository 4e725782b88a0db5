"""XLNet's relative attention (Transformer-XL's, with segments): three terms before one softmax, in XLNet's own
[query, key, batch, head] layout.

Each score is (content + position + segment) × scale. The content term is the query plus its bias `r_w_bias`
against the key: that is the recorded query and key. The position term (the query plus `r_r_bias` against the
encoded relative distance, shifted into place) and the segment term (the query plus `r_s_bias` against "same
segment or not") depend on the pair of positions, so both go into the bias, scaled as the module scales them.
"""

from __future__ import annotations

import torch
from torch import nn

from .parts import arguments, asked_for_weights


def _by_head(tensor: torch.Tensor) -> torch.Tensor:
    """XLNet's [n, batch, heads, ...] as [batch, heads, n, ...]."""
    return tensor.permute(1, 2, 0, 3)


def _watch_xlnet(modules: list[nn.Module], recorder) -> list:
    """Records the content stream, the attention over the tokens that `output_attentions` returns. (The query
    stream and the memory of earlier segments come only with `target_mapping` and `mems`, which capture never
    passes.)"""

    def record(attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        hidden = given["h"]
        query = torch.einsum("ibh,hnd->ibnd", hidden, attention.q)
        key = torch.einsum("ibh,hnd->ibnd", hidden, attention.k)
        distance = torch.einsum("ibh,hnd->ibnd", given["r"].to(attention.r.dtype), attention.r)
        position = torch.einsum("ibnd,jbnd->bnij", query + attention.r_r_bias, distance)
        terms = attention.rel_shift_bnij(position, klen=key.shape[0])
        segments = given.get("seg_mat")  # [i, j, batch, 2]: one-hot of "i and j are in different segments"
        if segments is not None:
            per_segment = torch.einsum("ibnd,snd->ibns", query + attention.r_s_bias, attention.seg_embed)
            terms = terms + torch.einsum("ijbs,ibns->bnij", segments, per_segment)
        mask = given.get("attn_mask_h")  # [i, j, batch, 1], 1 where masked
        attend = None if mask is None else mask.permute(2, 3, 0, 1) == 0
        recorder.record(
            attention,
            _by_head(query + attention.r_w_bias),
            _by_head(key),
            output[2].permute(2, 3, 0, 1),
            attend,
            attention.scale,
            terms * attention.scale,
        )

    handles = asked_for_weights(modules)
    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


WATCHERS = {"modeling_xlnet.XLNetRelativeAttention": _watch_xlnet}

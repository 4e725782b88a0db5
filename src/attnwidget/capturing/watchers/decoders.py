"""Decoders that compute attention in their own modules: BLOOM, GPT-Neo, MPT and Falcon (ALiBi, local windows,
fused projections)."""

from __future__ import annotations

import math
import sys

import torch
from torch import nn

from .parts import keep_outputs, arguments


def _watch_bloom(modules: list[nn.Module], recorder) -> list:
    """BLOOM adds ALiBi (beta * alibi, one slope per head) to the scaled scores, then the mask."""
    handles: list = []
    fused_of = keep_outputs([attention.query_key_value for attention in modules], handles)
    alibi_views: dict[int, tuple] = {}  # every layer gets the same alibi: convert it once

    def record(attention, args, kwargs, output):
        query, key, _ = attention._reshape(fused_of.pop(id(attention.query_key_value)))
        alibi = kwargs["alibi"]
        if id(alibi) not in alibi_views:
            batch, heads = query.shape[:2]
            alibi_views[id(alibi)] = (alibi, attention.beta * alibi.view(batch, heads, 1, -1))
        bias = alibi_views[id(alibi)][1]
        recorder.record(attention, query, key, output[1], kwargs.get("attention_mask"), attention.inv_norm_factor, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_gpt_neo(modules: list[nn.Module], recorder) -> list:
    """GPT-Neo does not scale its scores and masks with its own causal (or local window) buffer first."""
    handles: list = []
    projections = keep_outputs([linear for a in modules for linear in (a.q_proj, a.k_proj)], handles)
    windows: dict[tuple, torch.Tensor] = {}  # one additive window per layer type and length, shared

    def record(attention, args, kwargs, output):
        query, key = (
            attention._split_heads(projections.pop(id(linear)), attention.num_heads, attention.head_dim)
            for linear in (attention.q_proj, attention.k_proj)
        )
        n_query, n_key = query.shape[-2], key.shape[-2]
        shape = (attention.attention_type, n_query, n_key)
        if shape not in windows:
            allowed = attention.bias[:, :, n_key - n_query : n_key, :n_key].to("cpu")
            windows[shape] = torch.zeros(allowed.shape).masked_fill(~allowed, -math.inf)
        recorder.record(attention, query, key, output[1], kwargs.get("attention_mask"), 1.0, windows[shape])

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_mpt(modules: list[nn.Module], recorder) -> list:
    """MPT adds ALiBi (its position_bias, one slope per head) to the scaled scores; its mask is True where masked."""
    handles: list = []
    fused_of = keep_outputs([attention.Wqkv for attention in modules], handles)

    def record(attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        fused = fused_of.pop(id(attention.Wqkv))
        if attention.clip_qkv:
            fused = fused.clamp(min=-attention.clip_qkv, max=attention.clip_qkv)
        batch, n = fused.shape[:2]
        query, key = (
            states.reshape(batch, n, attention.n_heads, attention.head_dim).transpose(1, 2)
            for states in fused.chunk(3, dim=2)[:2]
        )
        bias, mask = given.get("position_bias"), given.get("attention_mask")
        if bias is not None:  # [heads, 1 or n, longest], cut to the last n keys as the module does
            bias = bias[None, :, max(0, bias.size(1) - n) :, max(0, bias.size(2) - n) :]
        attend = None if mask is None else ~mask
        recorder.record(attention, query, key, output[1], attend, attention.softmax_scale, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_falcon(modules: list[nn.Module], recorder) -> list:
    """Falcon: rotary queries and keys scaled by 1/sqrt(head_dim), or BLOOM's ALiBi added before the scale."""
    handles: list = []
    fused_of = keep_outputs([attention.query_key_value for attention in modules], handles)

    def record(attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        query, key, _ = attention._split_heads(fused_of.pop(id(attention.query_key_value)))
        batch, n, _, head_dim = query.shape
        kv_heads = attention.num_heads if attention.new_decoder_architecture else attention.num_kv_heads
        query = query.transpose(1, 2).reshape(batch, attention.num_heads, n, head_dim)
        key = key.transpose(1, 2).reshape(batch, kv_heads, n, head_dim)
        alibi = given.get("alibi")
        if alibi is None:
            cos, sin = given["position_embeddings"]
            query, key = sys.modules[type(attention).__module__].apply_rotary_pos_emb(query, key, cos, sin)
            scaling, bias = 1 / math.sqrt(head_dim), None
        else:
            scaling = attention.inv_norm_factor
            bias = alibi.view(batch, attention.num_heads, 1, -1) * scaling
        recorder.record(attention, query, key, output[1], given.get("attention_mask"), scaling, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


WATCHERS = {
    "modeling_bloom.BloomAttention": _watch_bloom,
    "modeling_gpt_neo.GPTNeoSelfAttention": _watch_gpt_neo,
    "modeling_falcon.FalconAttention": _watch_falcon,
    "modeling_mpt.MptAttention": _watch_mpt,
}

"""Decoders that compute attention in their own modules: BLOOM, GPT-Neo, MPT, Falcon, OpenAI GPT,
GPT-NeoX-Japanese and CPM-Ant (ALiBi, local windows, causal buffers of their own, fused projections, partial
rotary, a prompt the model prepends)."""

from __future__ import annotations

import functools
import math
import sys

import torch
from torch import nn

from ..result import Sink
from .parts import arguments, asked_for_weights, keep_outputs, watch_fused


def _blocked(allowed: torch.Tensor) -> torch.Tensor:
    """A module's own causal buffer (nonzero where a key may be seen) as an additive term: -inf elsewhere."""
    allowed = allowed.to("cpu").bool()
    return torch.zeros(allowed.shape).masked_fill(~allowed, -math.inf)


def _watch_bloom(modules: list[nn.Module], recorder) -> list:
    """BLOOM adds ALiBi (beta * alibi, one slope per head) to the scaled scores, then the mask."""
    alibi_views: dict[int, tuple] = {}  # every layer gets the same alibi: convert it once

    def terms(attention, given, fused):
        query, key, _ = attention._reshape(fused)
        alibi = given["alibi"]
        if id(alibi) not in alibi_views:
            batch, heads = query.shape[:2]
            alibi_views[id(alibi)] = (alibi, attention.beta * alibi.view(batch, heads, 1, -1))
        return query, key, given.get("attention_mask"), attention.inv_norm_factor, alibi_views[id(alibi)][1]

    return watch_fused(modules, recorder, lambda attention: attention.query_key_value, terms)


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
            windows[shape] = _blocked(attention.bias[:, :, n_key - n_query : n_key, :n_key])
        recorder.record(attention, query, key, output[1], kwargs.get("attention_mask"), 1.0, windows[shape])

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_mpt(modules: list[nn.Module], recorder) -> list:
    """MPT adds ALiBi (its position_bias, one slope per head) to the scaled scores; its mask is True where masked."""

    def terms(attention, given, fused):
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
        return query, key, None if mask is None else ~mask, attention.softmax_scale, bias

    return watch_fused(modules, recorder, lambda attention: attention.Wqkv, terms)


def _watch_falcon(modules: list[nn.Module], recorder) -> list:
    """Falcon: rotary queries and keys scaled by 1/sqrt(head_dim), or BLOOM's ALiBi added before the scale."""

    def terms(attention, given, fused):
        query, key, _ = attention._split_heads(fused)
        batch, n, _, head_dim = query.shape
        kv_heads = attention.num_heads if attention.new_decoder_architecture else attention.num_kv_heads
        query = query.transpose(1, 2).reshape(batch, attention.num_heads, n, head_dim)
        key = key.transpose(1, 2).reshape(batch, kv_heads, n, head_dim)
        alibi = given.get("alibi")
        if alibi is None:
            cos, sin = given["position_embeddings"]
            query, key = sys.modules[type(attention).__module__].apply_rotary_pos_emb(query, key, cos, sin)
            return query, key, given.get("attention_mask"), 1 / math.sqrt(head_dim), None
        scaling = attention.inv_norm_factor
        return query, key, given.get("attention_mask"), scaling, alibi.view(batch, attention.num_heads, 1, -1) * scaling

    return watch_fused(modules, recorder, lambda attention: attention.query_key_value, terms)


def _watch_openai_gpt(modules: list[nn.Module], recorder) -> list:
    """OpenAI GPT scales only when built with `scale`, and blocks later keys with its own causal buffer
    (-1e4 there, which the softmax turns into exactly 0, as -inf does) before adding the padding mask."""
    handles = asked_for_weights(modules)
    fused_of = keep_outputs([attention.c_attn for attention in modules], handles)
    causal: dict[int, torch.Tensor] = {}  # one per length, shared by every layer

    def record(attention, args, kwargs, output):
        fused = fused_of.pop(id(attention.c_attn))
        query, key = (attention.split_heads(states) for states in fused.split(attention.split_size, dim=2)[:2])
        n = query.shape[-2]
        if n not in causal:
            causal[n] = _blocked(attention.bias[:, :, :n, :n])
        scaling = query.shape[-1] ** -0.5 if attention.scale else 1.0
        mask = arguments(attention, args, kwargs).get("attention_mask")
        recorder.record(attention, query, key, output[1], mask, scaling, causal[n])

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_gpt_neox_japanese(modules: list[nn.Module], recorder) -> list:
    """GPT-NeoX-Japanese: one fused projection with each head's query, key and value side by side, rotary on the
    first `rotary_ndims` of each head, scores divided by sqrt(head_size), plus the causal mask."""
    handles: list = []
    fused_of = keep_outputs([attention.query_key_value for attention in modules], handles)

    def record(attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        fused = fused_of.pop(id(attention.query_key_value)).unflatten(-1, (attention.num_attention_heads, -1))
        query, key = (part.transpose(1, 2) for part in fused.split(attention.head_size, dim=-1)[:2])
        rotary = attention.rotary_ndims
        cos, sin = given["position_embeddings"]
        rotate = sys.modules[type(attention).__module__].apply_rotary_pos_emb
        rotated = rotate(query[..., :rotary], key[..., :rotary], cos, sin)
        query, key = (
            torch.cat((turned, states[..., rotary:]), dim=-1) for turned, states in zip(rotated, (query, key))
        )
        scaling = 1 / attention.norm_factor
        recorder.record(attention, query, key, output[1], given.get("attention_mask"), scaling, None)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_cpmant(models: list[nn.Module], recorder) -> list:
    """CPM-Ant puts `prompt_length` prompt positions before the text and its eager maps leave them out, so each row
    of a map sums to what the text got, less than 1. The prompt becomes the sink: per head and query, the
    log-sum-exp of that query's prompt logits, so that softmax over the text keys and the sink gives the model's
    weights exactly, and the sink's weight is the row's share of the prompt. The scores are q.k / sqrt(dim_head)
    plus its segment and position bias, and its boolean mask."""
    handles: list = []
    own = sys.modules[type(models[0]).__module__].CpmAntAttention
    attentions = {model: [m for m in model.modules() if isinstance(m, own)] for model in models}
    handles += asked_for_weights([attention for layers in attentions.values() for attention in layers])
    projections = [linear for layers in attentions.values() for a in layers for linear in (a.project_q, a.project_k)]
    kept = keep_outputs(projections, handles)

    def record(prompt: int, attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        query, key = (
            kept.pop(id(linear)).unflatten(-1, (attention.num_heads, -1)).transpose(1, 2)
            for linear in (attention.project_q, attention.project_k)
        )
        scaling = 1 / math.sqrt(attention.dim_head)
        allowed = given["attention_mask"][:, None].bool()
        scores = (query @ key.transpose(-1, -2) * scaling + given["position_bias"]).masked_fill(~allowed, -math.inf)
        # -inf for a row that sees no prompt position.
        prompt_logits = torch.logsumexp(scores[..., prompt:, :prompt], dim=-1)
        sink = Sink("<prompt>", f"the {prompt} prompt positions CPM-Ant puts before the text")
        recorder.record(
            attention, query[:, :, prompt:], key[:, :, prompt:], output[1][..., prompt:, prompt:],
            allowed[..., prompt:, prompt:], scaling, given["position_bias"][..., prompt:, prompt:],
            sinks=prompt_logits, sink=sink,
        )  # fmt: skip

    return handles + [
        attention.register_forward_hook(functools.partial(record, model.prompt_length), with_kwargs=True)
        for model, layers in attentions.items()
        for attention in layers
    ]


WATCHERS = {
    "modeling_bloom.BloomAttention": _watch_bloom,
    "modeling_gpt_neo.GPTNeoSelfAttention": _watch_gpt_neo,
    "modeling_falcon.FalconAttention": _watch_falcon,
    "modeling_mpt.MptAttention": _watch_mpt,
    "modeling_openai.Attention": _watch_openai_gpt,
    "modeling_gpt_neox_japanese.GPTNeoXJapaneseAttention": _watch_gpt_neox_japanese,
    "modeling_cpmant.CpmAntModel": _watch_cpmant,  # its attention modules do not know the prompt's length
}

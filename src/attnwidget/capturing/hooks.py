"""Architectures that compute attention inside their own modules, recorded with forward hooks.

Most architectures call a function from transformers' AttentionInterface, which `record.py`
replaces for the call. The few listed here never do, so their attention modules get forward
hooks for the duration of the capture instead; the hooks read what the module itself computed
(its weights, its projections' outputs) or recompute the queries and keys with the module's own
layers, and every additive term the module puts before its softmax goes into the bias.
docs/coverage.md lists the architectures that remain refused.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
from typing import Callable, Iterator

import torch
from torch import nn


def _keep_outputs(linears: list[nn.Module], handles: list) -> dict[int, object]:
    """The latest output of each projection, by id, filled by forward hooks added to `handles`."""
    outputs: dict[int, object] = {}

    def keep(linear, args, output):
        outputs[id(linear)] = output

    handles += [linear.register_forward_hook(keep) for linear in linears]
    return outputs


def _pop_heads(outputs: dict[int, object], linears: tuple, head_dim: int) -> list[torch.Tensor]:
    """The kept outputs of these projections, taken out, as [batch, heads, n, head_dim]."""
    return [outputs.pop(id(linear)).unflatten(-1, (-1, head_dim)).transpose(1, 2) for linear in linears]


def _arguments(module: nn.Module, args: tuple, kwargs: dict) -> dict:
    """A module's call arguments by name, however the caller passed them."""
    return inspect.signature(module.forward).bind(*args, **kwargs).arguments


def _watch_bloom(modules: list[nn.Module], recorder) -> list:
    """BLOOM adds ALiBi (beta * alibi, one slope per head) to the scaled scores, then the mask."""
    handles: list = []
    fused_of = _keep_outputs([attention.query_key_value for attention in modules], handles)
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
    projections = _keep_outputs([linear for a in modules for linear in (a.q_proj, a.k_proj)], handles)
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


def _watch_deberta_v2(modules: list[nn.Module], recorder) -> list:
    """DeBERTa-v2 adds its disentangled relative-position terms (content-to-position and position-to-content)
    to the scaled scores: they are the bias."""

    def record(attention, args, kwargs, output):
        given = _arguments(attention, args, kwargs)
        hidden, mask = given["hidden_states"], given["attention_mask"]
        queries_from = hidden if given.get("query_states") is None else given["query_states"]
        query, key = (
            attention.transpose_for_scores(linear(source), attention.num_attention_heads)
            for linear, source in ((attention.query_proj, queries_from), (attention.key_proj, hidden))
        )  # [batch * heads, n, head_dim], as the module computes them
        scale_factor = 1 + sum(kind in attention.pos_att_type for kind in ("c2p", "p2c"))
        relative = None
        if attention.relative_attention:
            relative = attention.disentangled_attention_bias(
                query, key, given.get("relative_pos"), attention.pos_dropout(given["rel_embeddings"]), scale_factor
            )
        batch, heads = hidden.shape[0], attention.num_attention_heads

        def per_head(tensor):
            return None if tensor is None else tensor.view(batch, heads, *tensor.shape[1:])

        scaling = 1.0 / math.sqrt(query.shape[-1] * scale_factor)
        recorder.record(attention, per_head(query), per_head(key), output[1], mask.bool(), scaling, per_head(relative))

    handles = _asked_for_weights(modules)
    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_mpnet(modules: list[nn.Module], recorder) -> list:
    """MPNet adds its relative position bias (computed once by the encoder) to the scaled scores, then the mask."""

    def terms(attention, given, query, key):
        scaling = 1 / math.sqrt(attention.attention_head_size)
        return query, key, given.get("attention_mask"), scaling, given.get("position_bias")

    return _watch_asked_with_projections(modules, recorder, lambda attention: (attention.q, attention.k), terms)


def _watch_mpt(modules: list[nn.Module], recorder) -> list:
    """MPT adds ALiBi (its position_bias, one slope per head) to the scaled scores; its mask is True where masked."""
    handles: list = []
    fused_of = _keep_outputs([attention.Wqkv for attention in modules], handles)

    def record(attention, args, kwargs, output):
        given = _arguments(attention, args, kwargs)
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


def _watch_roformer(modules: list[nn.Module], recorder) -> list:
    """RoFormer rotates its self-attention queries and keys with sinusoidal positions inside the module."""

    def terms(attention, given, query, key):
        positions = given.get("sinusoidal_pos")
        if given.get("encoder_hidden_states") is None and positions is not None:
            query, key = attention.apply_rotary_position_embeddings(positions, query, key)
        return query, key, given.get("attention_mask"), 1 / math.sqrt(attention.attention_head_size), None

    return _watch_asked_with_projections(modules, recorder, lambda attention: (attention.query, attention.key), terms)


def _watch_bert_style(modules: list[nn.Module], recorder) -> list:
    """BERT's eager self-attention, kept in modules of their own (RemBERT, Megatron-BERT): the scaled scores
    plus the mask; cross-attention reads the encoder's mask."""

    def terms(attention, given, query, key):
        cross = given.get("encoder_hidden_states") is not None
        mask = given.get("encoder_attention_mask") if cross else given.get("attention_mask")
        return query, key, mask, 1 / math.sqrt(attention.attention_head_size), None

    return _watch_asked_with_projections(modules, recorder, lambda attention: (attention.query, attention.key), terms)


def _watch_bart_style(modules: list[nn.Module], recorder) -> list:
    """BART's attention before the interface, kept by MVP and TrOCR: queries scaled before the product, plus
    the mask; cross-attention projects the encoder's states (`key_value_states`) to keys."""

    def terms(attention, given, query, key):
        return query, key, given.get("attention_mask"), attention.scaling, None

    def projections_of(attention):
        return attention.q_proj, attention.k_proj

    return _watch_asked_with_projections(modules, recorder, projections_of, terms)


def _watch_asked_with_projections(modules: list[nn.Module], recorder, projections_of, terms) -> list:
    """BERT-style modules that return their weights only when asked, with their own query and key projections:
    `terms(module, arguments, query, key)` gives (query, key, mask, scaling, bias) as the module scores them."""
    handles = _asked_for_weights(modules)
    kept = _keep_outputs([linear for module in modules for linear in projections_of(module)], handles)

    def record(attention, args, kwargs, output):
        head_dim = getattr(attention, "attention_head_size", None) or attention.head_dim  # BERT's name, BART's
        query, key = _pop_heads(kept, projections_of(attention), head_dim)
        query, key, mask, scaling, bias = terms(attention, _arguments(attention, args, kwargs), query, key)
        recorder.record(attention, query, key, output[1], mask, scaling, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _asked_for_weights(modules: list[nn.Module]) -> list:
    """Pre-hooks that pass output_attentions=True: these modules return their weights only when asked. Their
    callers pass the extra output along unread unless the user asked for attentions too."""

    def ask(attention, args, kwargs):
        given = inspect.signature(attention.forward).bind(*args, **kwargs)  # by name, wherever it was passed
        given.arguments["output_attentions"] = True
        return given.args, given.kwargs

    return [attention.register_forward_pre_hook(ask, with_kwargs=True) for attention in modules]


def _watch_falcon(modules: list[nn.Module], recorder) -> list:
    """Falcon: rotary queries and keys scaled by 1/sqrt(head_dim), or BLOOM's ALiBi added before the scale."""
    handles: list = []
    fused_of = _keep_outputs([attention.query_key_value for attention in modules], handles)

    def record(attention, args, kwargs, output):
        given = _arguments(attention, args, kwargs)
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


# By the modeling file and class name: DeBERTa and DeBERTa-v2 both name theirs DisentangledSelfAttention.
_WATCHERS: dict[str, Callable[[list[nn.Module], object], list]] = {
    "modeling_bloom.BloomAttention": _watch_bloom,
    "modeling_gpt_neo.GPTNeoSelfAttention": _watch_gpt_neo,
    "modeling_deberta_v2.DisentangledSelfAttention": _watch_deberta_v2,
    "modeling_falcon.FalconAttention": _watch_falcon,
    "modeling_mpnet.MPNetSelfAttention": _watch_mpnet,
    "modeling_mpt.MptAttention": _watch_mpt,
    "modeling_roformer.RoFormerSelfAttention": _watch_roformer,
    "modeling_rembert.RemBertSelfAttention": _watch_bert_style,
    "modeling_megatron_bert.MegatronBertSelfAttention": _watch_bert_style,
    "modeling_mvp.MvpAttention": _watch_bart_style,
    "modeling_trocr.TrOCRAttention": _watch_bart_style,
}


def _watcher_name(module: nn.Module) -> str:
    return f"{type(module).__module__.rsplit('.', 1)[-1]}.{type(module).__name__}"


@contextlib.contextmanager
def watched(model: nn.Module, recorder) -> Iterator[None]:
    """Hook the attention modules of the architectures above; remove every hook afterwards."""
    by_class: dict[str, list[nn.Module]] = {}
    for module in model.modules():
        if _watcher_name(module) in _WATCHERS:
            by_class.setdefault(_watcher_name(module), []).append(module)
    handles = []
    try:
        for name, modules in by_class.items():
            handles += _WATCHERS[name](modules, recorder)
        yield
    finally:
        for handle in handles:
            handle.remove()

"""Encoders with BERT-like attention in their own modules: DeBERTa-v2 (disentangled relative positions), MPNet
(relative bias), RoFormer (rotary), and plain BERT attention kept by RemBERT and Megatron-BERT."""

from __future__ import annotations

import math

from torch import nn

from .parts import arguments, asked_for_weights, watch_asked_with_projections


def _watch_deberta_v2(modules: list[nn.Module], recorder) -> list:
    """DeBERTa-v2 adds its disentangled relative-position terms (content-to-position and position-to-content)
    to the scaled scores: they are the bias."""

    def record(attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
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

    handles = asked_for_weights(modules)
    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_mpnet(modules: list[nn.Module], recorder) -> list:
    """MPNet adds its relative position bias (computed once by the encoder) to the scaled scores, then the mask."""

    def terms(attention, given, query, key):
        scaling = 1 / math.sqrt(attention.attention_head_size)
        return query, key, given.get("attention_mask"), scaling, given.get("position_bias")

    return watch_asked_with_projections(modules, recorder, lambda attention: (attention.q, attention.k), terms)


def _watch_roformer(modules: list[nn.Module], recorder) -> list:
    """RoFormer rotates its self-attention queries and keys with sinusoidal positions inside the module."""

    def terms(attention, given, query, key):
        positions = given.get("sinusoidal_pos")
        if given.get("encoder_hidden_states") is None and positions is not None:
            query, key = attention.apply_rotary_position_embeddings(positions, query, key)
        return query, key, given.get("attention_mask"), 1 / math.sqrt(attention.attention_head_size), None

    return watch_asked_with_projections(modules, recorder, lambda attention: (attention.query, attention.key), terms)


def _watch_bert_style(modules: list[nn.Module], recorder) -> list:
    """BERT's eager self-attention, kept in modules of their own (RemBERT, Megatron-BERT): the scaled scores
    plus the mask; cross-attention reads the encoder's mask."""

    def terms(attention, given, query, key):
        cross = given.get("encoder_hidden_states") is not None
        mask = given.get("encoder_attention_mask") if cross else given.get("attention_mask")
        return query, key, mask, 1 / math.sqrt(attention.attention_head_size), None

    return watch_asked_with_projections(modules, recorder, lambda attention: (attention.query, attention.key), terms)


WATCHERS = {
    "modeling_deberta_v2.DisentangledSelfAttention": _watch_deberta_v2,
    "modeling_mpnet.MPNetSelfAttention": _watch_mpnet,
    "modeling_roformer.RoFormerSelfAttention": _watch_roformer,
    "modeling_rembert.RemBertSelfAttention": _watch_bert_style,
    "modeling_megatron_bert.MegatronBertSelfAttention": _watch_bert_style,
}

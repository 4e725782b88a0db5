"""Encoders with BERT-like attention in their own modules: DeBERTa and DeBERTa-v2 (disentangled relative
positions), MPNet (relative bias), RoFormer (rotary), ConvBERT (the softmax half of its mixed attention),
SqueezeBERT (grouped convolutions), I-BERT (quantized layers), LUKE (words without entities), and plain BERT
attention kept by RemBERT and Megatron-BERT."""

from __future__ import annotations

import functools
import math

from torch import nn

from .parts import arguments, asked_for_weights, keep_outputs, watch_asked_with_projections


def _watch_disentangled(modules: list[nn.Module], recorder, terms) -> list:
    """DeBERTa's disentangled attention (both versions) adds its relative-position terms, content-to-position
    and position-to-content, to the scaled scores: they are the bias. `terms(module, arguments)` gives
    (query, key, scaling, relative terms or None) per head, as the module computes them."""
    for attention in modules:
        if getattr(attention, "head_logits_proj", None) is not None:
            raise ValueError(
                f"{type(attention).__name__} uses talking heads: it mixes the scores of all heads before the "
                "softmax and the weights after it, so no head's map is softmax(q·k) of its own query and key. "
                "To look at its attention anyway, load the model with attn_implementation='eager', run it with "
                "output_attentions=True and pass outputs.attentions to AttentionWidget.from_attention(attention, "
                "tokens)"
            )

    def record(attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        query, key, scaling, relative = terms(attention, given)
        recorder.record(attention, query, key, output[1], given["attention_mask"].bool(), scaling, relative)

    handles = asked_for_weights(modules)
    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _queries_from(given: dict):
    """The states DeBERTa projects to queries: its own input, or the query states it was given."""
    return given["hidden_states"] if given.get("query_states") is None else given["query_states"]


def _deberta_terms(attention, given):
    """DeBERTa v1 projects queries, keys and values with one fused matrix, head by head, adds a query bias,
    and computes its relative terms from the queries already divided by the scale."""

    def projected(source, part: int):  # part 0 of each head's slice is its query, 1 its key
        fused = nn.functional.linear(source, attention.in_proj.weight)
        return attention.transpose_for_scores(fused).chunk(3, dim=-1)[part]

    query = projected(_queries_from(given), 0) + attention.q_bias.view(attention.num_attention_heads, 1, -1)
    key = projected(given["hidden_states"], 1)
    scale_factor = 1 + len(attention.pos_att_type)
    scale = math.sqrt(query.shape[-1] * scale_factor)
    relative_pos, embeddings = given.get("relative_pos"), given.get("rel_embeddings")
    relative = None
    if attention.relative_attention and relative_pos is not None and embeddings is not None:
        relative = attention.disentangled_att_bias(
            query / scale, key, relative_pos, attention.pos_dropout(embeddings), scale_factor
        )
    return query, key, 1 / scale, relative


def _deberta_v2_terms(attention, given):
    """DeBERTa-v2 keeps heads in the batch dimension ([batch * heads, n, head_dim]) and counts only the
    relative terms it uses in its scale."""
    heads = attention.num_attention_heads
    sources = ((attention.query_proj, _queries_from(given)), (attention.key_proj, given["hidden_states"]))
    query, key = (attention.transpose_for_scores(linear(source), heads) for linear, source in sources)
    scale_factor = 1 + sum(kind in attention.pos_att_type for kind in ("c2p", "p2c"))
    relative = None
    if attention.relative_attention:
        relative = attention.disentangled_attention_bias(
            query, key, given.get("relative_pos"), attention.pos_dropout(given["rel_embeddings"]), scale_factor
        )

    def per_head(tensor):
        return None if tensor is None else tensor.unflatten(0, (-1, heads))

    return per_head(query), per_head(key), 1.0 / math.sqrt(query.shape[-1] * scale_factor), per_head(relative)


def _scaled_plus_mask(attention, given, query, key):
    """BERT's scores: scaled by 1/sqrt(head_dim), plus the additive mask the module was given."""
    return query, key, given.get("attention_mask"), 1 / math.sqrt(attention.attention_head_size), None


def _query_and_key(attention):
    return attention.query, attention.key


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
        return _scaled_plus_mask(attention, given, query, key)

    return watch_asked_with_projections(modules, recorder, _query_and_key, terms)


def _watch_bert_style(modules: list[nn.Module], recorder) -> list:
    """BERT's eager self-attention, kept in modules of their own (RemBERT, Megatron-BERT): the scaled scores
    plus the mask; cross-attention reads the encoder's mask."""

    def terms(attention, given, query, key):
        cross = given.get("encoder_hidden_states") is not None
        mask = given.get("encoder_attention_mask") if cross else given.get("attention_mask")
        return query, key, mask, 1 / math.sqrt(attention.attention_head_size), None

    return watch_asked_with_projections(modules, recorder, _query_and_key, terms)


def _watch_convbert(modules: list[nn.Module], recorder) -> list:
    """ConvBERT's mixed attention: beside a span-based dynamic convolution (no attention map), a softmax
    self-attention over num_attention_heads / head_ratio heads; that softmax is recorded. Its cross-attention
    is given the encoder's mask as `attention_mask`."""
    return watch_asked_with_projections(modules, recorder, _query_and_key, _scaled_plus_mask)


def _watch_luke(modules: list[nn.Module], recorder) -> list:
    """LUKE's entity-aware self-attention over words only (capture passes no entities): BERT's attention,
    returned after the (absent) entities' states."""
    return watch_asked_with_projections(modules, recorder, _query_and_key, _scaled_plus_mask, weights_at=2)


def _watch_own_softmax(modules: list[nn.Module], recorder, projections_of, heads_of) -> list:
    """Modules that normalise through a softmax module of their own: its output is the weights, kept without
    asking the module to return them. `projections_of(module)` gives its query and key layers and
    `heads_of(module, output)` one's output as [batch, heads, n, head_dim]."""
    handles: list = []
    parts = [part for module in modules for part in (*projections_of(module), module.softmax)]
    kept = keep_outputs(parts, handles)

    def record(attention, args, kwargs, output):
        query, key = (heads_of(attention, kept.pop(id(layer))) for layer in projections_of(attention))
        weights = _first(kept.pop(id(attention.softmax)))
        mask = arguments(attention, args, kwargs).get("attention_mask")
        recorder.record(attention, query, key, weights, mask, 1 / math.sqrt(attention.attention_head_size), None)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _first(output):
    """I-BERT's layers return (values, scaling factor); the values are what the next step reads."""
    return output[0] if isinstance(output, tuple) else output


def _watch_squeezebert(modules: list[nn.Module], recorder) -> list:
    """SqueezeBERT projects with grouped 1x1 convolutions over [batch, channels, n]. Asked for its attention it
    returns the scores before the softmax, so the weights are taken from its softmax module instead."""

    def heads_of(attention, channels_first):
        return channels_first.unflatten(1, (attention.num_attention_heads, -1)).transpose(-1, -2)

    return _watch_own_softmax(modules, recorder, _query_and_key, heads_of)


def _watch_ibert(modules: list[nn.Module], recorder) -> list:
    """I-BERT's queries and keys are what its activation quantizers return (the projections themselves
    unless quant_mode is on); its softmax is an integer approximation in quant_mode, a plain one otherwise."""

    def heads_of(attention, quantized):
        return _first(quantized).unflatten(-1, (-1, attention.attention_head_size)).transpose(1, 2)

    return _watch_own_softmax(
        modules, recorder, lambda attention: (attention.query_activation, attention.key_activation), heads_of
    )


WATCHERS = {
    "modeling_deberta.DisentangledSelfAttention": functools.partial(_watch_disentangled, terms=_deberta_terms),
    "modeling_deberta_v2.DisentangledSelfAttention": functools.partial(_watch_disentangled, terms=_deberta_v2_terms),
    "modeling_mpnet.MPNetSelfAttention": _watch_mpnet,
    "modeling_roformer.RoFormerSelfAttention": _watch_roformer,
    "modeling_rembert.RemBertSelfAttention": _watch_bert_style,
    "modeling_megatron_bert.MegatronBertSelfAttention": _watch_bert_style,
    "modeling_convbert.ConvBertSelfAttention": _watch_convbert,
    "modeling_luke.LukeSelfAttention": _watch_luke,
    "modeling_squeezebert.SqueezeBertSelfAttention": _watch_squeezebert,
    "modeling_ibert.IBertSelfAttention": _watch_ibert,
}

"""ProphetNet: plain attention in the encoder and cross-attention, n-gram self-attention in the decoder.

The decoder runs a main stream (the tokens, as any decoder) and `ngram` predicting streams (placeholders that
predict the tokens 2, 3, ... ahead) side by side. The main stream's attention over the tokens is what a decoder's
map shows; the predicting streams' rows attend to main and predicting positions alike and map to no token, so
they are left out, in the self-attention and in the cross-attention alike.
"""

from __future__ import annotations

from torch import nn

from .parts import arguments, asked_for_weights, keep_outputs


def _watch_prophetnet(layers: list[nn.Module], recorder) -> list:
    """The attention modules of ProphetNet's encoder and decoder layers; a layer knows how many streams it runs."""
    decoder_layers = [layer for layer in layers if hasattr(layer.self_attn, "ngram")]
    attentions = [layer.self_attn for layer in layers if layer not in decoder_layers]
    crossing = [layer for layer in decoder_layers if hasattr(layer, "cross_attn")]
    attentions += [layer.cross_attn for layer in crossing]
    streams = {id(layer.cross_attn): 1 + layer.self_attn.ngram for layer in crossing}  # its queries: every stream
    handles = asked_for_weights(attentions)  # they return their scores only when asked
    kept = keep_outputs(
        [linear for attention in attentions + [layer.self_attn for layer in decoder_layers]
         for linear in (attention.query_proj, attention.key_proj)],
        handles,
    )  # fmt: skip

    def heads(attention, linear, rows: int | None = None):
        states = kept.pop(id(linear))
        states = states if rows is None else states[:, :rows]
        return states.unflatten(-1, (attention.num_attn_heads, attention.head_dim)).transpose(1, 2)

    def record_attention(attention, args, kwargs, output):
        """Encoder self-attention and cross-attention: queries divided by sqrt(head_dim), plus the mask. They
        return their scores before the softmax, which is taken here as the module takes it."""
        given = arguments(attention, args, kwargs)
        main = given["hidden_states"].shape[1] // streams.get(id(attention), 1)
        query = heads(attention, attention.query_proj, main) / (attention.head_dim**0.5)
        key = heads(attention, attention.key_proj)
        weights = nn.functional.softmax(output[1][:, :, :main], dim=-1)
        recorder.record(attention, query, key, weights, given.get("attention_mask"), 1.0, None)

    def record_main_stream(attention, args, kwargs, output):
        """The main stream of the n-gram self-attention: queries divided by sqrt(head_dim), plus a learned bias per
        relative position bucket (computed from each query's hidden state), plus the causal mask."""
        given = arguments(attention, args, kwargs)
        hidden = given["hidden_states"]
        main = hidden.shape[1] // (1 + attention.ngram)
        query = heads(attention, attention.query_proj, main) / (attention.head_dim**0.5)
        key = heads(attention, attention.key_proj, main)
        weights = output[1]
        relative = attention.get_main_relative_pos_embeddings(
            hidden[:, :main], weights, given.get("position_ids"), given.get("main_relative_position_buckets")
        )
        recorder.record(attention, query, key, weights, given.get("attention_mask"), 1.0, relative)

    handles += [attention.register_forward_hook(record_attention, with_kwargs=True) for attention in attentions]
    return handles + [
        layer.self_attn.register_forward_hook(record_main_stream, with_kwargs=True) for layer in decoder_layers
    ]


WATCHERS = {
    "modeling_prophetnet.ProphetNetEncoderLayer": _watch_prophetnet,
    "modeling_prophetnet.ProphetNetDecoderLayer": _watch_prophetnet,
}

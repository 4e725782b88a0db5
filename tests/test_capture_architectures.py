"""The capture invariants on tiny random models of every supported architecture family.

1. softmax(q @ k.T * scale + bias) reproduces the captured attention, head by head.
2. The captured attention equals what an eager copy of the model returns with output_attentions=True.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

from attnwidget import capture
from attnwidget.capturing import IncompleteScoresWarning
from conftest import ARCHITECTURES, DECODER_ONLY, ENCODER_DECODER, eager_attentions, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"
# No sdpa in transformers: BLOOM, GPT-Neo, DeBERTa-v2, XLM, Flaubert and XLNet (recorded through module hooks),
# Gemma 2 (soft-capping), GPT-OSS (sinks).
EAGER_ONLY = ("bloom", "gpt_neo", "deberta_v2", "xlm", "flaubert", "xlnet", "gemma2", "gpt_oss")


def model_inputs(model, result, encoding) -> dict:
    """The inputs capture fed the model, rebuilt independently for the eager reference."""
    parameters = inspect.signature(model.forward).parameters
    inputs = {key: value for key, value in encoding.items() if key in parameters}
    if "decoder" in result.sides:
        inputs["decoder_input_ids"] = torch.tensor([result.sides["decoder"].token_ids])
    return inputs


@pytest.fixture(scope="module", params=ARCHITECTURES)
def captured(request, tiny_models):
    """(arch, model, tokenizer, capture) of a tiny model loaded as by default: sdpa where supported."""
    model, tokenizer = tiny_models(request.param, attn_implementation=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)  # q, k, scale and bias explain it all
        return request.param, model, tokenizer, capture(model, tokenizer, TEXT)


def test_stacks_follow_the_architecture(captured):
    arch, model, tokenizer, result = captured
    expected = ("encoder", "decoder", "cross") if arch in ENCODER_DECODER else ("self",)
    assert result.stacks == expected
    assert result.tokens[:3] == ["[CLS]", "leaves", "fall"]
    for stack in result.stacks:
        query_side, key_side = result.stack_tokens(stack)
        shape = result.attention(stack).shape
        assert shape[2:] == (len(query_side), len(key_side))
        # Every layer attends (ALBERT's one shared layer runs three times): the model's numbers are 0, 1, 2...
        assert result.layer_numbers(stack) == list(range(shape[0]))


def test_softmax_of_recorded_scores_reproduces_attention(captured):
    arch, model, tokenizer, result = captured
    for stack in result.stacks:
        attention = result.attention(stack)
        for layer in range(result.num_layers(stack)):
            np.testing.assert_allclose(softmax_of_scores(result, layer, stack), attention[layer], atol=1e-4, rtol=0)


def test_attention_equals_eager_output_attentions(captured):
    arch, model, tokenizer, result = captured
    reference = eager_attentions(model, model_inputs(model, result, tokenizer(TEXT, return_tensors="pt")))
    assert model.config._attn_implementation == ("eager" if arch in EAGER_ONLY else "sdpa")
    assert set(reference) == set(result.stacks)
    for stack in result.stacks:
        np.testing.assert_allclose(result.attention(stack), reference[stack][:, 0], atol=1e-6, rtol=0)


def test_decoders_see_only_earlier_tokens(captured):
    arch, model, tokenizer, result = captured
    stack = "decoder" if arch in ENCODER_DECODER else "self"
    if arch not in DECODER_ONLY + ENCODER_DECODER:
        pytest.skip("encoder-only: every token sees every token")
    attention = result.attention(stack)
    n = attention.shape[-1]
    future = np.triu(np.ones((n, n), dtype=bool), k=1)
    assert np.all(attention[..., future] == 0)
    assert np.all(np.isneginf(result.bias(0, stack)[..., future]))


def test_gqa_maps_each_query_head_to_its_key_value_head(tiny_models):
    model, tokenizer = tiny_models("llama")  # 4 query heads reading 2 key/value heads
    result = capture(model, tokenizer, TEXT)
    assert result.kv_head_of().tolist() == [0, 0, 1, 1]
    stored_keys = result.stack().layers[0].key
    assert stored_keys.shape[0] == 2
    _, keys = result.query_key(0)
    assert keys.shape[0] == 4
    np.testing.assert_array_equal(keys[1], stored_keys[0])
    np.testing.assert_array_equal(keys[2], stored_keys[1])


def test_t5_bias_is_the_relative_position_bias_per_head(tiny_models):
    model, tokenizer = tiny_models("t5")
    result = capture(model, tokenizer, TEXT)
    bias = result.bias(0, "encoder")
    assert bias.shape == (4, len(result.tokens), len(result.tokens))
    assert not np.allclose(bias[0], bias[1]), "each head has its own relative position bias"
    # T5 computes the bias once and every layer reuses it: stored once, not per layer.
    assert result.bias(1, "encoder") is bias
    assert result.layer_scale(0, "encoder") == 1.0


def test_mistral_sliding_window_is_part_of_the_bias(tiny_models):
    model, tokenizer = tiny_models("mistral")  # sliding_window=4
    result = capture(model, tokenizer, TEXT)
    bias = result.bias(0)[0]
    last = len(result.tokens) - 1
    assert np.isneginf(bias[last, last - 4])
    assert np.isfinite(bias[last, last - 3])
    assert result.attention()[:, :, last, : last - 3].max() == 0


def test_bloom_bias_is_alibi_plus_the_causal_mask(tiny_models):
    model, tokenizer = tiny_models("bloom")  # BLOOM computes attention itself: recorded through module hooks
    result = capture(model, tokenizer, TEXT)
    bias = result.bias(0)
    n = len(result.tokens)
    assert bias.shape == (4, n, n)
    seen = np.tril(np.ones((n, n), dtype=bool))
    assert np.all(np.isneginf(bias[:, ~seen]))
    # ALiBi: a slope per head times the key position, the same for every query.
    slopes = bias[:, n - 1, 1] - bias[:, n - 1, 0]
    np.testing.assert_allclose(bias[:, n - 1, :], slopes[:, None] * np.arange(n), rtol=1e-5)
    assert len(set(slopes.round(6))) == 4
    assert result.bias(1) is bias
    assert all(not module._forward_hooks for module in model.modules())


def test_gpt_neo_local_layers_see_a_window(tiny_models):
    model, tokenizer = tiny_models("gpt_neo")  # layers: global, then local with window_size=4; module hooks
    result = capture(model, tokenizer, TEXT)
    last = len(result.tokens) - 1
    global_bias, local_bias = result.bias(0)[0], result.bias(1)[0]
    assert np.isfinite(global_bias[last, 0])
    assert np.isneginf(local_bias[last, last - 4]) and np.isfinite(local_bias[last, last - 3])
    assert result.attention()[1, :, last, : last - 3].max() == 0
    assert result.layer_scale(1) == 1.0, "GPT-Neo does not scale its scores"
    assert all(not module._forward_hooks for module in model.modules())


@pytest.mark.parametrize("arch", ["deberta", "deberta_v2"])
def test_deberta_bias_holds_its_relative_position_terms(tiny_models, arch):
    model, tokenizer = tiny_models(arch)  # content-to-position and position-to-content; module hooks
    result = capture(model, tokenizer, TEXT)
    n = len(result.tokens)
    for layer in range(2):
        bias = result.bias(layer)
        assert bias.shape == (4, n, n) and np.isfinite(bias).all(), "no padding: every cell holds a position term"
        assert not np.allclose(bias[0], bias[1]), "each head has its own relative position terms"
    assert result.bias(0) is not result.bias(1), "each layer computes its terms from its own queries and keys"
    assert result.layer_scale(0) == pytest.approx((8 * 3) ** -0.5), "scaled by sqrt(head_dim x (1 + 2 terms))"
    query, key = result.query_key(1)
    without_terms = torch.from_numpy(np.einsum("hqd,hkd->hqk", query, key) * result.layer_scale(1)).softmax(-1)
    assert np.abs(without_terms.numpy() - result.attention()[1]).max() > 1e-2, "the terms change the picture"
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())


@pytest.mark.parametrize("variant", [{"alibi": True, "multi_query": False}, {"multi_query": True}])
def test_falcon_variants_are_exact(minilm_tokenizer, variant):
    """Falcon-RW's ALiBi (added before the scale, like BLOOM's) and Falcon-7B's single shared key head."""
    from transformers import AutoModelForCausalLM, FalconConfig

    config = FalconConfig(
        vocab_size=30522, pad_token_id=0, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, initializer_range=0.2, **variant,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    result = capture(model, minilm_tokenizer, TEXT)
    reference = eager_attentions(model, dict(minilm_tokenizer(TEXT, return_tensors="pt")))["self"]
    np.testing.assert_allclose(result.attention(), reference[:, 0], atol=1e-6, rtol=0)
    for layer in range(2):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), reference[layer, 0], atol=1e-4, rtol=0)
    assert result.stack().layers[0].key.shape[0] == (1 if variant["multi_query"] else 4)
    assert all(not module._forward_hooks for module in model.modules())


def test_models_without_attention_say_so(minilm_tokenizer):
    from transformers import MambaConfig, MambaForCausalLM

    model = MambaForCausalLM(MambaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, state_size=4))
    with pytest.raises(ValueError, match="MambaForCausalLM has no attention to show"):
        capture(model, minilm_tokenizer, TEXT)


def test_hybrid_model_keeps_its_own_layer_numbers(minilm_tokenizer):
    from transformers import AutoModelForCausalLM, Lfm2Config

    from attnwidget import wire

    layer_types = ["conv", "full_attention", "conv", "conv", "full_attention"]
    config = Lfm2Config(
        vocab_size=30522, pad_token_id=0, hidden_size=32, intermediate_size=64, num_hidden_layers=len(layer_types),
        num_attention_heads=4, num_key_value_heads=2, layer_types=layer_types, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    result = capture(model, minilm_tokenizer, TEXT)
    attending = [number for number, kind in enumerate(layer_types) if kind == "full_attention"]
    assert result.num_layers() == 2 and result.layer_numbers() == attending == [1, 4]
    assert wire.build_meta(result, chunks_complete=True)["stacks"][0]["layer_numbers"] == [1, 4]
    reference = eager_attentions(model, dict(minilm_tokenizer(TEXT, return_tensors="pt")))["self"]
    np.testing.assert_array_equal(result.attention(), reference[:, 0])  # index 1 is the model's layer 4


@pytest.mark.parametrize("arch", ["t5", "bart"])
def test_default_decoder_input_is_the_models_greedy_output(tiny_models, arch):
    model, tokenizer = tiny_models(arch)
    result = capture(model, tokenizer, TEXT, max_new_tokens=6)
    encoding = tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(
            encoding["input_ids"], attention_mask=encoding["attention_mask"], max_new_tokens=6, do_sample=False
        )
    decoder = result.sides["decoder"]
    assert decoder.token_ids == generated[0].tolist()[: len(decoder.token_ids)]
    assert 2 <= len(decoder.token_ids) <= 7
    assert decoder.token_ids[0] == model.config.decoder_start_token_id


def test_bert2bert_decoder_is_not_mistaken_for_the_encoder(minilm_tokenizer):
    """EncoderDecoderModel names its decoder's layers "decoder.bert.encoder.layer.N"."""
    from transformers import BertConfig, EncoderDecoderConfig, EncoderDecoderModel

    sizes = {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 64, "initializer_range": 0.2}  # fmt: skip
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        BertConfig(**sizes), BertConfig(**sizes, is_decoder=True, add_cross_attention=True)
    )
    config.decoder_start_token_id, config.pad_token_id = 101, 0
    torch.manual_seed(0)
    model = EncoderDecoderModel(config=config).eval()
    result = capture(model, minilm_tokenizer, TEXT, decoder_text="bare trees")
    assert [result.num_layers(stack) for stack in result.stacks] == [2, 2, 2]
    encoding = minilm_tokenizer(TEXT, return_tensors="pt")
    inputs = {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}
    reference = eager_attentions(model, model_inputs(model, result, inputs))
    for stack in result.stacks:
        np.testing.assert_allclose(result.attention(stack), reference[stack][:, 0])


def test_decoder_text_follows_the_start_token(tiny_models):
    model, tokenizer = tiny_models("bart")
    result = capture(model, tokenizer, TEXT, decoder_text="bare trees")
    expected = [model.config.decoder_start_token_id, *tokenizer(text_target="bare trees")["input_ids"]]
    assert result.sides["decoder"].token_ids == expected
    assert result.attention("cross").shape[2:] == (len(expected), len(result.tokens))


@pytest.mark.parametrize(("arch", "padding_side"), [("bert", "right"), ("llama", "left"), ("bart", "right")])
def test_batch_row_is_kept_without_padding(tiny_models, arch, padding_side):
    model, tokenizer = tiny_models(arch)
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path, padding_side=padding_side)
    texts = ["leaves fall", TEXT]
    result = capture(model, tokenizer, texts, row=0, decoder_text=["fall", "bare trees"] if arch == "bart" else None)

    alone = tokenizer("leaves fall")["input_ids"]
    assert result.token_ids == alone
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    keep = batch["attention_mask"][0].bool().numpy()
    assert keep.sum() < keep.size, "the row must have had padding to strip"
    inputs = {key: value for key, value in batch.items() if key in inspect.signature(model.forward).parameters}
    if arch == "bart":
        decoder = tokenizer(text_target=["fall", "bare trees"], padding=True, return_tensors="pt")
        start = torch.full((2, 1), model.config.decoder_start_token_id)
        inputs["decoder_input_ids"] = torch.cat([start, decoder["input_ids"]], dim=1)
        inputs["decoder_attention_mask"] = torch.cat([torch.ones_like(start), decoder["attention_mask"]], dim=1)
    reference = eager_attentions(model, inputs)
    stack = "encoder" if arch == "bart" else "self"
    expected = reference[stack][:, 0][:, :, keep][..., keep]
    np.testing.assert_allclose(result.attention(stack), expected, atol=1e-6, rtol=0)
    for layer in range(result.num_layers(stack)):
        np.testing.assert_allclose(softmax_of_scores(result, layer, stack), expected[layer], atol=1e-4, rtol=0)


def test_generic_eager_matches_an_architectures_own(tiny_models):
    """The fallback for modules whose file defines no eager function computes the same attention."""
    from transformers.models.llama.modeling_llama import eager_attention_forward

    from attnwidget.capturing.record import _generic_eager

    model, _ = tiny_models("llama")
    attention = model.model.layers[0].self_attn  # 4 query heads, 2 key/value heads
    torch.manual_seed(1)
    query, key, value = torch.randn(2, 4, 5, 8), torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)
    mask = torch.triu(torch.full((5, 5), torch.finfo(torch.float32).min), diagonal=1)[None, None]
    own = eager_attention_forward(attention, query, key, value, mask, scaling=0.3)
    generic = _generic_eager(attention, query, key, value, mask, scaling=0.3)
    for ours, theirs in zip(generic, own):
        torch.testing.assert_close(ours, theirs)

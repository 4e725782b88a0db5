"""BigBird and BigBird-Pegasus: block-sparse attention (global, sliding and random blocks) captured as the dense
map the module applies, full attention on short inputs, and the model left with the attention it had."""

from __future__ import annotations

import numpy as np
import torch

from attnwidget import capture
from conftest import MINILM_VOCAB, softmax_of_scores

# 19 tokens: longer than block-sparse's minimum of (5 + 2 * 1 random block) * 2 = 14, padded to 20 inside.
LONG = "leaves fall in autumn and the old trees stand bare while the first frost settles on fields"
SHORT = "leaves fall in autumn and the old trees stand bare"  # 12 tokens: transformers switches to full attention
BLOCK, RANDOM = 2, 1
SIZES = {"vocab_size": MINILM_VOCAB, "pad_token_id": 0, "block_size": BLOCK, "num_random_blocks": RANDOM,
         "max_position_embeddings": 64}  # fmt: skip


def big_bird(attention_type="block_sparse"):
    from transformers import BigBirdConfig, BigBirdModel

    config = BigBirdConfig(**SIZES, attention_type=attention_type, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64, initializer_range=0.2)  # fmt: skip
    torch.manual_seed(0)
    return BigBirdModel._from_config(config, attn_implementation="eager").eval()


def pegasus():
    from transformers import BigBirdPegasusConfig, BigBirdPegasusForConditionalGeneration

    config = BigBirdPegasusConfig(**SIZES, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                                  decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, init_std=0.2,
                                  decoder_start_token_id=102, eos_token_id=102, bos_token_id=101)  # fmt: skip
    torch.manual_seed(0)
    return BigBirdPegasusForConditionalGeneration._from_config(config, attn_implementation="eager").eval()


def attention_layout(model) -> dict:
    """What transformers switches on short inputs: every attention type, and the attention submodules themselves."""
    return {name: (module.attention_type, module._modules.get("self")) for name, module in model.named_modules()
            if hasattr(module, "attention_type")}  # fmt: skip


def eager_maps(model, inputs: dict) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    if getattr(out, "encoder_attentions", None) is not None:
        stacks = {"encoder": out.encoder_attentions, "decoder": out.decoder_attentions, "cross": out.cross_attentions}
    else:
        stacks = {"self": out.attentions}
    return {name: torch.stack(layers)[:, 0].numpy() for name, layers in stacks.items()}


def test_block_sparse_map_is_the_attention_the_module_applies(minilm_tokenizer):
    model = big_bird()
    layout = attention_layout(model)
    inner = model.encoder.layer[0].attention.self
    applied = {}  # the module's own values and output, seen by a user's hooks during the capture
    hooks = [inner.value.register_forward_hook(lambda module, args, output: applied.update(value=output)),
             inner.register_forward_hook(lambda module, args, output: applied.update(context=output[0]))]  # fmt: skip
    result = capture(model, minilm_tokenizer, LONG)
    for hook in hooks:
        hook.remove()
    captured, n = result.attention(), 19
    assert captured.shape == (2, 4, n, n)
    assert attention_layout(model) == layout

    # The pattern, in blocks of 2 tokens: the first and last query blocks see every key; a middle one (tokens 6
    # and 7) sees the first block, its own and its neighbours, and the last block (token 18; 19 is padding).
    assert (captured[:, :, [0, 1, 18]] > 0).all()
    assert [np.flatnonzero(captured[0, head, 6]).tolist() for head in range(4)] == [[0, 1, 4, 5, 6, 7, 8, 9, 18]] * 4
    np.testing.assert_allclose(captured.sum(axis=-1), 1, atol=1e-6)

    # Times the values, the map gives the module's output: it is the attention the module applies.
    value = applied["value"][0, :n].unflatten(-1, (4, -1)).transpose(0, 1).numpy()
    context = applied["context"][0, :n].unflatten(-1, (4, -1)).transpose(0, 1).numpy()
    np.testing.assert_allclose(captured[0] @ value, context, atol=1e-5)
    for layer in range(2):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), captured[layer], atol=1e-4)

    # Eager's map writes each key once, but its random block is the first block again (eval mode draws none), so
    # the first block's keys enter the softmax of each middle query twice: eager shows half their weight there.
    eager = eager_maps(model, dict(minilm_tokenizer(LONG, return_tensors="pt")))["self"][..., :n, :n]
    counted = eager.copy()
    counted[..., BLOCK : 20 - BLOCK, :BLOCK] *= 1 + RANDOM
    np.testing.assert_allclose(captured, counted, atol=1e-6)
    assert eager.sum(axis=-1).min() < 0.99


def test_short_input_is_full_attention_and_the_model_stays_block_sparse(minilm_tokenizer):
    model = big_bird()
    layout = attention_layout(model)
    result = capture(model, minilm_tokenizer, SHORT)
    assert attention_layout(model) == layout
    assert {attention_type for attention_type, _ in layout.values()} == {"block_sparse"}

    # The reference is a full-attention copy: on a short input BigBird's own eager output_attentions is empty, as
    # transformers' output hooks sit on the modules its forward replaces.
    full = big_bird("original_full")
    full.load_state_dict(model.state_dict())
    expected = eager_maps(full, dict(minilm_tokenizer(SHORT, return_tensors="pt")))["self"]
    assert (expected > 0).all()
    np.testing.assert_allclose(result.attention(), expected, atol=1e-6)
    for layer in range(2):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), result.attention()[layer], atol=1e-4)


def test_pegasus_encoder_block_sparse_decoder_and_cross_attention(minilm_tokenizer):
    model = pegasus()
    layout = attention_layout(model)
    result = capture(model, minilm_tokenizer, LONG, decoder_text="bare trees")
    assert attention_layout(model) == layout
    assert result.stacks == ("encoder", "decoder", "cross")

    inputs = dict(minilm_tokenizer(LONG, return_tensors="pt"))
    inputs["decoder_input_ids"] = torch.tensor([result.sides["decoder"].token_ids])
    eager = eager_maps(model, inputs)
    n = 19
    eager["encoder"] = eager["encoder"][..., :n, :n]
    eager["encoder"][..., BLOCK : 20 - BLOCK, :BLOCK] *= 1 + RANDOM  # the first block's repeated keys, as above
    assert (result.attention("encoder")[:, :, 6, 10:18] == 0).all()  # beyond the sliding window
    for stack in result.stacks:
        np.testing.assert_allclose(result.attention(stack), eager[stack], atol=1e-6)
        for layer in range(2):
            np.testing.assert_allclose(softmax_of_scores(result, layer, stack), result.attention(stack)[layer],
                                       atol=1e-4)  # fmt: skip

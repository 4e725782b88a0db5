"""The user's model is left exactly as it was, whatever it was loaded with and however it is placed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnwidget import capture
from conftest import eager_attentions, model_state, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"
# A module deep inside each model, for a user's own hook and for an error injected mid-forward.
INNER_LAYER = {"llama": "model.layers.1", "t5": "decoder.block.1", "bert": "encoder.layer.1",
               "deberta_v2": "encoder.layer.1", "falcon": "transformer.h.1", "xlm": "attentions.1",
               "xlnet": "layer.1.rel_attn", "longt5": "decoder.block.1",
               "squeezebert": "encoder.layers.1.post_attention",  # its encoder calls layer.forward, past any hook
               **dict.fromkeys(("deberta", "convbert", "ibert", "luke", "big_bird"), "encoder.layer.1"),
               "openai-gpt": "transformer.h.1", "xglm": "model.layers.1", "fsmt": "model.decoder.layers.1",
               "gpt_neox_japanese": "gpt_neox_japanese.layers.1", "cpmant": "cpmant.encoder.layers.1",
               "reformer": "reformer.encoder.layers.1", "nystromformer": "encoder.layer.1",
               "funnel": "funnel.decoder.layers.0", "prophetnet": "prophetnet.decoder.layers.1",
               "pegasus_x": "model.encoder.layers.1"}


def make_unusual(model, arch: str):
    """Training mode, a frozen part and a user's hook: a capture must give all of it back."""
    model.train()
    next(model.parameters()).requires_grad_(False)
    return model.get_submodule(INNER_LAYER[arch]).register_forward_hook(lambda module, args, output: None)


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_model_is_restored_after_a_capture(tiny_models, arch):
    model, tokenizer = tiny_models(arch, attn_implementation="sdpa")
    user_hook = make_unusual(model, arch)
    before = model_state(model)
    result = capture(model, tokenizer, TEXT)
    assert model_state(model) == before
    assert model.training and model.config._attn_implementation == "sdpa"
    assert result.num_layers(result.stacks[0]) == 2
    user_hook.remove()


@pytest.mark.parametrize("arch", ["llama", "t5", "bert"])
def test_model_is_restored_when_the_forward_pass_raises(tiny_models, arch):
    model, tokenizer = tiny_models(arch, attn_implementation="sdpa")
    user_hook = make_unusual(model, arch)
    before = model_state(model)

    def fail(module, args, output):
        raise RuntimeError("injected failure")

    failing = model.get_submodule(INNER_LAYER[arch]).register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        capture(model, tokenizer, TEXT)
    failing.remove()
    assert model_state(model) == before
    user_hook.remove()

    # Nothing of the failed capture lingers: the next one is complete and exact.
    model.eval()
    result = capture(model, tokenizer, TEXT)
    assert result.num_layers(result.stacks[0]) == 2
    np.testing.assert_allclose(softmax_of_scores(result, 1, result.stacks[0]), result.attention(result.stacks[0])[1],
                               atol=1e-4)


# Architectures recorded through module hooks (capturing/watchers/), one of each family.
WATCHED = [
    "deberta_v2",
    "falcon",
    "xlm",
    "xlnet",
    "longt5",
    "deberta",
    "convbert",
    "squeezebert",
    "ibert",
    "luke",
    "big_bird",  # its forward replaces its block-sparse attention modules by full ones on short texts
    "openai-gpt",
    "xglm",
    "fsmt",
    "gpt_neox_japanese",
    "cpmant",
    "reformer",
    "nystromformer",
    "funnel",
    "prophetnet",
    "pegasus_x",
]


@pytest.mark.parametrize("arch", WATCHED)
def test_models_recorded_through_hooks_are_restored_when_the_forward_pass_raises(tiny_models, arch):
    """Their attention modules get forward hooks (and pre-hooks that ask for their weights, or hooks on their
    softmax modules); the failure is injected in a later layer, or in the hooked attention module itself."""
    model, tokenizer = tiny_models(arch)
    user_hook = make_unusual(model, arch)
    before = model_state(model)
    failing = model.get_submodule(INNER_LAYER[arch]).register_forward_hook(lambda *_: 1 / 0)
    # An encoder-decoder reads a given decoder text: the failure comes after its encoder ran with the hooks.
    decoder_text = "bare trees" if model.config.is_encoder_decoder else None
    with pytest.raises(ZeroDivisionError):
        capture(model, tokenizer, TEXT, decoder_text=decoder_text)
    failing.remove()
    assert model_state(model) == before
    user_hook.remove()


def test_model_loaded_with_eager_stays_eager(tiny_models):
    model, tokenizer = tiny_models("bert", attn_implementation="eager")
    result = capture(model, tokenizer, TEXT)
    assert model.config._attn_implementation == "eager"
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"]
    np.testing.assert_allclose(result.attention(), reference[:, 0], atol=1e-6)


def test_bfloat16_model_gives_float32_copies_of_its_own_values(tiny_models):
    model, tokenizer = tiny_models("llama", attn_implementation="sdpa", dtype=torch.bfloat16)
    result = capture(model, tokenizer, TEXT)
    assert result.layer_attention(0).dtype == np.float32
    assert next(model.parameters()).dtype == torch.bfloat16
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"]
    np.testing.assert_array_equal(result.attention(), reference[:, 0])
    query, key = result.query_key(0)
    assert query.dtype == key.dtype == np.float32
    # The model rounded its scores and weights to bfloat16, so the float32 recomputation agrees to ~1e-2.
    np.testing.assert_allclose(softmax_of_scores(result, 0, "self"), result.attention()[0], atol=2e-2)


# Part of each model on the CPU, part offloaded to disk and loaded by accelerate's hooks when used.
OFFLOAD_MAPS = {
    "llama": {
        "model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
        "model.norm": "cpu", "lm_head": "disk",
    },
    "bart": {
        "model.shared": "cpu", "model.encoder": "cpu", "model.decoder.embed_tokens": "cpu",
        "model.decoder.embed_positions": "cpu", "model.decoder.layernorm_embedding": "cpu",
        "model.decoder.layers.0": "disk", "model.decoder.layers.1": "cpu", "lm_head": "cpu", "final_logits_bias": "cpu",
    },
}  # fmt: skip


@pytest.mark.parametrize("arch", sorted(OFFLOAD_MAPS))
@pytest.mark.filterwarnings("ignore:The following device_map keys")  # BART's final_logits_bias is a buffer
def test_model_dispatched_with_cpu_and_disk_offload(tiny_models, tmp_path, arch):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    model, tokenizer = tiny_models(arch)
    model.save_pretrained(tmp_path / "saved")
    auto = AutoModelForSeq2SeqLM if arch == "bart" else AutoModelForCausalLM
    offloaded = auto.from_pretrained(
        tmp_path / "saved", device_map=OFFLOAD_MAPS[arch], offload_folder=tmp_path / "offload"
    )
    assert set(offloaded.hf_device_map.values()) == {"cpu", "disk"}
    before = model_state(offloaded)
    result = capture(offloaded, tokenizer, TEXT)
    assert model_state(offloaded) == before
    # Weights on disk are loaded only for their module's own call: their stacks are not value-weighted
    on_disk = {"llama": {"self"}, "bart": {"decoder", "cross"}}[arch]
    assert {stack for stack in result.stacks if not result.has_value_weights(stack)} == on_disk
    assert "offloaded" in result.why_no_value_weights(next(iter(on_disk)))

    expected = capture(model, tokenizer, TEXT)
    for stack in expected.stacks:
        np.testing.assert_allclose(result.attention(stack), expected.attention(stack), atol=1e-6)
        for layer in range(2):
            np.testing.assert_allclose(
                softmax_of_scores(result, layer, stack), result.attention(stack)[layer], atol=1e-4
            )


def test_overlapping_captures_of_one_model_wait_for_each_other(tiny_models):
    import threading
    import time

    model, tokenizer = tiny_models("llama", attn_implementation="sdpa")
    user_hook = make_unusual(model, "llama")
    before = model_state(model)
    inside = threading.Event()

    def slow_layer(module, args):
        # The first capture is mid-forward when the second starts: without waiting, the second saves
        # the first one's switched model as "the original" and, finishing last, restores that.
        inside.set()
        time.sleep(0.3)

    slow = model.get_submodule(INNER_LAYER["llama"]).register_forward_pre_hook(slow_layer)
    results, errors = [], []

    def run():
        try:
            results.append(capture(model, tokenizer, TEXT))
        except Exception as error:  # reported below, with the thread's own message
            errors.append(error)

    first, second = threading.Thread(target=run), threading.Thread(target=run)
    first.start()
    assert inside.wait(timeout=30)
    second.start()
    first.join(), second.join()
    slow.remove()
    assert not errors, errors
    assert model_state(model) == before
    assert model.training and model.config._attn_implementation == "sdpa"
    assert len(results) == 2
    np.testing.assert_array_equal(results[0].attention(), results[1].attention())
    user_hook.remove()

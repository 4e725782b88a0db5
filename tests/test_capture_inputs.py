"""Bad requests get a clear error that says what to do, before the model runs."""

from __future__ import annotations

import pytest
import torch

from attnwidget import capture
from attnwidget.capturing import MemoryBudgetError
from conftest import build_tiny

TEXT = "leaves fall in autumn"


@pytest.fixture()
def counted(tiny_models):
    """A tiny BERT that counts its forward passes, to prove a refused request never ran."""
    model, tokenizer = tiny_models("bert")
    calls = []
    hook = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    yield model, tokenizer, calls
    hook.remove()


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_refused(counted, text):
    model, tokenizer, calls = counted
    with pytest.raises(ValueError, match="empty or only whitespace"):
        capture(model, tokenizer, text)
    with pytest.raises(ValueError, match=r"text_pair is empty"):
        capture(model, tokenizer, TEXT, " ")
    with pytest.raises(ValueError, match=r"text\[1\] is empty"):
        capture(model, tokenizer, [TEXT, text])
    assert not calls


def test_text_of_the_wrong_type_is_refused(counted):
    model, tokenizer, calls = counted
    with pytest.raises(TypeError, match="string or a list of strings"):
        capture(model, tokenizer, 42)
    with pytest.raises(TypeError, match="string or a list of strings"):
        capture(model, tokenizer, tokenizer(TEXT)["input_ids"])
    assert not calls


def test_text_longer_than_the_model_accepts(minilm):
    model, tokenizer = minilm
    long_text = "leaves fall " * 400
    with pytest.raises(ValueError, match=r"accepts at most 512.*truncation=True"):
        capture(model, tokenizer, long_text)
    result = capture(model, tokenizer, long_text, truncation=True)
    assert len(result.tokens) == 512
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"


def test_tokenizer_with_ids_beyond_the_embedding_is_refused(tiny_models):
    model, tokenizer = tiny_models("bert")
    model.resize_token_embeddings(1000)  # "autumn" is id 7114 in the MiniLM vocabulary
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    with pytest.raises(ValueError, match=r"does not match the model.*token id 7114.*1000 ids"):
        capture(model, tokenizer, "autumn")
    assert not calls


def test_tokenizer_larger_than_the_vocabulary_is_refused(tiny_models):
    model, tokenizer = tiny_models("gpt2")
    model.resize_token_embeddings(8000)  # every id of "leaves fall" fits, but the tokenizer has 30522 tokens
    assert max(tokenizer("leaves fall")["input_ids"]) < 8000
    with pytest.raises(ValueError, match=r"does not match the model: it has 30522 tokens"):
        capture(model, tokenizer, "leaves fall")


@pytest.mark.parametrize("arch", ["t5", "bart"])
def test_greedy_output_with_ids_the_tokenizer_lacks_shows_them(tiny_models, arch):
    model, tokenizer = tiny_models(arch)
    vocabulary = len(tokenizer)
    model.resize_token_embeddings(vocabulary + 28, mean_resizing=False)  # padded like t5-small: 32,128 rows
    # Steer greedy decoding to the rows past the vocabulary, as a trained model now and then picks one.
    model.generation_config.suppress_tokens = list(range(vocabulary))
    model.generation_config.eos_token_id = None
    result = capture(model, tokenizer, TEXT, max_new_tokens=3)
    decoder = result.sides["decoder"]
    outside = [index for index, token_id in enumerate(decoder.token_ids) if token_id >= vocabulary]
    assert outside, "the greedy output should hold ids past the tokenizer"
    for index in outside:
        assert decoder.tokens[index] == decoder.raw_tokens[index] == f"<id {decoder.token_ids[index]}>"
    assert result.attention("cross").shape[2:] == (len(decoder), len(result.tokens))


def test_request_over_the_memory_budget_is_refused_before_running(counted):
    model, tokenizer, calls = counted
    with pytest.raises(MemoryBudgetError, match="max_memory_bytes") as refused:
        capture(model, tokenizer, TEXT, max_memory_bytes=1000)
    assert isinstance(refused.value, ValueError)
    assert not calls
    needed = f"{refused.value.needed:,} bytes"
    assert f"needs {needed} by estimate, over the budget of 1,000 bytes" in str(refused.value), "sizes that differ"
    capture(model, tokenizer, TEXT, max_memory_bytes=10**6)
    assert calls


@pytest.mark.parametrize(
    "needed, budget, expected",
    [
        (6 * 2**30, 4 * 2**30, ("6,144 MiB", "4,096 MiB")),
        (2**20 + 4096, 2**20, ("1,028 KiB", "1,024 KiB")),  # equal in MiB: one unit down
        (2**20 + 1, 2**20, ("1,048,577 bytes", "1,048,576 bytes")),
        (5000, 1000, ("5,000 bytes", "1,000 bytes")),
    ],
)
def test_memory_budget_message_shows_sizes_that_differ(needed, budget, expected):
    message = str(MemoryBudgetError(needed, budget, "so far"))
    assert f"needs {expected[0]} so far, over the budget of {expected[1]}" in message


def test_encoder_decoder_budget_counts_the_longest_greedy_output(tiny_models):
    model, tokenizer = tiny_models("t5")
    generations = []
    original_generate = model.generate
    model.generate = lambda *args, **kwargs: generations.append(1) or original_generate(*args, **kwargs)
    with pytest.raises(MemoryBudgetError, match="max_memory_bytes"):
        capture(model, tokenizer, TEXT, max_new_tokens=500, max_memory_bytes=2 * 10**6)
    assert not generations, "refused before generating"


def test_options_are_checked(counted, tiny_models):
    model, tokenizer, calls = counted
    with pytest.raises(ValueError, match="attention_dtype"):
        capture(model, tokenizer, TEXT, attention_dtype="int8")
    with pytest.raises(ValueError, match="max_memory_bytes must be a positive integer"):
        capture(model, tokenizer, TEXT, max_memory_bytes=-1)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        capture(model, tokenizer, TEXT, max_new_tokens=0)
    with pytest.raises(ValueError, match=r"row=2 .*row=0..1"):
        capture(model, tokenizer, [TEXT, "autumn"], row=2)
    with pytest.raises(ValueError, match=r"text is a list of 2 texts and the widget shows one; pass row=0..1"):
        capture(model, tokenizer, [TEXT, "autumn"])
    with pytest.raises(TypeError, match=r"row is the 0-based index of the text to show, an int, not bool True"):
        capture(model, tokenizer, [TEXT, "autumn"], row=True)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer, not True"):
        capture(model, tokenizer, TEXT, max_new_tokens=True)
    with pytest.raises(ValueError, match="decoder_text is only for encoder-decoder"):
        capture(model, tokenizer, TEXT, decoder_text="feuilles")
    with pytest.raises(ValueError, match="text_pair has 1 entries but text has 2"):
        capture(model, tokenizer, [TEXT, "autumn"], ["x"])
    assert not calls


def test_model_inputs_are_checked(counted):
    model, tokenizer, calls = counted
    with pytest.raises(TypeError, match=r"model_inputs must be a dict of input name to tensor.*not list"):
        capture(model, tokenizer, TEXT, model_inputs=[torch.ones(1, 6)])
    with pytest.raises(ValueError, match=r"BertModel.forward takes no global_attention_mask; it takes position_ids"):
        capture(model, tokenizer, TEXT, model_inputs={"global_attention_mask": torch.ones(1, 6)})
    with pytest.raises(ValueError, match=r"'attention_mask'\]: capture makes attention_mask itself from the text"):
        capture(model, tokenizer, TEXT, model_inputs={"attention_mask": torch.ones(1, 6)})
    with pytest.raises(ValueError, match=r"shaped like the tokenized text, \(1, 6\) \(texts, tokens\), not \(1, 5\)"):
        capture(model, tokenizer, TEXT, model_inputs={"position_ids": torch.arange(5)[None]})
    assert not calls


def test_encoder_decoder_without_generation_head_needs_decoder_text(tiny_models):
    from transformers import T5Model

    model = T5Model(build_tiny("t5").config)
    _, tokenizer = tiny_models("t5")
    with pytest.raises(ValueError, match="pass decoder_text="):
        capture(model, tokenizer, TEXT)
    result = capture(model, tokenizer, TEXT, decoder_text="feuilles")
    assert result.stacks == ("encoder", "decoder", "cross")


class HandWrittenAttention(torch.nn.Module):
    """A user's own attention, as remote code often has: BERT's projections, its own softmax, no AttentionInterface."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, hidden_states, attention_mask=None, **kwargs):
        heads = self.inner.num_attention_heads
        query, key, value = (
            linear(hidden_states).unflatten(-1, (heads, -1)).transpose(1, 2)
            for linear in (self.inner.query, self.inner.key, self.inner.value)
        )
        weights = (query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5).softmax(dim=-1)
        return (weights @ value).transpose(1, 2).flatten(2), weights


def test_architecture_that_bypasses_the_attention_interface_is_named(tiny_models):
    model, tokenizer = tiny_models("bert")
    for layer in model.encoder.layer:
        layer.attention.self = HandWrittenAttention(layer.attention.self)
    with pytest.raises(ValueError, match="no attention call of BertModel went through(.|\n)*"
                                         "output_attentions=True(.|\n)*AttentionWidget.from_attention"):
        capture(model, tokenizer, TEXT)
    assert model.config._attn_implementation != "attnwidget_capture"
    assert not torch.is_inference_mode_enabled()


def test_a_tokenizer_where_the_model_goes_says_which_goes_where(counted):
    model, tokenizer, calls = counted
    with pytest.raises(TypeError, match=r"a tokenizer \(BertTokenizer\) was passed where the model goes.*"
                                        r"AttentionWidget\(model, text, tokenizer=tokenizer\)"):  # fmt: skip
        capture(tokenizer, tokenizer, TEXT)
    with pytest.raises(TypeError, match="not a loaded model; AttentionWidget\\(name, text\\) loads it"):
        capture("bert-base-uncased", tokenizer, TEXT)
    assert not calls


def test_a_model_without_weights_on_the_meta_device_is_refused(tiny_models):
    model, tokenizer = tiny_models("bert")
    model.to("meta")
    with pytest.raises(ValueError, match=r"BertModel has its weights on the 'meta' device.*from_pretrained"):
        capture(model, tokenizer, TEXT)


def test_a_table_model_given_text_is_refused_with_how_to_show_it(minilm_tokenizer):
    import transformers as t

    config = t.TapasConfig(vocab_size=minilm_tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64)
    model = t.TapasModel(config, add_pooling_layer=False).eval()
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    with pytest.raises(ValueError, match=r"reads a table.*7 token type ids.*AttentionWidget\.from_attention"):
        capture(model, minilm_tokenizer, TEXT)
    assert calls == [], "refused before the model ran"

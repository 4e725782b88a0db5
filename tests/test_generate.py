"""AttentionWidget.generate: the model's own generation, then one capture of the prompt and output, shown step by step.

Step s is the query that produced generated token s. Its attention must equal what a plain eager forward pass over
the prompt and the first s output tokens gives its last row, in every layer and head; sampling options must reach
generate; the model must be left as it was; bad requests must fail before the model runs.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import traitlets

from attnwidget import AttentionWidget, capture
from conftest import SEP, build_tiny, eager_attentions, make_capture, model_state

pytestmark = pytest.mark.usefixtures("recording_comm")

PROMPT = "leaves fall in autumn because"
STEPS = 8


@pytest.fixture
def generated(minilm_tokenizer):
    """Factory: (widget, model) of a tiny model's generation, closed after the test."""
    made = []

    def make(arch: str, **options):
        model = build_tiny(arch)
        # A random model may end at once; at least STEPS tokens keep every step the tests read.
        options = {"max_new_tokens": STEPS, "min_new_tokens": STEPS, **options}
        made.append(AttentionWidget.generate(model, PROMPT, tokenizer=minilm_tokenizer, progress=False, **options))
        return made[-1], model

    yield make
    for widget in made:
        widget.close()


def prompt_ids(tokenizer) -> list[int]:
    return tokenizer(PROMPT)["input_ids"]


# -- the steps equal plain forward passes -----------------------------------------------------------
def test_each_steps_attention_equals_a_forward_pass_over_the_prompt_and_the_output_before_it(generated, minilm_tokenizer):
    widget, model = generated("llama")
    ids = widget.capture.token_ids
    prompt = len(prompt_ids(minilm_tokenizer))
    assert widget.meta["generation"] == {"stack": "self", "side": "input", "prompt_length": prompt,
                                         "first_row": prompt - 1, "steps": STEPS}  # fmt: skip
    assert ids[:prompt] == prompt_ids(minilm_tokenizer) and len(ids) == prompt + STEPS
    for step in (0, 3, STEPS - 1):
        widget.step = step
        row = widget.token
        assert row == prompt + step - 1
        inputs = torch.tensor([ids[: prompt + step]])
        reference = eager_attentions(model, {"input_ids": inputs, "attention_mask": torch.ones_like(inputs)})["self"]
        shown = widget.capture.attention("self")[:, :, row, : row + 1]
        np.testing.assert_allclose(shown, reference[:, 0, :, -1, :], atol=1e-5)


@pytest.mark.parametrize("arch", ["bart", "t5"])
def test_an_encoder_decoders_steps_are_decoder_rows_whose_cross_attention_equals_a_forward_pass(generated, arch):
    widget, model = generated(arch)
    decoder_ids = widget.capture.sides["decoder"].token_ids
    assert widget.stack == "cross" and widget.meta["generation"]["side"] == "decoder"
    assert decoder_ids[0] == model.generation_config.decoder_start_token_id and len(decoder_ids) == STEPS + 1
    encoder = {"input_ids": torch.tensor([widget.capture.token_ids])}
    encoder["attention_mask"] = torch.ones_like(encoder["input_ids"])
    for step in (0, 3, STEPS - 1):
        widget.step = step
        assert widget.token == step
        decoder = torch.tensor([decoder_ids[: step + 1]])
        reference = eager_attentions(model, {**encoder, "decoder_input_ids": decoder})
        for stack in ("cross", "decoder"):
            shown = widget.capture.attention(stack)[:, :, step]
            np.testing.assert_allclose(shown[..., : reference[stack].shape[-1]], reference[stack][:, 0, :, -1], atol=1e-5)


def test_sampling_options_reach_generate_and_give_its_own_output(minilm_tokenizer):
    model = build_tiny("llama")
    sampling = {"max_new_tokens": STEPS, "min_new_tokens": STEPS, "do_sample": True, "top_k": 50, "temperature": 1.5}
    torch.manual_seed(123)
    widget = AttentionWidget.generate(model, PROMPT, tokenizer=minilm_tokenizer, progress=False, **sampling)
    widget.close()
    ids = minilm_tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    outputs = []
    for seed in (123, 124):  # another seed samples another output: the options were not ignored
        torch.manual_seed(seed)
        with torch.no_grad():
            outputs.append(model.generate(**inputs, **sampling)[0].tolist())
    assert widget.capture.token_ids == outputs[0] != outputs[1]


@pytest.mark.parametrize("arch", ["llama", "bart"])
def test_the_model_and_its_generation_config_are_left_as_they_were(minilm_tokenizer, arch):
    model = build_tiny(arch, attn_implementation=None)  # sdpa, switched to capture and back
    model.train()
    before = model_state(model)
    widget = AttentionWidget.generate(
        model, PROMPT, tokenizer=minilm_tokenizer, max_new_tokens=4, do_sample=True, temperature=0.7, progress=False
    )
    widget.close()
    assert model_state(model) == before


def test_generation_stops_after_the_end_of_sequence_token(minilm_tokenizer):
    model = build_tiny("llama")
    first = AttentionWidget.generate(model, PROMPT, tokenizer=minilm_tokenizer, max_new_tokens=3, progress=False)
    produced = first.capture.token_ids[-3]  # the first token it generates, made its end of sequence
    first.close()
    model.generation_config.eos_token_id = produced
    widget = AttentionWidget.generate(model, PROMPT, tokenizer=minilm_tokenizer, max_new_tokens=3, progress=False)
    assert widget.meta["generation"]["steps"] == 1 and widget.capture.token_ids[-1] == produced
    widget.close()


# -- the step trait -----------------------------------------------------------------------------------
def test_step_and_token_follow_each_other(generated):
    widget, _model = generated("llama")
    first_row = widget.meta["generation"]["first_row"]
    assert widget.step == 0 and widget.token == first_row, "a generated widget opens on step 0"
    seen = []
    widget.observe(lambda change: seen.append((change.name, change.new)), names=["step", "token"])

    def changes(name, value):
        seen.clear()
        setattr(widget, name, value)
        return dict(seen)  # each trait changes once

    assert changes("token", first_row + 2) == {"token": first_row + 2, "step": 2}
    assert changes("token", 1) == {"token": 1, "step": None}, "a prompt token produced no output"
    assert changes("token", first_row + STEPS) == {"token": first_row + STEPS}, "nor did the last token"
    assert len(seen) == 1
    assert changes("step", 5) == {"step": 5, "token": first_row + 5}
    assert changes("step", None) == {"step": None, "token": None}
    assert len(seen) == 2


def test_a_step_on_the_encoder_stack_switches_to_the_cross_attention(generated):
    widget, _model = generated("bart")
    widget.stack = "encoder"
    assert widget.step is None and widget.token is None, "an encoder row is no step"
    seen = []
    widget.observe(lambda change: seen.append((change.name, change.new)), names=["step"])
    widget.step = 4
    assert (widget.stack, widget.token, widget.step) == ("cross", 4, 4)
    assert seen == [("step", 4)], "the step never passes through None on the way"
    widget.stack = "decoder"  # the same query side: the step stays
    assert (widget.token, widget.step) == (4, 4)


def test_a_bad_step_is_refused_with_the_range(generated):
    widget, _model = generated("llama")
    with pytest.raises(traitlets.TraitError, match=rf"step {STEPS} is out of range.*0\.\.{STEPS - 1}"):
        widget.step = STEPS
    with pytest.raises(traitlets.TraitError, match="must be an integer index"):
        widget.step = True
    assert widget.step == 0
    with pytest.raises(traitlets.TraitError, match="step 9 is out of range"):
        AttentionWidget.from_capture(widget.capture, step=9)
    plain = AttentionWidget.from_capture(make_capture())
    with pytest.raises(traitlets.TraitError, match="made by AttentionWidget.generate"):
        plain.step = 0
    assert plain.step is None and "generation" not in plain.meta
    plain.close()


def test_the_browsers_step_moves_the_token_and_its_token_click_moves_the_step(generated, caplog):
    widget, _model = generated("llama")
    first_row = widget.meta["generation"]["first_row"]
    deliver = lambda state: widget._handle_msg(  # noqa: E731 - as the comm does on the browser's save_changes()
        {"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []}
    )
    deliver({"step": 3, "token": first_row + 3})
    assert (widget.step, widget.token) == (3, first_row + 3)
    deliver({"token": first_row + 6})
    assert widget.step == 6
    with caplog.at_level(logging.WARNING, logger="attnwidget.widget"):
        deliver({"step": 99})
    assert widget.step == 6 and "step=99" in caplog.text
    assert widget.comm.updates()[-1] == {"step": 6}, "the page is put back in step"


def test_an_export_opens_on_the_step_with_the_generation(generated):
    import json
    import re

    widget, _model = generated("llama")
    widget.step = 2
    html = widget.to_html()
    state = json.loads(re.search(r"data-attnwidget-export>(.*?)</script>", html, re.S).group(1))
    assert state["traits"]["step"] == 2 and state["traits"]["token"] == widget.token
    assert state["traits"]["meta"]["generation"] == widget.meta["generation"]


# -- bad requests fail before the model runs ------------------------------------------------------------
@pytest.fixture
def never_generates(monkeypatch):
    """Makes any model.generate call fail the test: the request should have been refused first."""
    from transformers import GenerationMixin

    def generate(*_args, **_kwargs):
        raise AssertionError("generate ran for a request that should have been refused")

    monkeypatch.setattr(GenerationMixin, "generate", generate)


@pytest.mark.usefixtures("never_generates")
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer, not 0"),
        ({"max_new_tokens": -3}, "max_new_tokens must be a positive integer"),
        ({"max_new_tokens": 200}, r"prompt and output 20\d tokens long, but the model accepts at most 128; lower "
                                  r"max_new_tokens to 12\d or shorten the prompt"),  # fmt: skip
        ({"input_ids": [1, 2]}, "generate makes input_ids from the prompt itself"),
        ({"num_return_sequences": 3}, "the widget shows one output"),
        ({"attention_dtype": "int8"}, "attention_dtype must be one of"),
    ],
)
def test_a_bad_request_is_refused_before_the_model_runs(minilm_tokenizer, options, message):
    with pytest.raises(ValueError, match=message):
        AttentionWidget.generate(build_tiny("llama"), PROMPT, tokenizer=minilm_tokenizer, **options)


@pytest.mark.usefixtures("never_generates")
def test_a_prompt_longer_than_the_model_accepts_is_refused(minilm_tokenizer):
    from attnwidget.capturing import TextTooLongError

    with pytest.raises(TextTooLongError, match="at most 128"):
        AttentionWidget.generate(build_tiny("llama"), "autumn " * 200, tokenizer=minilm_tokenizer)
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        AttentionWidget.generate(build_tiny("llama"), "  ", tokenizer=minilm_tokenizer)


@pytest.mark.usefixtures("never_generates")
def test_a_model_that_cannot_generate_is_refused(minilm_tokenizer):
    with pytest.raises(ValueError, match="BertModel cannot generate.*generation head"):
        AttentionWidget.generate(build_tiny("bert"), PROMPT, tokenizer=minilm_tokenizer)


def test_capture_itself_still_tokenizes_text_and_has_no_generation(minilm_tokenizer):
    result = capture(build_tiny("llama"), minilm_tokenizer, PROMPT, progress=False)
    assert result.generation is None and result.token_ids == prompt_ids(minilm_tokenizer)
    assert result.token_ids[-1] == SEP

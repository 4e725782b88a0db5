"""`generate_capture(model, tokenizer, prompt)`: the model generates, then one capture of the prompt and its output.

The capture runs over the token ids the model produced, never over its decoded text: decoding and tokenizing
again may give other tokens. Its `Generation` says which query row produced each generated token (one step each).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .budget import DEFAULT_MAX_MEMORY_BYTES, check_estimate
from .result import Capture, Generation
from .run import (
    _check_has_attention,
    _check_options,
    _check_tokenizer_matches,
    _encode,
    _estimated_itemsize,
    _input_device,
    _max_length,
    capture_ids,
    check_can_generate,
    generated,
    is_encoder_decoder,
)

# What generate makes itself from the prompt, or shows only one of: passing them would contradict it.
_MADE_FROM_PROMPT = ("input_ids", "inputs", "attention_mask", "inputs_embeds", "decoder_input_ids")


def generate_capture(
    model: nn.Module,
    tokenizer,
    prompt: str,
    max_new_tokens: int = 20,
    *,
    attention_dtype: str = "float32",
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    progress: bool = True,
    generate_kwargs: dict[str, Any] | None = None,
) -> Capture:
    """Run `model.generate` on `prompt` with `generate_kwargs` (sampling, beams...), then capture the prompt and the
    output in one forward pass. Everything is checked before the model runs; the model is left as it was."""
    _check_options(model, attention_dtype, max_new_tokens, max_memory_bytes, progress)
    generate_kwargs = _checked_generate_kwargs(generate_kwargs or {})
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt must be a non-empty string of words to continue, not {prompt!r}")
    _check_has_attention(model)
    check_can_generate(model, "load it with its generation head (AutoModelForCausalLM or AutoModelForSeq2SeqLM)")
    encoder_decoder = is_encoder_decoder(model)
    limit = _max_length(model, tokenizer)
    encoding = _encode(tokenizer, [prompt], None, truncation=False, max_length=limit)
    _check_tokenizer_matches(model, tokenizer, encoding["input_ids"])
    prompt_length = int(encoding["input_ids"].shape[1])
    output_length = 1 + max_new_tokens if encoder_decoder else prompt_length + max_new_tokens
    if limit is not None and output_length > limit:
        raise ValueError(
            f"the prompt is {prompt_length} tokens and max_new_tokens={max_new_tokens} would make "
            f"{'the decoder input' if encoder_decoder else 'prompt and output'} {output_length} tokens long, but "
            f"the model accepts at most {limit}; lower max_new_tokens to {limit - output_length + max_new_tokens}"
            f"{'' if encoder_decoder else ' or shorten the prompt'}"
        )
    itemsize = _estimated_itemsize(model, attention_dtype)
    if encoder_decoder:
        check_estimate(model.config, prompt_length, 1 + max_new_tokens, itemsize, max_memory_bytes)
    else:
        check_estimate(model.config, prompt_length + max_new_tokens, None, itemsize, max_memory_bytes)

    device = _input_device(model)
    inputs = {name: encoding[name].to(device) for name in ("input_ids", "attention_mask")}
    (sequence,) = generated(model, inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
    prompt_ids = encoding["input_ids"][0].tolist()
    options = {"attention_dtype": attention_dtype, "max_memory_bytes": max_memory_bytes, "progress": progress}
    if encoder_decoder:  # the decoder reads the start token, then the output
        generation = Generation("cross", "decoder", prompt_length, first_row=0, steps=len(sequence) - 1)
        _check_generated(generation)
        return capture_ids(model, tokenizer, prompt_ids, decoder_input_ids=sequence, generation=generation, **options)
    steps = len(sequence) - prompt_length
    generation = Generation("self", "input", prompt_length, first_row=prompt_length - 1, steps=steps)
    _check_generated(generation)
    return capture_ids(model, tokenizer, sequence, generation=generation, **options)


def _checked_generate_kwargs(generate_kwargs: dict[str, Any]) -> dict[str, Any]:
    given = [name for name in _MADE_FROM_PROMPT if name in generate_kwargs]
    if given:
        raise ValueError(
            f"generate makes {', '.join(given)} from the prompt itself; leave {'it' if len(given) == 1 else 'them'} "
            "out and pass the text as prompt"
        )
    sequences = generate_kwargs.get("num_return_sequences", 1)
    if sequences != 1:
        raise ValueError(
            f"num_return_sequences={sequences!r}: the widget shows one output; leave num_return_sequences out "
            "(beam search still returns its best sequence)"
        )
    return generate_kwargs


def _check_generated(generation: Generation) -> None:
    if generation.steps < 1:  # a stopping criterion that ends at once (max_length below the prompt)
        raise ValueError(
            "the model generated no token (a max_length or stopping criterion in generate_kwargs ended it at once); "
            "leave them out and set max_new_tokens"
        )


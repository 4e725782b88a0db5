"""Record every attention call of one forward pass, through transformers' AttentionInterface.

The model is switched to a registered attention implementation for the call only. That
implementation runs the architecture's own eager function, so the attention is exactly
what eager would compute, and keeps what the function was given (queries after rotary
embedding, keys before GQA repetition, the scale, the mask, T5's position bias, Gemma 2's
logit soft-cap and GPT-OSS's attention sinks). Every layer is then checked: softmax of what
was kept must give back the model's attention to 1e-4, or the capture warns. Records are keyed
by module and forward call, so a module that computes attention twice in one forward
(DiffLlama's differential attention) is refused, never taken for two layers.

A long input would make eager hold a layer's scores and weights whole (2 GiB each at 4096 tokens x 32 heads).
A layer past the share of the budget `budget.eager_chunk_rows` allows runs the same eager function on a few
query rows at a time instead, and is checked on a sample of rows: to the promised 1e-4, where a whole layer
is checked bit for bit. When its weights need not be stored, its output comes from torch's fused attention
instead, if that equals eager's output on the same sample. Architectures recorded through module hooks (`watchers/`) always run whole.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface, PretrainedConfig
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from .budget import MemoryBudget, eager_chunk_rows, layer_record_bytes
from .watchers import watched
from .result import ATTENTION_SINK, LayerRecord, Sink, StackRecord
from .values import OWN_PROJECTIONS, input_rows, output_projection, value_norms, weighted_sum_error

IMPLEMENTATION = "attnwidget_capture"

# Module names of cross-attention blocks: BART/Marian `encoder_attn`, T5 `EncDecAttention`,
# BERT-style decoders `crossattention`, and the common `cross_attn` / `cross_attention`.
_CROSS_ATTENTION_NAMES = ("encoder_attn", "encdecattention", "crossattention", "cross_attn", "cross_attention")


SAMPLE_ROWS = 64
"""Query rows whose weights check a layer computed in chunks against its queries and keys."""
_NUMPY_DTYPES = {torch.float16: np.float16, torch.float32: np.float32}


class IncompleteScoresWarning(RuntimeWarning):
    """softmax(q @ k.T * scale + bias) does not reproduce an architecture's attention."""


@dataclass(frozen=True)
class SideRows:
    """Which positions of the batch to keep for one token side: a row, minus its padding."""

    row: int
    keep: np.ndarray | None
    """Indices of the real tokens, or None when the row has no padding."""
    length: int
    """Padded length of the side in the batch, to check every call against."""

    def kept_positions(self) -> np.ndarray:
        """Positions of the real tokens in the padded batch."""
        return np.arange(self.length) if self.keep is None else self.keep


@dataclass(frozen=True)
class StackPlan:
    query_side: str
    key_side: str


def _generic_eager(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Plain eager attention for modules whose file defines none (keys repeated for GQA)."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[..., : key.shape[-2]]
    weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _eager_function(module: nn.Module) -> Callable:
    # The architecture's own eager function keeps its exact semantics (GQA repeat, T5's position bias).
    own = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    return own if callable(own) else _generic_eager


def _sinks_in_weights(module, weights: torch.Tensor) -> torch.Tensor | None:
    """The module's attention sinks when the weights it returns include them, else None.

    GPT-OSS's eager function puts one extra logit per head into every softmax and drops its column, so its
    rows sum to less than 1. Granite SWA keeps the same `sinks` parameter but scales the output instead, and
    returns plain softmax weights: there the sink is no part of the map."""
    sinks = getattr(module, "sinks", None)
    if not isinstance(sinks, torch.Tensor) or weights is None:
        return None
    sums = weights.float().sum(dim=-1)
    sums = sums[sums > 0]  # fully masked rows hold nothing either way
    return sinks if bool((sums < 1 - 1e-5).any()) else None


_ACTIVE: contextvars.ContextVar["Recorder | None"] = contextvars.ContextVar("attnwidget_recorder", default=None)


def _capturing_attention(module, query, key, value, attention_mask, *args, **kwargs):
    eager = _eager_function(module)
    recorder = _ACTIVE.get()
    step = None if recorder is None else recorder.chunk_rows(query, key)
    if step is not None:
        output = _in_query_chunks(eager, step, recorder, module, query, key, value, attention_mask, args, kwargs)
        recorder.record_values(module, value, output)
        return output, None
    output, weights = eager(module, query, key, value, attention_mask, *args, **kwargs)
    if recorder is not None:
        recorder.record(module, query, key, weights, attention_mask, *_terms(module, weights, args, kwargs))
        recorder.record_values(module, value, output)
    return output, weights


def _terms(module, weights, args, kwargs) -> tuple:
    """(scaling, position bias, softcap, sinks) of an attention call, as `Recorder.record` takes them."""
    scaling = kwargs.get("scaling", args[0] if args else None)
    # Inkling2 gives each query its own sink logit, [batch, heads, n_query, 1], as `sinks`
    given = kwargs.get("sinks")
    sinks = given[..., 0] if torch.is_tensor(given) else _sinks_in_weights(module, weights)
    return scaling, kwargs.get("position_bias"), kwargs.get("softcap"), sinks


def _in_query_chunks(eager, step, recorder, module, query, key, value, attention_mask, args, kwargs):
    """The output of an attention call too large to compute whole, from the architecture's own eager function
    run on `step` query rows at a time. Masks and position biases are cut to the same rows; keys and values
    stay whole. The recorder checks a sample of rows and, where the layer must store its attention, gets each
    chunk's weights; nothing holds a whole layer's weights."""

    def on_rows(rows):
        terms = {name: _query_rows(kwargs[name], rows) for name in ("position_bias",) if name in kwargs}
        return eager(module, query[:, :, rows], key, value, _query_rows(attention_mask, rows), *args, **kwargs | terms)

    sample = recorder.sample_rows(module, step)
    sample_output, weights = on_rows(torch.from_numpy(sample))
    store = recorder.record(module, query, key, weights, attention_mask, *_terms(module, weights, args, kwargs), sample)
    del weights
    if store is None:  # the weights are derived from what was kept: only the output is still needed
        output = _fused_output(module, query, key, value, attention_mask, args, kwargs, sample, sample_output)
        if output is not None:
            return output
    n_query = query.shape[-2]
    output = None
    for start in range(0, n_query, step):
        part, weights = on_rows(slice(start, start + step))
        if output is None:  # eager returns [batch, n_query, heads, head_dim]
            output = part.new_empty((part.shape[0], n_query, *part.shape[2:]))
        output[:, start : start + part.shape[1]] = part
        if store is not None:
            store(weights, start)
        del part, weights  # before the next chunk's are made
    return output


def _fused_output(module, query, key, value, attention_mask, args, kwargs, sample, sample_output):
    """The output of a plain softmax attention call (no position bias, soft-cap or sinks) from torch's fused
    attention, when it equals eager's on the sampled rows; else None. At 4096 tokens it is five to fifteen times
    faster than eager in chunks, and holds no weights at all."""
    plain = all(kwargs.get(name) is None for name in ("position_bias", "softcap", "sinks", "s_aux"))
    plain = plain and not kwargs.get("dropout") and not module.training and getattr(module, "sinks", None) is None
    if not plain or (attention_mask is not None and not attention_mask.is_floating_point()):
        return None
    scaling = kwargs.get("scaling", args[0] if args else None)
    mask = None if attention_mask is None else attention_mask[..., : key.shape[-2]]
    output = nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=mask, scale=scaling, enable_gqa=query.shape[1] != key.shape[1]
    ).transpose(1, 2)  # eager's layout: [batch, n_query, heads, head_dim]
    rows = torch.from_numpy(sample)
    if not torch.allclose(output[:, rows], sample_output, rtol=1e-4, atol=1e-5, equal_nan=True):
        return None  # the architecture's eager function does more than softmax(q·k + mask)·v
    return output.contiguous()


def _query_rows(term, rows):
    """A mask or position bias [..., n_query, n_key] cut to some query rows; one broadcast row stays as it is."""
    if not isinstance(term, torch.Tensor) or term.dim() < 2 or term.shape[-2] == 1:
        return term
    return term[..., rows, :]


# Registration is global and harmless: nothing uses the name unless a config is set to it.
# The mask function must be registered under the same name, or masking_utils builds no mask at
# all and a decoder silently loses its causal mask.
AttentionInterface.register(IMPLEMENTATION, _capturing_attention)
AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)


class Recorder:
    """Turns each attention call into a LayerRecord of its stack, on the CPU, for one batch row."""

    def __init__(
        self,
        model: nn.Module,
        plans: dict[str, StackPlan],
        sides: dict[str, SideRows],
        attention_dtype: np.dtype,
        max_memory_bytes: int,
        progress: Callable[[int], None] | None = None,
    ):
        self._names = {id(module): name for name, module in model.named_modules()}
        self._is_encoder_decoder = "encoder" in plans
        self._plans = plans
        self._sides = sides
        self._attention_dtype = torch.float16 if attention_dtype == np.float16 else torch.float32
        self._budget = MemoryBudget(max_memory_bytes)
        self.stacks = {name: StackRecord(name, plan.query_side, plan.key_side) for name, plan in plans.items()}
        # Masks and T5's position bias are the same tensor in every layer: convert each once.
        # The source tensors are kept alive so their ids cannot be reused by new tensors.
        self._biases: dict[tuple[int, int], tuple[object, object, np.ndarray | None]] = {}
        # Records are keyed by module and by which of its forward calls made them, never by call
        # order alone: a module calling attention twice in one forward is not two layers.
        self._calls: dict[int, int] = {}
        self._recorded: set[tuple[int, int]] = set()
        self._handles: list = []
        self._warned: set[str] = set()
        self._progress = progress
        """Called with each recorded layer's number of scores (a `LayerProgress`)."""
        self._left_out: set[int] = set()
        self._parents = {id(child): parent for parent in model.modules() for child in parent.children()}
        self._projections: dict[int, nn.Module | None] = {}
        self._hooked: set[int] = set()
        self._layers_without_values: dict[int, str] = {}
        """The class of each layer's module until `record_values` sees its values: those left were recorded
        through module hooks, with no values."""
        self._awaiting: dict[int, tuple[StackRecord, LayerRecord, torch.Tensor]] = {}
        """Layers whose value norms wait for their output projection to be given their attention output, by
        projection."""

    def chunk_rows(self, query: torch.Tensor, key: torch.Tensor) -> int | None:
        """How many query rows an attention call computes at once: None for all, as eager does (see budget.py)."""
        batch, heads, n_query, _ = query.shape
        return eager_chunk_rows(batch, heads, n_query, key.shape[-2], self._budget.budget)

    def sample_rows(self, module: nn.Module, step: int) -> np.ndarray:
        """The query positions (in the padded batch) whose weights check a layer computed `step` rows at a time:
        `SAMPLE_ROWS` of the kept tokens (no more than a chunk), evenly spread from the first to the last, so
        short causal rows and full ones are both seen."""
        kept = self._sides[self._plans[self._stack_of(module)].query_side].kept_positions()
        count = min(SAMPLE_ROWS, step, len(kept))
        return np.unique(kept[np.linspace(0, len(kept) - 1, count).round().astype(int)])

    def record(
        self,
        module,
        query,
        key,
        weights,
        attention_mask,
        scaling,
        position_bias,
        softcap=None,
        sinks=None,
        sample: np.ndarray | None = None,
        sink: Sink = ATTENTION_SINK,
    ) -> Callable[[torch.Tensor, int], None] | None:
        """Keep one attention call as a LayerRecord. `weights` are the model's attention for every query, or,
        for a layer computed in chunks, for the query positions `sample` only. Returns, for a chunked layer
        that must store its attention, the function that stores each chunk's weights.

        `sinks` are the logits of one more key in every softmax that is no token of the text, `sink` says what it
        stands for: [heads] (GPT-OSS's learned sinks) or [batch, heads, n_query] (Inkling2's, or the log-sum-exp
        of each query's logits of keys that are not tokens)."""
        if id(module) in self._left_out:
            return None
        if weights is None:
            raise RuntimeError(f"{type(module).__name__} returned no attention weights from its eager function")
        self._check_one_call_per_forward(module)
        stack_name = self._stack_of(module)
        plan = self._plans[stack_name]
        q_rows, k_rows = self._sides[plan.query_side], self._sides[plan.key_side]
        n_query = weights.shape[-2] if sample is None else query.shape[-2]
        self._check_lengths(module, n_query, weights.shape[-1], q_rows, k_rows)
        stack = self.stacks[stack_name]
        layer = LayerRecord(
            query=_keep(query, q_rows, None, torch.float32),
            key=_keep(key, k_rows, None, torch.float32),
            scale=float(query.shape[-1] ** -0.5 if scaling is None else scaling),
            bias=self._bias(attention_mask, position_bias, q_rows, k_rows, key.shape[-2]),
            softcap=None if softcap is None else float(softcap),
            sinks=self._sinks(sinks, q_rows),
        )
        if sinks is not None:
            stack.sink = sink
        float32 = self._attention_dtype == torch.float32 and _all_float32(query, key, weights)
        tolerance = _tolerance(query.dtype, np.dtype(_NUMPY_DTYPES[self._attention_dtype]))
        store = None
        if sample is None:
            layer.stored_attention = _keep(weights, q_rows, k_rows, self._attention_dtype)
            exact, error = _derivation_error(layer, layer.stored_attention)
            if exact and float32:
                layer.stored_attention = None  # queries and keys give it back: keep only them
        else:
            # No whole layer to compare bit for bit: the sample must meet the promise, 1e-4, or the layer is stored.
            theirs = _keep(weights, SideRows(q_rows.row, None, len(sample)), k_rows, torch.float32)
            rows = np.searchsorted(q_rows.kept_positions(), sample)
            _, error = _derivation_error(layer, theirs, rows)
            if not (float32 and error <= tolerance):
                layer.stored_attention = np.empty(layer.shape, dtype=_NUMPY_DTYPES[self._attention_dtype])
                store = functools.partial(_store_rows, layer.stored_attention, q_rows, k_rows, self._attention_dtype)
        if error > tolerance and stack_name not in self._warned:
            self._warned.add(stack_name)  # once per stack: the cause is the architecture's, not one layer's
            warnings.warn(
                f"{type(module).__name__} (layer {len(stack.layers)} of {stack_name!r}): softmax(q @ k.T * scale "
                f"+ bias) differs from its attention by up to {error:.2g}; this architecture adds something "
                "attnwidget does not record. The attention itself is exact; queries and "
                "keys explain it in part.",
                IncompleteScoresWarning,
            )
        self._share_key_heads(stack, layer)
        self._count(layer)  # before a chunked layer's store is filled: over the budget, it never is
        stack.layers.append(layer)
        self._layers_without_values[id(layer)] = type(module).__name__
        stack.model_layer_numbers.append(_layer_number(self._names[id(module)]))
        if self._progress is not None:
            self._progress(int(np.prod(layer.shape)))
        return store

    def record_values(self, module: nn.Module, value: torch.Tensor, output: torch.Tensor) -> None:
        """Keep ‖f_h(x_j)‖ of the layer `record` just kept, for value-weighted attention (see values.py), where its
        output is its weights times `value` [batch, kv_heads, n_key, head_dim]; its output projection must then
        be given `output` [batch, n_query, heads, head_dim] unchanged, or the norms are dropped."""
        if id(module) in self._left_out:
            return
        stack = self.stacks[self._stack_of(module)]
        layer = stack.layers[-1]
        name = self._layers_without_values.pop(id(layer))
        projection = self._projection_of(module)
        plan = self._plans[stack.name]
        q_rows, k_rows = self._sides[plan.query_side], self._sides[plan.key_side]
        heads, head_dim = layer.shape[0], value.shape[-1]
        if not (value.dim() == output.dim() == 4 and output.shape[2] == heads and value.shape[2] == k_rows.length):
            _no_value_weights(stack, f"{name} gives its values or its output in a layout attnwidget does not read")
            return
        rows = input_rows(projection)
        if projection is None or rows.shape[0] != heads * head_dim:
            _no_value_weights(stack, f"{name} has no output projection attnwidget can read (a Linear or Conv1D "
                                     f"{heads} x {head_dim} wide, named one of {', '.join(OWN_PROJECTIONS)})")
            return
        if rows.device.type == "meta":  # accelerate's offload loads the weights only for the projection's own call
            _no_value_weights(stack, f"{self._names[id(projection)]}'s weights are offloaded (on 'meta' until it runs);"
                                     " load the model without disk offload to weigh attention by its values")
            return
        values = _keep(value, k_rows, None, torch.float32)
        sample = self.sample_rows(module, layer.shape[1])
        kept = np.searchsorted(q_rows.kept_positions(), sample)
        weights = [
            torch.from_numpy(layer.stored_attention[head, kept]).float()
            if layer.stored_attention is not None else layer.derived_rows(head, kept)
            for head in range(heads)
        ]
        sample_output = output[q_rows.row if output.shape[0] > 1 else 0, torch.from_numpy(sample)].to("cpu")
        stored = np.float32 if layer.stored_attention is None else layer.stored_attention.dtype
        if weighted_sum_error(weights, values, sample_output) > _tolerance(value.dtype, np.dtype(stored)):
            _no_value_weights(stack, f"{name}'s output is not its attention weights times its values")
            return
        layer.value_norms = value_norms(values, heads, rows)
        self._budget.hold(layer.value_norms.nbytes)
        if id(projection) not in self._hooked:
            self._hooked.add(id(projection))
            self._handles.append(projection.register_forward_pre_hook(self._check_projection_input))
        self._awaiting[id(projection)] = (stack, layer, output)

    def _projection_of(self, module: nn.Module) -> nn.Module | None:
        if id(module) not in self._projections:
            self._projections[id(module)] = output_projection(module, self._parents.get(id(module)))
        return self._projections[id(module)]

    def _check_projection_input(self, projection: nn.Module, args) -> None:
        """Keep the waiting layer's value norms only if the projection reads its attention output as it was."""
        waiting = self._awaiting.pop(id(projection), None)
        if waiting is None:
            return
        stack, layer, output = waiting
        given = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if given is None or given.numel() != output.numel() or not torch.equal(given.reshape(output.shape), output):
            layer.value_norms = None
            _no_value_weights(stack, f"what reaches {self._names[id(projection)]} is not the attention's output (a "
                                     "gate or norm between them), so key j's contribution depends on the query too")

    def leave_out(self, modules: list[nn.Module]) -> None:
        """Record nothing of these modules' attention calls: they attend over something else than tokens."""
        self._left_out.update(id(module) for module in modules)

    def _share_key_heads(self, stack: StackRecord, layer: LayerRecord) -> None:
        """Set the stack's one query-to-key-head mapping, or give up sharing when a layer groups differently.

        MiMo-V2-Flash's sliding layers have twice the key heads of its full layers; one mapping per stack
        cannot say that, so from then on every layer of the stack keeps one key per query head."""
        heads = layer.query.shape[0]
        kv_head_of = np.arange(heads) // (heads // layer.key.shape[0])
        if stack.kv_head_of is None:
            stack.kv_head_of = kv_head_of
        elif not np.array_equal(stack.kv_head_of, kv_head_of):
            for earlier in stack.layers:
                self._budget.hold(_one_key_per_query_head(earlier, stack.kv_head_of))
            stack.kv_head_of = np.arange(heads)
        if not np.array_equal(stack.kv_head_of, kv_head_of):
            _one_key_per_query_head(layer, kv_head_of)  # counted with the layer

    def _check_one_call_per_forward(self, module: nn.Module) -> None:
        if id(module) not in self._calls:
            # Count the module's later forward calls; this one, already running, is call 0.
            self._calls[id(module)] = 0
            self._handles.append(module.register_forward_pre_hook(self._count_call))
        call = (id(module), self._calls[id(module)])
        if call in self._recorded:
            raise ValueError(
                f"{type(module).__name__} computes attention twice in one layer, as DiffLlama's differential "
                "attention does (each layer uses one head's softmax minus λ times another's). One attention map "
                "per layer cannot show that, so attnwidget does not capture it. To look at its softmax maps "
                "anyway, load the model with attn_implementation='eager', run it with output_attentions=True and "
                "pass outputs.attentions to AttentionWidget.from_attention(attention, tokens)"
            )
        self._recorded.add(call)

    def _count_call(self, module: nn.Module, args) -> None:
        self._calls[id(module)] += 1

    def close(self) -> None:
        """Remove the hooks that count forward calls and check output projections; say why layers have no values."""
        for stack, layer, _ in self._awaiting.values():
            layer.value_norms = None
            _no_value_weights(stack, "an output projection never ran on its layer's attention output")
        self._awaiting.clear()
        for stack in self.stacks.values():
            for layer in stack.layers:
                hooked = self._layers_without_values.get(id(layer))
                if hooked is not None:
                    _no_value_weights(stack, f"{hooked} is recorded through module hooks (docs/coverage.md), which "
                                             "keep no values")
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _stack_of(self, module: nn.Module) -> str:
        name = self._names.get(id(module))
        if name is None:
            raise RuntimeError(f"an attention module ({type(module).__name__}) ran that is not part of the model")
        if not self._is_encoder_decoder:
            return "self"
        parts = name.lower().split(".")
        if any(part in _CROSS_ATTENTION_NAMES for part in parts):
            return "cross"
        # The outermost of "encoder"/"decoder" decides: a BERT decoder inside EncoderDecoderModel is
        # named "decoder.bert.encoder.layer.0...". SeamlessM4T names its stacks "text_encoder", "text_decoder".
        return next((side for side in map(_stack_named, parts) if side is not None), "decoder")

    @staticmethod
    def _check_lengths(module, n_query: int, n_key: int, q_rows: SideRows, k_rows: SideRows) -> None:
        if (n_query, n_key) != (q_rows.length, k_rows.length):
            raise RuntimeError(
                f"{type(module).__name__} attended {n_query} queries to {n_key} keys, but the "
                f"input has {q_rows.length} and {k_rows.length} tokens; this architecture changes sequence lengths "
                "inside the model, which attnwidget cannot map back to tokens"
            )

    def _bias(self, attention_mask, position_bias, q_rows: SideRows, k_rows: SideRows, n_key: int):
        if attention_mask is None and position_bias is None:
            return None
        cache_key = (id(attention_mask), id(position_bias))
        if cache_key not in self._biases:
            terms = [_additive(term, n_key) for term in (position_bias, attention_mask) if term is not None]
            total = terms[0] if len(terms) == 1 else terms[0] + terms[1]
            array = None if not total.any() else _keep(total, q_rows, k_rows, torch.float32)
            self._biases[cache_key] = (attention_mask, position_bias, array)
            if array is not None:
                self._budget.hold(array.nbytes)
        return self._biases[cache_key][2]

    @staticmethod
    def _sinks(sinks: torch.Tensor | None, q_rows: SideRows) -> np.ndarray | None:
        if sinks is None:
            return None
        if sinks.dim() == 1:  # one learned logit per head, the same for every query and every row of the batch
            return sinks.detach().to("cpu", torch.float32).numpy().copy()
        return _keep(sinks.detach()[..., None], q_rows, None, torch.float32)[..., 0]

    def _count(self, layer: LayerRecord) -> None:
        heads, n_query, head_dim = layer.query.shape
        kv_heads, n_key, _ = layer.key.shape
        stored = layer.stored_attention
        itemsize = 0 if stored is None else stored.itemsize
        sinks = 0 if layer.sinks is None else layer.sinks.nbytes
        self._budget.hold(layer_record_bytes(heads, kv_heads, n_query, n_key, head_dim, itemsize) + sinks)


def _no_value_weights(stack: StackRecord, reason: str) -> None:
    """Say why a stack has no value-weighted attention; the first reason found is kept."""
    stack.no_value_weights = stack.no_value_weights or reason


def _one_key_per_query_head(layer: LayerRecord, kv_head_of: np.ndarray) -> int:
    """Repeat a layer's shared key heads, one per query head; the bytes that adds."""
    before = layer.key.nbytes
    if layer.key.shape[0] != len(kv_head_of):
        layer.key = layer.key[kv_head_of]
    return layer.key.nbytes - before


def _stack_named(part: str) -> str | None:
    """The stack a part of a module name names: "encoder" or "decoder", alone or as its last word."""
    return next((side for side in ("encoder", "decoder") if part == side or part.endswith("_" + side)), None)


def _layer_number(module_name: str) -> int | None:
    """The model's own layer number in a module's name: its first numeric part ("model.layers.3.self_attn",
    "transformer.h.3.attn", "decoder.block.3.layer.1.EncDecAttention" -> 3)."""
    return next((int(part) for part in module_name.split(".") if part.isdigit()), None)


def _all_float32(*tensors: torch.Tensor) -> bool:
    # Half-precision models round their attention in their own way: only their stored output is exact.
    return all(tensor.dtype == torch.float32 for tensor in tensors)


def _derivation_error(layer: LayerRecord, theirs: np.ndarray, rows: np.ndarray | None = None) -> tuple[bool, float]:
    """Whether softmax(q @ k.T * scale + bias) gives back the model's attention `theirs` [heads, rows, n_key]
    bit for bit, and by how much it differs where not, over every head and query (or the query `rows` given).

    It is exact for MiniLM and most layers of most architectures. It may not be where an
    architecture orders its ops differently (BLOOM's fused scale-and-add), where other shapes run
    other matrix kernels (a padded batch, a decoder of a few tokens), or where it adds terms we do
    not record. A fully masked row is NaN here and counts as inexact, not as an
    error: the model's numbers for it mean nothing. Inexact layers keep their attention stored: a
    capture always returns the model's own numbers. Every row is derived as `LayerRecord.attention`
    will read it, so what was checked is what is read."""
    exact, error = True, 0.0
    scratch = np.empty(layer.shape[1:], dtype=np.float32) if rows is None else None
    for head in range(layer.shape[0]):
        if rows is None:
            ours = torch.from_numpy(layer.derive_head(head, out=scratch))
        else:
            ours = layer.derived_rows(head, rows)
        mine = torch.from_numpy(theirs[head]).float()
        if not torch.equal(ours, mine):  # the common case, equal, needs no error
            exact = False
            error = max(error, float((ours - mine).abs().nan_to_num(nan=0.0).max()))
    return exact, error


def _tolerance(model_dtype: torch.dtype, stored_dtype: np.dtype) -> float:
    """How far a derivation may be off and still count as explaining the attention: the promised 1e-4
    plus the rounding of a float16 store; a half-precision model rounds its own scores on top."""
    if model_dtype not in (torch.float32, torch.float64):
        return 5e-2
    return 1e-4 + float(np.finfo(stored_dtype).eps)


def _additive(term: torch.Tensor, n_key: int) -> torch.Tensor:
    """A mask or bias as float32 on the CPU, with -inf where a key is masked."""
    term = term[..., :n_key].to("cpu")
    if term.dtype == torch.bool:  # True means "attend"
        return torch.zeros(term.shape).masked_fill(~term, -math.inf)
    # Eager masks with the dtype's minimum; -inf says "masked" whatever the dtype.
    return term.float().masked_fill(term <= torch.finfo(term.dtype).min / 2, -math.inf)


def _store_rows(stored: np.ndarray, q_rows: SideRows, k_rows: SideRows, dtype, weights: torch.Tensor, start: int):
    """Copy one chunk's weights, for padded query positions start.., into their kept rows of `stored`."""
    stop = start + weights.shape[-2]
    kept = q_rows.kept_positions()
    first, last = np.searchsorted(kept, [start, stop])
    if first == last:
        return  # only padding in this chunk
    chunk = SideRows(q_rows.row, None if q_rows.keep is None else kept[first:last] - start, stop - start)
    stored[:, first:last] = _keep(weights, chunk, k_rows, dtype)


def _keep(tensor: torch.Tensor, q_rows: SideRows, k_rows: SideRows | None, dtype) -> np.ndarray:
    """One batch row of a [batch, heads, n_query, n_last] tensor, without padding, as a CPU array.

    The batch and head dimensions may be 1 (broadcast masks). `k_rows` strips the last
    dimension too (attention, bias); queries and keys keep their head dimension whole.
    """
    tensor = tensor[q_rows.row if tensor.shape[0] > 1 else 0].to("cpu")
    if q_rows.keep is not None and tensor.shape[-2] > 1:
        tensor = tensor[:, q_rows.keep]
    if k_rows is not None and k_rows.keep is not None:
        tensor = tensor[..., k_rows.keep]
    tensor = tensor.to(dtype)
    # A CPU tensor already in the right dtype is still the model's own. Share it when it is all of
    # its storage (the model drops it after the layer); copy a slice, such as one row of a batch or
    # the key part of a fused query-key-value projection, so it does not keep the rest alive.
    if tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size():
        tensor = tensor.clone(memory_format=torch.contiguous_format)
    return tensor.numpy()


_MODEL_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def exclusively(model: nn.Module) -> Iterator[None]:
    """Hold the model alone while it is switched: two overlapping captures would each save the other's
    switched state as the original and restore it last. Other threads wait; the same thread may nest."""
    with _MODEL_LOCKS_GUARD:
        lock = _MODEL_LOCKS.setdefault(model, threading.RLock())
    with lock:
        yield


@contextlib.contextmanager
def recording(model: nn.Module, recorder: Recorder) -> Iterator[None]:
    """Run the model in eval mode, without gradients, through the capturing implementation; restore all."""
    with (
        exclusively(model),
        switched_to_eval(model),
        _switched_implementation(model),
        watched(model, recorder),
        contextlib.closing(recorder),  # the recorder's own hooks go too
    ):
        token = _ACTIVE.set(recorder)
        try:
            with torch.inference_mode():
                yield
        finally:
            _ACTIVE.reset(token)


@contextlib.contextmanager
def switched_to_eval(model: nn.Module) -> Iterator[None]:
    training = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in training:
            module.training = flag


@contextlib.contextmanager
def _switched_implementation(model: nn.Module) -> Iterator[None]:
    configs = _configs_of(model)
    saved = [(config, config.__dict__.get("_attn_implementation_internal", _MISSING)) for config in configs]
    try:
        for config in configs:
            # Set the stored field, not the property: the property also rewrites sub-configs,
            # which are restored one by one here anyway.
            config._attn_implementation_internal = IMPLEMENTATION
        yield
    finally:
        for config, value in saved:
            if value is _MISSING:
                config.__dict__.pop("_attn_implementation_internal", None)
            else:
                config._attn_implementation_internal = value


_MISSING = object()


def _configs_of(model: nn.Module) -> list[PretrainedConfig]:
    """Every distinct config object the model's modules can read their implementation from."""
    found: dict[int, PretrainedConfig] = {}
    pending = [getattr(module, "config", None) for module in model.modules()]
    while pending:
        config = pending.pop()
        if not isinstance(config, PretrainedConfig) or id(config) in found:
            continue
        found[id(config)] = config
        pending.extend(getattr(config, key, None) for key in getattr(config, "sub_configs", {}))
    return list(found.values())

"""What value-weighted attention (Kobayashi et al. 2020, docs/analysis.md) needs from a layer, and its checks.

The weight of key j for query i in head h is ‖α_ij f_h(x_j)‖ = α_ij ‖f_h(x_j)‖, with f_h(x_j) = v_j W_O^h: the
value the attention function was given (x_j W_V + b_V, for the value head query head h reads) times head h's
rows of the output projection. The norm factors, so a layer keeps one vector per query head, ‖f_h(x_j)‖ over its
keys ([heads, n_key] float32), and never the values themselves.

It is kept only where the layer is known to be that sum, since a wrong number is worse than none:
- the output projection is found: an `nn.Linear` or GPT-2's `Conv1D` named as below on the attention module, or
  BERT's sibling `output.dense`, heads x head_dim wide;
- the attention function's output is Σ_j α_ij v_j, on a sample of query rows (its eager function does nothing
  else to the values);
- what the projection is then given is that output unchanged (a forward pre-hook compares them): a gate or a norm
  in between would make key j's contribution depend on the query too.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

OWN_PROJECTIONS = ("o_proj", "out_proj", "c_proj", "o", "dense", "out_lin", "wo", "Wo", "out")
"""Attribute names of the output projection on an attention module: Llama and most decoders, BART, GPT-2, T5,
GPT-NeoX, Phi and ALBERT, DistilBERT, ModernBERT, and a few more. Only one the check then sees run on the output
counts."""


def output_projection(module: nn.Module, parent: nn.Module | None) -> nn.Module | None:
    """The layer's output projection, or None where none of the known places holds a Linear or Conv1D."""
    candidates = [getattr(module, name, None) for name in OWN_PROJECTIONS]
    if parent is not None and getattr(parent, "self", None) is module:  # BERT: BertAttention.{self, output.dense}
        candidates.append(getattr(getattr(parent, "output", None), "dense", None))
    return next((candidate for candidate in candidates if input_rows(candidate) is not None), None)


def input_rows(projection: nn.Module | None) -> torch.Tensor | None:
    """The projection's weight as [inputs, outputs], so that row block h is W_O^h; None for other modules."""
    if isinstance(projection, nn.Linear):
        return projection.weight.T
    # transformers' Conv1D (GPT-2) computes x @ weight + bias with weight [inputs, outputs]
    if type(projection).__name__ == "Conv1D" and isinstance(getattr(projection, "weight", None), torch.Tensor):
        return projection.weight
    return None


def value_norms(values: np.ndarray, heads: int, rows: torch.Tensor) -> np.ndarray:
    """‖v_j W_O^h‖ for every query head h and key j, [heads, n_key] float32, in float64 on the CPU.

    `values` [kv_heads, n_key, head_dim] (query head h reads value head h // (heads // kv_heads)); `rows` the
    projection's [heads * head_dim, outputs] weight. Computed as v (W_O^h W_O^hᵀ) vᵀ: head_dim / outputs of the
    work of projecting every value (1/32 for a 7B Llama)."""
    kv_heads, n_key, head_dim = values.shape
    norms = np.empty((heads, n_key), dtype=np.float32)
    for head in range(heads):
        block = rows[head * head_dim : (head + 1) * head_dim].detach().to("cpu", torch.float64)
        value = torch.from_numpy(values[head // (heads // kv_heads)]).double()
        squared = ((value @ (block @ block.T)) * value).sum(dim=-1)
        norms[head] = squared.clamp_(min=0).sqrt_().numpy()
    return norms


def weighted_sum_error(weights: list[torch.Tensor], values: np.ndarray, output: torch.Tensor) -> float:
    """How far the attention output differs from Σ_j α_ij v_j on some query rows, relative to the largest value.

    `weights` holds each query head's [rows, n_key] float32 weights, `output` [rows, heads, head_dim] what the
    attention function returned for those rows."""
    heads, kv_heads = len(weights), values.shape[0]
    scale = max(float(np.abs(values).max(initial=0.0)), np.finfo(np.float32).tiny)
    error = 0.0
    for head, rows in enumerate(weights):
        value = torch.from_numpy(values[head // (heads // kv_heads)]).double()
        ours = rows.double() @ value
        # a fully masked row means nothing either way (NaN in derived weights)
        error = max(error, float((ours - output[:, head].double()).abs().nan_to_num(nan=0.0).max()) / scale)
    return error

"""Attention over a token's layers, not over tokens: Inkling2's block attention residuals.

Inkling2 mixes each token's earlier block outputs with learned queries (one softmax per token over its
blocks of layers) through the AttentionInterface, next to its token attention. Those calls are no
attention between tokens, and eager `output_attentions` leaves them out too: the recorder is told to
skip them, so a capture holds the token attention alone.
"""

from __future__ import annotations

from torch import nn


def _leave_out(modules: list[nn.Module], recorder) -> list:
    recorder.leave_out(modules)
    return []  # nothing is hooked: the recorder forgets these modules with the capture


WATCHERS = {
    "modeling_inkling2.Inkling2BlockAttentionResidual": _leave_out,
    "modeling_inkling2_loop.Inkling2LoopBlockAttentionResidual": _leave_out,
    "modeling_inkling2_loop.Inkling2LoopMessageAttentionResidual": _leave_out,
}

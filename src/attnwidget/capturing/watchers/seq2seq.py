"""BART's attention from before the AttentionInterface, kept by MVP, TrOCR and LED's decoder."""

from __future__ import annotations

from torch import nn

from .parts import watch_asked_with_projections


def _watch_bart_style(modules: list[nn.Module], recorder) -> list:
    """BART's attention before the interface, kept by MVP, TrOCR and LED's decoder: queries scaled before the
    product, plus the mask; cross-attention projects the encoder's states (`key_value_states`) to keys."""

    def terms(attention, given, query, key):
        return query, key, given.get("attention_mask"), attention.scaling, None

    def projections_of(attention):
        return attention.q_proj, attention.k_proj

    return watch_asked_with_projections(modules, recorder, projections_of, terms)


WATCHERS = {
    "modeling_mvp.MvpAttention": _watch_bart_style,
    "modeling_trocr.TrOCRAttention": _watch_bart_style,
    "modeling_led.LEDDecoderAttention": _watch_bart_style,
}

"""Token ids -> display strings. (Placeholder: being rewritten; keep this signature.)"""

from __future__ import annotations


def display_tokens(tokenizer, token_ids: list[int]) -> tuple[list[str], list[str]]:
    """Return (display strings, raw tokens) for the ids, one per position."""
    raw = [str(t) for t in tokenizer.convert_ids_to_tokens(list(token_ids))]
    return list(raw), raw

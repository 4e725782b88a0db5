"""Analysis of a capture: what each head does, how attention flows through the layers, and words instead of tokens.

Modules, one concept each, defined in docs/analysis.md: `scores` (head scores: entropy, previous, current and first
token, most-attended offset), `induction` (induction and duplicate-token scores from running the model on a
repeated random sequence), `rollout` (attention rollout), `words` (word boundaries and word-level maps).

`scores`, `rollout` and `words` read arrays and the `Capture`'s public methods and import no torch; `Capture`
calls them. `induction` runs a model through `attnwidget.capture`, so it is imported on first use.
"""

from typing import TYPE_CHECKING

from .rollout import attention_rollout
from .scores import SCORES, head_scores
from .words import WordGroups, word_attention, word_groups

__all__ = [
    "SCORES",
    "WordGroups",
    "attention_rollout",
    "head_scores",
    "induction_scores",
    "word_attention",
    "word_groups",
]

if TYPE_CHECKING:  # pragma: no cover
    from .induction import induction_scores


def __getattr__(name: str):
    if name == "induction_scores":  # runs a model: torch and transformers load with it
        from .induction import induction_scores

        return induction_scores
    raise AttributeError(f"module 'attnwidget.analysis' has no attribute {name!r}")

"""Analysis of a capture: what each head does, how attention flows through the layers, and words instead of tokens.

Modules, one concept each, defined in docs/analysis.md: `scores` (head scores: entropy, previous, current and first
token, most-attended offset), `induction` (induction and duplicate-token scores from running the model on a
repeated random sequence), `rollout` (attention rollout), `words` (word boundaries and word-level maps).

`scores`, `rollout` and `words` read arrays and the `Capture`'s public methods and import no torch; `Capture`
calls them. `induction` runs a model through `capturing.run`, which loads torch: it is left out here, and
`attnwidget.induction_scores` imports it on first use.
"""

from .rollout import attention_rollout
from .scores import SCORES, head_scores
from .words import WordGroups, word_attention, word_groups

__all__ = ["SCORES", "WordGroups", "attention_rollout", "head_scores", "word_attention", "word_groups"]
